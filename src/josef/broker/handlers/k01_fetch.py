"""Fetch (key 1): read whole record batches, with long polling.

Versions served: 4-17 (magic-2 batches; v13+ name topics by id, KIP-516).
Kafka semantics followed:
- Reads are capped at the high watermark (consumers never see an append before it is durable
  as configured). A fetch_offset in [high_watermark, log_end_offset] returns no records;
  outside [log_start_offset, log_end_offset] is OFFSET_OUT_OF_RANGE.
- Sizes (KIP-74): partitions are read in request order, each up to min(partition_max_bytes,
  bytes left of max_bytes); max_bytes is capped by the broker's fetch.max.bytes. The first
  batch of the response is returned whole even if larger, so a consumer always progresses.
- Long poll: answered at once when the bytes read reach min_bytes, when max_wait_ms <= 0, or on
  any partition error; otherwise parked in the purgatory until the produce path signals new
  data on a requested partition (then re-read) or max_wait_ms passes.
- Leader epochs (v9+, KIP-320): current_leader_epoch above ours is UNKNOWN_LEADER_EPOCH, below
  FENCED_LEADER_EPOCH, -1 unchecked. Unknown topics: UNKNOWN_TOPIC_OR_PARTITION, or
  UNKNOWN_TOPIC_ID (v13+).
- isolation_level is accepted: until transactions exist READ_COMMITTED reads what
  READ_UNCOMMITTED reads, last_stable_offset = high_watermark, aborted_transactions empty
  (null for READ_UNCOMMITTED, as Kafka).
- Fetch sessions (KIP-227) are refused the way the KIP allows: every response carries
  session_id 0 ("no session was created") and is a full response; a request naming a session
  id (which we never handed out) gets FETCH_SESSION_ID_NOT_FOUND.
Deviations: a read crossing segment files is joined into one buffer (one copy) because the
response's records field is a single buffer; a read within one segment is not copied.
Fetches from replicas (replica_id >= 0) are served like consumer fetches (no replication yet).
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.topics import LEADER_EPOCH, TopicInfo
from josef.protocol._generated.fetch import FetchRequest, FetchResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode
from josef.storage.api import TopicPartition
from josef.storage.errors import StorageError

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 17

READ_COMMITTED = 1
PartitionData = FetchResponse.PartitionData
TopicResponse = FetchResponse.FetchableTopicResponse


def _error(partition: int, code: ErrorCode) -> PartitionData:
    return PartitionData(
        partition_index=partition,
        error_code=code,
        high_watermark=-1,
        last_stable_offset=-1,
        log_start_offset=-1,
        aborted_transactions=None,
        records=b"",
    )


def _epoch_error(current_leader_epoch: int) -> ErrorCode | None:
    if current_leader_epoch < 0 or current_leader_epoch == LEADER_EPOCH:
        return None
    if current_leader_epoch > LEADER_EPOCH:
        return ErrorCode.UNKNOWN_LEADER_EPOCH
    return ErrorCode.FENCED_LEADER_EPOCH


def _read_all(
    broker: Broker,
    body: FetchRequest,
    version: int,
    infos: list[TopicInfo | None],
    max_bytes: int,
) -> tuple[list[TopicResponse], int, bool]:
    """One pass over the request: (responses, bytes read, any partition error)."""
    read_committed = body.isolation_level == READ_COMMITTED
    responses: list[TopicResponse] = []
    total = 0
    errors = False
    for topic, info in zip(body.topics, infos, strict=True):
        partitions: list[PartitionData] = []
        responses.append(
            TopicResponse(topic=topic.topic, topic_id=topic.topic_id, partitions=partitions)
        )
        for wanted in topic.partitions:
            index = wanted.partition
            if info is None or not 0 <= index < info.num_partitions:
                errors = True
                partitions.append(
                    _error(
                        index,
                        ErrorCode.UNKNOWN_TOPIC_ID
                        if version >= 13
                        else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                    )
                )
                continue
            epoch_error = _epoch_error(wanted.current_leader_epoch)
            if epoch_error is not None:
                errors = True
                partitions.append(_error(index, epoch_error))
                continue
            plog = info.logs[index]
            high_watermark = plog.high_watermark
            records: bytes | memoryview = b""
            budget = min(wanted.partition_max_bytes, max_bytes - total)
            fetch_offset = wanted.fetch_offset
            try:
                if fetch_offset < high_watermark and budget > 0:
                    data = plog.read(
                        fetch_offset, budget, max_offset=high_watermark, min_one_batch=total == 0
                    )
                    if len(data.records) == 1:
                        records = data.records[0]
                    elif data.records:
                        records = b"".join(data.records)
                    total += data.size
                elif not plog.log_start_offset <= fetch_offset <= plog.log_end_offset:
                    errors = True
                    partitions.append(_error(index, ErrorCode.OFFSET_OUT_OF_RANGE))
                    continue
            except StorageError as err:
                errors = True
                partitions.append(_error(index, err.error_code))
                continue
            partitions.append(
                PartitionData(
                    partition_index=index,
                    error_code=ErrorCode.NONE,
                    high_watermark=high_watermark,
                    last_stable_offset=high_watermark,
                    log_start_offset=plog.log_start_offset,
                    aborted_transactions=[] if read_committed else None,
                    preferred_read_replica=-1,
                    records=records,
                )
            )
    return responses, total, errors


def _lookup_topics(broker: Broker, body: FetchRequest, version: int) -> list[TopicInfo | None]:
    if version < 13:
        return [broker.topics.get(topic.topic) for topic in body.topics]
    infos = [broker.topics.by_id(topic.topic_id) for topic in body.topics]
    for topic, info in zip(body.topics, infos, strict=True):
        if info is not None:
            topic.topic = info.name  # v13+ names topics by id; keys and logs use names
    return infos


async def handle(broker: Broker, request: Request) -> FetchResponse:
    body: FetchRequest = request.body
    version = request.api_version
    if body.session_id != 0:
        return FetchResponse(
            throttle_time_ms=0,
            error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
            session_id=0,
            responses=[],
        )
    max_bytes = min(body.max_bytes, broker.config.fetch_max_bytes)
    loop_time = broker.monotonic_ms
    deadline = loop_time() + body.max_wait_ms
    while True:
        # Looked up on every pass: a topic may be created or deleted while the fetch waits.
        infos = _lookup_topics(broker, body, version)
        responses, total, errors = _read_all(broker, body, version, infos, max_bytes)
        remaining = deadline - loop_time()
        keys = [
            TopicPartition(topic.topic, p.partition)
            for topic, info in zip(body.topics, infos, strict=True)
            if info is not None
            for p in topic.partitions
        ]
        if total >= body.min_bytes or errors or remaining <= 0 or not keys:
            return FetchResponse(
                throttle_time_ms=0, error_code=ErrorCode.NONE, session_id=0, responses=responses
            )
        await broker.purgatory.wait(keys, remaining)
        if broker.purgatory.closed:  # shutting down: answer with what there is now
            deadline = loop_time()
