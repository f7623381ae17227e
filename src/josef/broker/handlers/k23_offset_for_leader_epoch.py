"""OffsetForLeaderEpoch (key 23): where a leader epoch ends (KIP-101, KIP-279, KIP-320).

Versions served: 2-4 (v0-v1 are removed in Kafka 4.0, KIP-896). Clients use it to detect log
truncation after a leader change (replica_id -1, or the v2 default); a follower's replica_id
is answered the same way.
Kafka semantics followed (Partition.lastOffsetForLeaderEpoch, LeaderEpochFileCache.endOffsetFor):
- Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
- current_leader_epoch: -1 skips the check; below ours FENCED_LEADER_EPOCH, above ours
  UNKNOWN_LEADER_EPOCH (the response then has leader_epoch -1, end_offset -1).
- leader_epoch (the requested one), answered from the partition log's leader-epoch cache:
  the latest epoch ends at the log end offset; an older one where the next higher epoch
  starts (with the largest known epoch <= requested); -1 or an epoch above every known one is
  UNDEFINED (-1, -1) with error NONE; an epoch below every known one answers (requested
  epoch, start offset of the first known epoch).
Single node: this broker leads every partition at LEADER_EPOCH (0), assigned at the log end
offset when the partition is opened (Kafka's makeLeader); earlier epochs come from the batch
headers of replicated or restored data.
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
from josef.storage.leader_epoch import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET

API_KEY = 23
MIN_VERSION = 2
MAX_VERSION = 4

NO_PARTITION_LEADER_EPOCH = -1  # Kafka's RecordBatch.NO_PARTITION_LEADER_EPOCH: no check

EpochEndOffset = OffsetForLeaderEpochResponse.EpochEndOffset


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
                plog = info.logs[index]
                epoch, end_offset = plog.leader_epoch_cache.end_offset_for(
                    wanted.leader_epoch, plog.log_end_offset
                )
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
