"""Produce (key 0): append record batches to partition logs.

Versions served: 3-11 (magic-2 record batches only; Kafka 4.0 removed 0-2, KIP-896).
Kafka semantics followed:
- acks: 0 (no response at all; when any partition fails the connection is closed instead, so
  the client refreshes its metadata, as Kafka does), 1 and -1 (answered once the batches are
  written and, when the topic's flush.messages / flush.ms make an fsync due, fsynced through
  the group commit: Kafka flushes inside the append, before any acknowledgement; a single
  node's ISR is itself, so -1 waits for nothing more). Any other value: INVALID_REQUIRED_ACKS
  for every partition.
- Batches are validated without decoding records (lengths, magic 2, CRC-32C, counts) by the
  storage engine; exactly one batch per partition (v3+), else INVALID_RECORD. Records are
  decoded only where Kafka needs them: a compacted topic refuses records without a key
  (INVALID_RECORD with a record_errors entry, v8+).
- Per-partition errors: UNKNOWN_TOPIC_OR_PARTITION (produce never auto-creates in Kafka 3.x),
  INVALID_TOPIC_EXCEPTION (internal topics), CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_RECORD,
  KAFKA_STORAGE_ERROR, with error_message (v8+).
- Idempotent producers (KIP-98): the partition log's producer state checks epoch and sequence
  before writing: a retried batch (same producer id, epoch and sequences as one of the
  producer's last 5) is answered with the original base_offset and nothing is written, once
  the original is durable; a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch
  INVALID_PRODUCER_EPOCH.
- The response carries base_offset, log_append_time_ms (-1 unless LogAppendTime) and
  log_start_offset (v5+). The high watermark moves when the append is durable as configured,
  and waiting fetches are woken then.
- Transactions are not implemented (no transaction API is advertised): transactional batches
  without a transactional_id get TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka's check), and
  with one INVALID_PRODUCER_ID_MAPPING (what Kafka's partition verification answers for a
  transactional id its coordinator does not know, KIP-890).
Deviations: none known beyond the above; timeout_ms is not needed (no replication wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from josef.broker.broker import Broker
from josef.broker.registry import CLOSE_CONNECTION, NO_RESPONSE, Outcome
from josef.broker.topics import LEADER_EPOCH, TopicInfo
from josef.protocol._generated.produce import ProduceRequest, ProduceResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode
from josef.records.batch import HEADER_SIZE, BatchHeader, iter_batches
from josef.records.errors import RecordsError
from josef.records.records import iter_records
from josef.storage.api import AppendInfo, PartitionLog, TopicPartition
from josef.storage.errors import StorageError

API_KEY = 0
MIN_VERSION = 3
MAX_VERSION = 11

PartitionResponse = ProduceResponse.PartitionProduceResponse


class _Refused(Exception):
    def __init__(self, error_code: ErrorCode, message: str, batch_index: int = -1) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.batch_index = batch_index


def _error(index: int, code: ErrorCode, message: str | None = None) -> PartitionResponse:
    return PartitionResponse(
        index=index,
        error_code=code,
        base_offset=-1,
        log_append_time_ms=-1,
        log_start_offset=-1,
        error_message=message,
    )


def _check_records(info: TopicInfo, records: bytes | memoryview | None) -> BatchHeader | None:
    """Kafka's request-level checks; returns the first batch's header when it is readable
    (the storage engine reports truncated or corrupt batches with Kafka's codes)."""
    if not records:
        raise _Refused(ErrorCode.INVALID_RECORD, "Produce requests must carry one record batch")
    first = BatchHeader(records, 0) if len(records) >= HEADER_SIZE else None
    if first is not None and first.size < len(records):
        raise _Refused(
            ErrorCode.INVALID_RECORD,
            "Produce requests with version 3 or later must contain exactly one record batch",
        )
    if info.log_config.compact and first is not None and first.crc_valid():
        # Kafka decodes records of compacted topics to require keys (LogValidator), after
        # the CRC check (a corrupt batch is CORRUPT_MESSAGE, reported by the storage engine).
        try:
            for batch in iter_batches(records):
                for record in iter_records(batch):
                    if record.key is None:
                        raise _Refused(
                            ErrorCode.INVALID_RECORD,
                            "Compacted topic cannot accept message without key in topic "
                            f"partition {info.name}.",
                            batch_index=0,
                        )
        except RecordsError:
            pass  # the storage engine's validation reports it with Kafka's error code
    return first


async def handle(broker: Broker, request: Request) -> ProduceResponse | Outcome:
    body: ProduceRequest = request.body
    acks = body.acks
    now_ms = broker.now_ms()
    responses: list[ProduceResponse.TopicProduceResponse] = []
    pending: list[tuple[PartitionResponse, Coroutine[Any, Any, None]]] = []
    failed = False
    for topic_data in body.topic_data:
        partition_responses: list[PartitionResponse] = []
        responses.append(
            ProduceResponse.TopicProduceResponse(
                name=topic_data.name, partition_responses=partition_responses
            )
        )
        info = broker.topics.get(topic_data.name)
        for data in topic_data.partition_data:
            response = _append(broker, info, topic_data.name, data, acks, body, now_ms, pending)
            failed = failed or response.error_code != ErrorCode.NONE
            partition_responses.append(response)
    # Every append completes (fsync if due, then the high watermark), whatever acks says.
    if len(pending) == 1:  # the common case, awaited without a task
        response, completion = pending[0]
        try:
            await completion
        except StorageError as err:
            response.error_code, response.error_message = err.error_code, str(err)
    elif pending:
        outcomes = await asyncio.gather(*(c for _, c in pending), return_exceptions=True)
        for (response, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, StorageError):
                response.error_code, response.error_message = outcome.error_code, str(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
    if acks == 0:
        failed = failed or any(r.error_code != ErrorCode.NONE for r, _ in pending)
        return CLOSE_CONNECTION if failed else NO_RESPONSE
    return ProduceResponse(responses=responses, throttle_time_ms=0)


def _append(
    broker: Broker,
    info: TopicInfo | None,
    topic: str,
    data: ProduceRequest.PartitionProduceData,
    acks: int,
    body: ProduceRequest,
    now_ms: int,
    pending: list[tuple[PartitionResponse, Coroutine[Any, Any, None]]],
) -> PartitionResponse:
    index = data.index
    if acks not in (0, 1, -1):
        return _error(index, ErrorCode.INVALID_REQUIRED_ACKS)
    if info is None or not 0 <= index < info.num_partitions:
        return _error(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    if info.is_internal:
        return _error(index, ErrorCode.INVALID_TOPIC_EXCEPTION,
                      f"Cannot append to internal topic {topic}")
    records = data.records
    try:
        first = _check_records(info, records)
    except _Refused as refused:
        response = _error(index, refused.error_code, refused.message)
        if refused.batch_index >= 0:
            response.record_errors = [
                ProduceResponse.BatchIndexAndErrorMessage(
                    batch_index=refused.batch_index, batch_index_error_message=refused.message
                )
            ]
        return response
    assert records is not None
    if first is not None and first.is_transactional:
        if body.transactional_id is None:
            return _error(index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        return _error(index, ErrorCode.INVALID_PRODUCER_ID_MAPPING,
                      "transactions are not supported by this broker yet")
    plog = info.logs[index]
    try:
        appended = plog.append_as_leader(records, LEADER_EPOCH, now_ms)
    except StorageError as err:
        return _error(index, err.error_code, str(err))
    response = PartitionResponse(
        index=index,
        error_code=ErrorCode.NONE,
        base_offset=appended.first_offset,
        log_append_time_ms=appended.log_append_time,
        log_start_offset=appended.log_start_offset,
        error_message=None,
    )
    tp = TopicPartition(topic, index)
    if not appended.duplicate:
        pending.append((response, broker.complete_append(tp, plog, appended, now_ms)))
    elif plog.high_watermark <= appended.last_offset:
        pending.append((response, _settle_duplicate(broker, tp, plog, appended, now_ms)))
    return response


async def _settle_duplicate(
    broker: Broker, tp: TopicPartition, plog: PartitionLog, appended: AppendInfo, now_ms: int
) -> None:
    """A retry that arrived while its original append waits for its fsync: acknowledged only
    once the original is durable, as the original's own response will be."""
    await broker.group_commit.wait_durable(plog, appended.last_offset + 1)
    await broker.complete_append(tp, plog, appended, now_ms)
