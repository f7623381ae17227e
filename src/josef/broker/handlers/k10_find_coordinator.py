"""FindCoordinator (key 10): which broker coordinates a group or a transactional id.

Versions served: 0-6 (Kafka 3.9 serves 0-6). v0-v3 ask for one key and answer at the top
level; v4+ ask for a batch (coordinator_keys, KIP-699) and answer one Coordinator per key.
Kafka semantics followed (KafkaApis.getCoordinator):
- key_type GROUP (0; the only type before v1): this broker, at its advertised listener, for
  every key (a single node hosts every __consumer_offsets partition).
- key_type TRANSACTION (1): COORDINATOR_NOT_AVAILABLE with node -1, host "", port -1 — Kafka's
  answer while __transaction_state has no leader; transactions are not built yet.
- key_type SHARE (2, v6, KIP-932): INVALID_REQUEST, as Kafka 3.9 answers (share groups are not
  implemented there either).
- Any other key_type: INVALID_REQUEST for the request (every key in v4+).
- v1-v3 error_message is Kafka's Errors.message(): "NONE" on success.
Deviation: Kafka answers COORDINATOR_NOT_AVAILABLE once while it creates __consumer_offsets;
this broker answers with itself at once.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode, describe

API_KEY = 10
MIN_VERSION = 0
MAX_VERSION = 6

GROUP = 0  # Kafka's FindCoordinatorRequest.CoordinatorType ids
TRANSACTION = 1
FIRST_BATCHED_VERSION = 4  # KIP-699

NO_NODE = (-1, "", -1)  # Kafka's Node.noNode(): id, host, port


def _coordinator(broker: Broker, key_type: int) -> tuple[ErrorCode, tuple[int, str, int]]:
    if key_type == GROUP:
        return ErrorCode.NONE, (broker.node_id, broker.advertised_host, broker.advertised_port)
    if key_type == TRANSACTION:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE, NO_NODE
    return ErrorCode.INVALID_REQUEST, NO_NODE


def _message(code: ErrorCode) -> str:
    return "NONE" if code == ErrorCode.NONE else describe(code)


async def handle(broker: Broker, request: Request) -> FindCoordinatorResponse:
    body: FindCoordinatorRequest = request.body
    code, (node_id, host, port) = _coordinator(broker, body.key_type)
    if request.api_version < FIRST_BATCHED_VERSION:
        return FindCoordinatorResponse(
            throttle_time_ms=0, error_code=code, error_message=_message(code),
            node_id=node_id, host=host, port=port,
        )
    return FindCoordinatorResponse(
        throttle_time_ms=0,
        coordinators=[
            FindCoordinatorResponse.Coordinator(
                key=key, node_id=node_id, host=host, port=port, error_code=code,
                error_message=None if code == ErrorCode.NONE else describe(code),
            )
            for key in body.coordinator_keys
        ],
    )
