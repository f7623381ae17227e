"""Metadata (key 3): brokers, cluster id, controller and the topics a client asks about.

Versions served: 0-12.
Kafka semantics followed:
- Brokers: this node alone, at its advertised listener; controller_id is this node (KRaft
  brokers report an alive broker there); cluster_id from meta.properties (v2+).
- Topics: null (v1+) or an empty list (v0) means every topic; duplicates are answered once.
  Each partition: leader = this node, replicas = isr = [this node], no offline replicas,
  leader_epoch (v7+), topic ids (v10+, KIP-516). v10+ may name topics by id only: an unknown
  id is answered UNKNOWN_TOPIC_ID with a null name.
- Unknown names: INVALID_TOPIC_EXCEPTION for an illegal name; otherwise auto-created with the
  broker defaults (num.partitions) when auto.create.topics.enable is true and the request allows
  it (allow_auto_topic_creation, v4+; always allowed before v4), else
  UNKNOWN_TOPIC_OR_PARTITION. Names starting with "__" are never auto-created (Kafka's
  internal topics are created by their coordinators).
- Authorized operations (v8+, KIP-430): without ACLs everything is allowed, so when asked the
  bit fields list every operation that applies to a topic / the cluster.
Deviations: an auto-created topic is answered at once with its partitions and NONE (Kafka
answers LEADER_NOT_AVAILABLE until leaders are elected; a single node has its leader at once),
so clients need no retry.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.topics import LEADER_EPOCH, TopicError, TopicInfo, validate_topic_name
from josef.protocol import primitives as _p
from josef.protocol._generated.metadata import MetadataRequest, MetadataResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 3
MIN_VERSION = 0
MAX_VERSION = 12

# Kafka's AclOperation codes: READ=3, WRITE=4, CREATE=5, DELETE=6, ALTER=7, DESCRIBE=8,
# CLUSTER_ACTION=9, DESCRIBE_CONFIGS=10, ALTER_CONFIGS=11, IDEMPOTENT_WRITE=12,
# CREATE_TOKENS=13, DESCRIBE_TOKENS=14.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12, 13, 14))
OPERATIONS_NOT_REQUESTED = -2147483648  # Kafka's "not requested" sentinel (INT32_MIN)

Partition = MetadataResponse.MetadataResponsePartition
Topic = MetadataResponse.MetadataResponseTopic


def describe_topic(broker: Broker, info: TopicInfo, operations: int) -> Topic:
    node = broker.node_id
    return Topic(
        error_code=ErrorCode.NONE,
        name=info.name,
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
                offline_replicas=[],
            )
            for index in range(info.num_partitions)
        ],
        topic_authorized_operations=operations,
    )


def _error_topic(name: str | None, error: ErrorCode) -> Topic:
    return Topic(error_code=error, name=name, topic_id=_p.ZERO_UUID, partitions=[])


async def handle(broker: Broker, request: Request) -> MetadataResponse:
    body: MetadataRequest = request.body
    version = request.api_version
    topic_ops = (
        TOPIC_OPERATIONS
        if version >= 8 and body.include_topic_authorized_operations
        else OPERATIONS_NOT_REQUESTED
    )
    cluster_ops = (
        CLUSTER_OPERATIONS
        if 8 <= version <= 10 and body.include_cluster_authorized_operations
        else OPERATIONS_NOT_REQUESTED
    )
    allow_auto_create = broker.config.auto_create_topics_enable and (
        version < 4 or body.allow_auto_topic_creation
    )
    topics: list[Topic] = []
    if body.topics is None or (version == 0 and not body.topics):
        topics = [describe_topic(broker, info, topic_ops) for info in broker.topics]
    else:
        seen: set[object] = set()
        for wanted in body.topics:
            name = wanted.name
            if name is None:  # v10+: by topic id only
                if wanted.topic_id in seen:
                    continue
                seen.add(wanted.topic_id)
                info = broker.topics.by_id(wanted.topic_id)
                if info is None:
                    topic = _error_topic(None, ErrorCode.UNKNOWN_TOPIC_ID)
                    topic.topic_id = wanted.topic_id
                    topics.append(topic)
                else:
                    topics.append(describe_topic(broker, info, topic_ops))
                continue
            if name in seen:
                continue
            seen.add(name)
            topics.append(_lookup(broker, name, allow_auto_create, topic_ops))
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[
            MetadataResponse.MetadataResponseBroker(
                node_id=broker.node_id,
                host=broker.advertised_host,
                port=broker.advertised_port,
                rack=None,
            )
        ],
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        topics=topics,
        cluster_authorized_operations=cluster_ops,
    )


def _lookup(broker: Broker, name: str, allow_auto_create: bool, topic_ops: int) -> Topic:
    info = broker.topics.get(name)
    if info is not None:
        return describe_topic(broker, info, topic_ops)
    try:
        validate_topic_name(name)
    except TopicError as err:
        return _error_topic(name, err.error_code)
    if not allow_auto_create or name.startswith("__"):
        return _error_topic(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    try:
        info = broker.auto_create(name)
    except TopicError as err:
        return _error_topic(name, err.error_code)
    return describe_topic(broker, info, topic_ops)
