"""Heartbeat (key 12): keep a member's session alive and learn of rebalances.

Versions served: 0-4 (every version Kafka defines).
Kafka semantics followed (through `josef.coordinator.group`): the member's session timer
restarts; REBALANCE_IN_PROGRESS tells it to rejoin; UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
FENCED_INSTANCE_ID (v3+, static members), COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR and
COORDINATOR_NOT_AVAILABLE as for JoinGroup. Heartbeats write nothing; the answer still waits
for earlier records of the shard to be durable, so it never overtakes them.
Deviations: none known.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 12
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(broker: Broker, request: Request) -> HeartbeatResponse:
    body: HeartbeatRequest = request.body
    version = request.api_version

    def error(code: ErrorCode) -> HeartbeatResponse:
        return HeartbeatResponse(error_code=code)

    return await broker.groups.call(
        body.group_id, lambda c, now_ms: c.handle_heartbeat(body, version, now_ms), error
    )
