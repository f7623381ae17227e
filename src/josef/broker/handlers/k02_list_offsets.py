"""ListOffsets (key 2): offsets by time, earliest, latest and max timestamp.

Versions served: 1-9 (v0's multi-offset form is removed in Kafka 4.0, KIP-896).
Kafka semantics followed:
- timestamp -1 (LATEST): the high watermark (= last stable offset until transactions exist,
  so both isolation levels agree); -2 (EARLIEST) and -4 (EARLIEST_LOCAL, v8+, KIP-405): the
  log start offset; -3 (MAX_TIMESTAMP, v7+, KIP-734): the offset of the record with the largest
  timestamp; -5 (LATEST_TIERED, v9+, KIP-1005): -1 as no tiered storage exists. These answer
  timestamp -1 except MAX_TIMESTAMP, which answers the timestamp found.
- timestamp >= 0: the first offset whose timestamp is at least it; none (or only past the
  high watermark) answers offset -1, timestamp -1.
- current_leader_epoch (v4+, KIP-320): above ours UNKNOWN_LEADER_EPOCH, below
  FENCED_LEADER_EPOCH; the response leader_epoch (v4+) is the epoch of the offset.
- Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; a partition named twice in one
  request: INVALID_REQUEST for each occurrence (Kafka's duplicate check).
Deviations: none known.
"""

from __future__ import annotations

from collections import Counter

from josef.broker.broker import Broker
from josef.broker.topics import LEADER_EPOCH
from josef.protocol._generated.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode
from josef.storage.api import PartitionLog

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 9

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5

PartitionResponse = ListOffsetsResponse.ListOffsetsPartitionResponse


def _answer(index: int, offset: int, timestamp: int = -1, epoch: int = LEADER_EPOCH) -> (
    PartitionResponse
):
    return PartitionResponse(
        partition_index=index,
        error_code=ErrorCode.NONE,
        timestamp=timestamp,
        offset=offset,
        leader_epoch=epoch if offset >= 0 else -1,
    )


def _lookup(plog: PartitionLog, index: int, timestamp: int) -> PartitionResponse:
    high_watermark = plog.high_watermark
    if timestamp == LATEST_TIMESTAMP:
        return _answer(index, high_watermark)
    if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
        return _answer(index, plog.log_start_offset)
    if timestamp == LATEST_TIERED_TIMESTAMP:
        return _answer(index, -1)
    found = (
        plog.offset_of_max_timestamp()
        if timestamp == MAX_TIMESTAMP
        else plog.offset_for_timestamp(timestamp)
    )
    if found is None or found.offset >= high_watermark:
        return _answer(index, -1)
    epoch = found.leader_epoch if found.leader_epoch >= 0 else LEADER_EPOCH
    return _answer(index, found.offset, found.timestamp, epoch)


async def handle(broker: Broker, request: Request) -> ListOffsetsResponse:
    body: ListOffsetsRequest = request.body
    counts = Counter((t.name, p.partition_index) for t in body.topics for p in t.partitions)
    topics: list[ListOffsetsResponse.ListOffsetsTopicResponse] = []
    for topic in body.topics:
        info = broker.topics.get(topic.name)
        partitions: list[PartitionResponse] = []
        topics.append(
            ListOffsetsResponse.ListOffsetsTopicResponse(name=topic.name, partitions=partitions)
        )
        for wanted in topic.partitions:
            index = wanted.partition_index
            epoch = wanted.current_leader_epoch
            if counts[(topic.name, index)] > 1:
                code = ErrorCode.INVALID_REQUEST
            elif info is None or not 0 <= index < info.num_partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif epoch > LEADER_EPOCH:
                code = ErrorCode.UNKNOWN_LEADER_EPOCH
            elif 0 <= epoch < LEADER_EPOCH:
                code = ErrorCode.FENCED_LEADER_EPOCH
            else:
                partitions.append(_lookup(info.logs[index], index, wanted.timestamp))
                continue
            partitions.append(PartitionResponse(partition_index=index, error_code=code))
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)
