"""ConsumerGroupHeartbeat (key 68): the KIP-848 consumer group protocol.

Versions served: 0-1 (v1 adds SubscribedTopicRegex).
Kafka semantics followed (through `josef.coordinator.group.consumer_group`): members join with
epoch 0 (the client's member id, KIP-1082, or one the coordinator generates when it sends
none), leave with -1 (static members -2); the server-side assignor ("uniform" by default,
"range") computes the target assignment for each group epoch and members reconcile towards it
incrementally: a partition reaches its new owner only after its previous owner revoked it.
Errors: INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, GROUP_ID_NOT_FOUND
(unknown group, or a classic group with members), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH,
UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, and the coordinator errors
(COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE). The answer waits
until the records of the heartbeat are durable.
Topic metadata (ids, partition counts) is a view of the broker's topics handed to the
coordinator, which stays free of broker imports; internal topics are not subscribable.
Deviations: see the consumer_group module docstring (regex dialect, no rack awareness).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from josef.broker.broker import Broker
from josef.broker.groups import request_client_host
from josef.broker.topics import Topics
from josef.coordinator.group.consumer_group import TopicMetadata
from josef.protocol._generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 68
MIN_VERSION = 0
MAX_VERSION = 1


class TopicsView(Mapping[str, TopicMetadata]):
    """The broker's non-internal topics as the assignor sees them, read on demand."""

    def __init__(self, topics: Topics) -> None:
        self._topics = topics

    def __getitem__(self, name: str) -> TopicMetadata:
        info = self._topics.get(name)
        if info is None or info.is_internal:
            raise KeyError(name)
        return TopicMetadata(info.topic_id, info.name, info.num_partitions)

    def __iter__(self) -> Iterator[str]:
        return (info.name for info in self._topics if not info.is_internal)

    def __len__(self) -> int:
        return sum(1 for _ in self)


async def handle(broker: Broker, request: Request) -> ConsumerGroupHeartbeatResponse:
    body: ConsumerGroupHeartbeatRequest = request.body
    version = request.api_version
    client_id = request.client_id
    client_host = request_client_host()
    topics = TopicsView(broker.topics)

    def error(code: ErrorCode) -> ConsumerGroupHeartbeatResponse:
        return ConsumerGroupHeartbeatResponse(error_code=code)

    return await broker.groups.call(
        body.group_id,
        lambda c, now_ms: c.handle_consumer_group_heartbeat(
            body, version, client_id, client_host, topics, now_ms
        ),
        error,
    )
