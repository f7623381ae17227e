"""DescribeTopicPartitions (key 75): topic and partition metadata, paginated (KIP-966).

Versions served: 0.
Kafka semantics followed:
- topics empty: every topic; otherwise the named ones (duplicates once). Topics are answered
  in name order, starting at the cursor's topic (names before it are skipped) and, within
  that topic, at the cursor's partition_index.
- At most min(response_partition_limit, max.request.partition.size.limit) partitions per
  response, and at least 1. When the limit cuts a topic, next_cursor names that topic and the
  first partition not sent; when it is reached exactly at a topic boundary, next_cursor names
  the next topic at partition 0; when everything fits, next_cursor is null.
- A named topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
  illegal name) with the zero topic id; such errors are left out when listing every topic.
- A cursor whose topic is not among the named topics, or with a negative partition_index, is
  INVALID_REQUEST, answered (as Kafka's error response) on every named topic.
- Each partition: leader = this node, replicas = isr = [this node], leader epoch, empty
  eligible_leader_replicas / last_known_elr (no ELR on one node), no offline replicas.
  topic_authorized_operations: every topic operation (no ACLs).
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.handlers.k03_metadata import OPERATIONS_NOT_REQUESTED, TOPIC_OPERATIONS
from josef.broker.topics import LEADER_EPOCH, TopicError, validate_topic_name
from josef.protocol import primitives as _p
from josef.protocol._generated.describe_topic_partitions import (
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 75
MIN_VERSION = 0
MAX_VERSION = 0

# Kafka's max.request.partition.size.limit default: the most partitions one response carries.
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000

Response = DescribeTopicPartitionsResponse
Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
Partition = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition


def _error_topic(name: str, error: ErrorCode, operations: int = TOPIC_OPERATIONS) -> Topic:
    return Topic(error_code=error, name=name, topic_id=_p.ZERO_UUID, is_internal=False,
                 partitions=[], topic_authorized_operations=operations)


def _missing(name: str) -> Topic:
    try:
        validate_topic_name(name)
    except TopicError as err:
        return _error_topic(name, err.error_code)
    return _error_topic(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


async def handle(broker: Broker, request: Request) -> Response:
    body: DescribeTopicPartitionsRequest = request.body
    cursor = body.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    list_all = not body.topics
    if list_all:
        names = {info.name for info in broker.topics if info.name >= cursor_topic}
    else:
        names = {t.name for t in body.topics if t.name >= cursor_topic}
        if cursor is not None and cursor.topic_name not in names:
            return _refuse(body)  # the cursor's topic must be one of the named topics
    if cursor is not None and cursor.partition_index < 0:
        return _refuse(body)
    remaining = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, body.response_partition_limit), 1)
    node = broker.node_id
    response = Response(throttle_time_ms=0, topics=[], next_cursor=None)
    for name in sorted(names):
        if remaining == 0:
            response.next_cursor = Response.Cursor(topic_name=name, partition_index=0)
            break
        info = broker.topics.get(name)
        if info is None:
            if not list_all:
                response.topics.append(_missing(name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        end = min(start + remaining, info.num_partitions)
        response.topics.append(Topic(
            error_code=ErrorCode.NONE,
            name=name,
            topic_id=info.topic_id,
            is_internal=info.is_internal,
            partitions=[
                Partition(
                    error_code=ErrorCode.NONE,
                    partition_index=index,
                    leader_id=node,
                    leader_epoch=LEADER_EPOCH,
                    replica_nodes=[node],
                    isr_nodes=[node],
                    eligible_leader_replicas=[],
                    last_known_elr=[],
                    offline_replicas=[],
                )
                for index in range(start, end)
            ],
            topic_authorized_operations=TOPIC_OPERATIONS,
        ))
        if end < info.num_partitions:
            response.next_cursor = Response.Cursor(topic_name=name, partition_index=end)
            break
        remaining -= max(end - start, 0)
    return response


def _refuse(body: DescribeTopicPartitionsRequest) -> Response:
    """Kafka's error response for this API: INVALID_REQUEST on every named topic (the
    response has no top-level error field)."""
    return Response(
        throttle_time_ms=0,
        topics=[_error_topic(t.name, ErrorCode.INVALID_REQUEST, OPERATIONS_NOT_REQUESTED)
                for t in body.topics],
        next_cursor=None,
    )
