"""OffsetDelete (key 47): delete a group's committed offsets for some partitions (KIP-496).

Versions served: 0 (the only version Kafka defines).
Kafka semantics followed (through `josef.coordinator.group`): allowed on an Empty group, and
on a consumer-protocol group for topics no member subscribes to (else per-partition
GROUP_SUBSCRIBED_TO_TOPIC); tombstones are durable before the answer. Top-level errors:
INVALID_GROUP_ID, GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, COORDINATOR_LOAD_IN_PROGRESS,
NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE.
Deviations: none known.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 47
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(broker: Broker, request: Request) -> OffsetDeleteResponse:
    body: OffsetDeleteRequest = request.body
    version = request.api_version

    def error(code: ErrorCode) -> OffsetDeleteResponse:
        return OffsetDeleteResponse(error_code=code)

    return await broker.groups.call(
        body.group_id, lambda c, now_ms: c.handle_offset_delete(body, version, now_ms), error
    )
