"""LeaveGroup (key 13): members leave a group, which rebalances without them.

Versions served: 0-5 (every version Kafka defines). v0-v2 name one member; v3+ a batch of
members, each with its own error code (KIP-345); v5 carries a reason (KIP-800, logged nowhere).
Kafka semantics followed (through `josef.coordinator.group`): a leaving member's parked requests
fail, the group prepares a rebalance (or becomes Empty, persisted); per-member UNKNOWN_MEMBER_ID
and FENCED_INSTANCE_ID; group-level COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR and
COORDINATOR_NOT_AVAILABLE as for JoinGroup.
Deviations: none known.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.leave_group import LeaveGroupRequest, LeaveGroupResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 13
MIN_VERSION = 0
MAX_VERSION = 5


async def handle(broker: Broker, request: Request) -> LeaveGroupResponse:
    body: LeaveGroupRequest = request.body
    version = request.api_version

    def error(code: ErrorCode) -> LeaveGroupResponse:
        return LeaveGroupResponse(error_code=code)

    return await broker.groups.call(
        body.group_id, lambda c, now_ms: c.handle_leave_group(body, version, now_ms), error
    )
