"""SyncGroup (key 14): the leader hands out the assignment; every member receives its own.

Versions served: 0-5 (every version Kafka defines).
Kafka semantics followed (through `josef.coordinator.group`):
- The leader's request (with assignments) persists the group (GroupMetadata record) and is
  answered, together with every follower parked in SyncGroup, once that record is durable.
  A follower arriving before the leader is parked until then.
- v5 protocol_type / protocol_name must match the group's, else INCONSISTENT_GROUP_PROTOCOL.
- Errors: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS,
  COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE (see JoinGroup).
Deviations: an assignment above 1 MiB for one member gets INVALID_REQUEST.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.sync_group import SyncGroupRequest, SyncGroupResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 14
MIN_VERSION = 0
MAX_VERSION = 5


async def handle(broker: Broker, request: Request) -> SyncGroupResponse:
    body: SyncGroupRequest = request.body
    version = request.api_version

    def error(code: ErrorCode) -> SyncGroupResponse:
        return SyncGroupResponse(error_code=code)

    return await broker.groups.call(
        body.group_id, lambda c, now_ms: c.handle_sync_group(body, version, now_ms), error
    )
