"""JoinGroup (key 11): join a classic consumer group and wait for the rebalance to complete.

Versions served: 0-9 (every version Kafka defines; the coordinator handles each one's fields).
Kafka semantics followed (GroupCoordinator / ClassicGroup, through `josef.coordinator.group`):
- v4+ without a member id and without group.instance.id: MEMBER_ID_REQUIRED with the member
  id to rejoin with (KIP-394); static members (group.instance.id, v5+, KIP-345) replace their
  previous incarnation, fencing it with FENCED_INSTANCE_ID.
- The request is parked until the join phase ends (every member rejoined, or the rebalance
  timeout passed; v0: the session timeout) and is answered only once the records of the call
  that completes it are durable in `__consumer_offsets`.
- Errors: INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT (outside group.min/max.session.timeout.ms),
  INCONSISTENT_GROUP_PROTOCOL (protocol type or no common protocol), UNKNOWN_MEMBER_ID,
  FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, REBALANCE_IN_PROGRESS (a newer join from the same
  member), COORDINATOR_LOAD_IN_PROGRESS while the shard loads, NOT_COORDINATOR after a failed
  append or during shutdown, COORDINATOR_NOT_AVAILABLE when `__consumer_offsets` cannot be
  created.
Deviations: more than 64 protocols or 1 MiB of protocol metadata gets INVALID_REQUEST (Kafka
bounds them only by the request size); client_host is the peer address without Kafka's "/".
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.groups import request_client_host
from josef.protocol._generated.join_group import JoinGroupRequest, JoinGroupResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 11
MIN_VERSION = 0
MAX_VERSION = 9


async def handle(broker: Broker, request: Request) -> JoinGroupResponse:
    body: JoinGroupRequest = request.body
    version = request.api_version
    client_id = request.client_id
    client_host = request_client_host()

    def error(code: ErrorCode) -> JoinGroupResponse:
        return JoinGroupResponse(
            error_code=code, generation_id=-1, protocol_name="", leader="",
            member_id=body.member_id,
        )

    return await broker.groups.call(
        body.group_id,
        lambda c, now_ms: c.handle_join_group(body, version, client_id, client_host, now_ms),
        error,
    )
