"""OffsetCommit (key 8): store a group's committed offsets in `__consumer_offsets`.

Versions served: 0-9 (every version Kafka defines; v9 is v8 for classic groups).
Kafka semantics followed (through `josef.coordinator.group`):
- Acknowledged only once the OffsetCommit records are durable (fsynced through the group
  commit). The committed metadata string is kept (offset.metadata.max.bytes, 4096:
  OFFSET_METADATA_TOO_LARGE for that partition).
- Generation -1 with an empty member id is a simple-consumer/admin commit, allowed while the
  group has no members; otherwise UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
  REBALANCE_IN_PROGRESS (CompletingRebalance) for every partition.
- v1 per-partition commit timestamps and v2-v4 retention_time_ms become an explicit expire
  timestamp (OffsetCommitValue v1), as in Kafka.
- Coordinator errors (COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE)
  are reported for every partition, as Kafka does.
Deviations: topics and partitions are not checked for existence (Kafka 3.x does not check
either for groups it coordinates).
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 8
MIN_VERSION = 0
MAX_VERSION = 9


async def handle(broker: Broker, request: Request) -> OffsetCommitResponse:
    body: OffsetCommitRequest = request.body
    version = request.api_version

    def error(code: ErrorCode) -> OffsetCommitResponse:
        return OffsetCommitResponse(
            topics=[
                OffsetCommitResponse.OffsetCommitResponseTopic(
                    name=topic.name,
                    partitions=[
                        OffsetCommitResponse.OffsetCommitResponsePartition(
                            partition_index=p.partition_index, error_code=code
                        )
                        for p in topic.partitions
                    ],
                )
                for topic in body.topics
            ]
        )

    return await broker.groups.call(
        body.group_id, lambda c, now_ms: c.handle_offset_commit(body, version, now_ms), error
    )
