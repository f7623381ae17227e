"""OffsetForLeaderEpoch (key 23): where a leader epoch ends (KIP-101, KIP-279, KIP-320).

Versions served: 2-4 (v0-v1 are removed in Kafka 4.0, KIP-896). Clients use it to detect log
truncation after a leader change (replica_id -1, or the v2 default); a follower's replica_id
is answered the same way.
Kafka semantics followed (Partition.lastOffsetForLeaderEpoch, LeaderEpochFileCache.endOffsetFor):
- Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
- current_leader_epoch: -1 skips the check; below ours FENCED_LEADER_EPOCH, above ours
  UNKNOWN_LEADER_EPOCH (the response then has leader_epoch -1, end_offset -1).
- leader_epoch (the requested one): the latest epoch ends at the log end offset; -1 or an epoch
  above every known one is UNDEFINED (-1, -1) with error NONE; an epoch below every known one
  answers (requested epoch, start offset of the first known epoch).
Single node: the partition has had one leader epoch, LEADER_EPOCH (0), since creation, and
Kafka's cache would hold (0, log_start_offset) (assigned when the partition became leader, its
start moved with the log start offset), so the answer follows from the log's offsets alone.
Deviation (until the disk log keeps a leader-epoch cache): a log whose batches carry other
epochs (data copied from another cluster) is still described as one epoch 0.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.topics import LEADER_EPOCH
from josef.protocol._generated.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode
from josef.storage.api import PartitionLog

API_KEY = 23
MIN_VERSION = 2
MAX_VERSION = 4

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
NO_PARTITION_LEADER_EPOCH = -1  # Kafka's RecordBatch.NO_PARTITION_LEADER_EPOCH: no check

EpochEndOffset = OffsetForLeaderEpochResponse.EpochEndOffset


def end_offset_for(plog: PartitionLog, requested_epoch: int) -> tuple[int, int]:
    """(epoch, end offset) as LeaderEpochFileCache.endOffsetFor answers for the one-entry
    cache [(LEADER_EPOCH, log_start_offset)]."""
    if requested_epoch == UNDEFINED_EPOCH or requested_epoch > LEADER_EPOCH:
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
    if requested_epoch == LEADER_EPOCH:
        return LEADER_EPOCH, plog.log_end_offset
    return requested_epoch, plog.log_start_offset


async def handle(broker: Broker, request: Request) -> OffsetForLeaderEpochResponse:
    body: OffsetForLeaderEpochRequest = request.body
    topics: list[OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult] = []
    for topic in body.topics:
        info = broker.topics.get(topic.topic)
        partitions: list[EpochEndOffset] = []
        topics.append(
            OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(
                topic=topic.topic, partitions=partitions
            )
        )
        for wanted in topic.partitions:
            index = wanted.partition
            current = wanted.current_leader_epoch
            if info is None or not 0 <= index < info.num_partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif current in (NO_PARTITION_LEADER_EPOCH, LEADER_EPOCH):
                epoch, end_offset = end_offset_for(info.logs[index], wanted.leader_epoch)
                partitions.append(
                    EpochEndOffset(error_code=ErrorCode.NONE, partition=index,
                                   leader_epoch=epoch, end_offset=end_offset)
                )
                continue
            elif current > LEADER_EPOCH:
                code = ErrorCode.UNKNOWN_LEADER_EPOCH
            else:
                code = ErrorCode.FENCED_LEADER_EPOCH
            partitions.append(
                EpochEndOffset(error_code=code, partition=index,
                               leader_epoch=UNDEFINED_EPOCH, end_offset=UNDEFINED_EPOCH_OFFSET)
            )
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)
