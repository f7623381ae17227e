"""CreateTopics (key 19): create topics with partitions and config overrides.

Versions served: 2-7 (Kafka 3.9 still serves 2+; 0-1 are deprecated and removed in 4.0).
Kafka semantics followed (per topic, each a value in the response, never a failed request):
- A name given twice in one request: INVALID_REQUEST for that name.
- num_partitions / replication_factor -1 (v4+) take the broker defaults (num.partitions,
  default.replication.factor); 0 or below -1 is INVALID_PARTITIONS /
  INVALID_REPLICATION_FACTOR. A factor above 1 cannot be met by one live broker:
  INVALID_REPLICATION_FACTOR.
- Manual assignments require num_partitions = replication_factor = -1 (else INVALID_REQUEST);
  partitions must be 0..n-1 and each replica list exactly [this node] (anything else is
  INVALID_REPLICA_ASSIGNMENT: no other broker exists).
- Configs: unknown names and invalid values are INVALID_CONFIG with Kafka-like messages.
- Illegal or colliding names: INVALID_TOPIC_EXCEPTION; existing: TOPIC_ALREADY_EXISTS.
- validate_only: every check, nothing created; the response still describes the topic.
- v5+ results carry partitions, replication factor and the topic's effective configs; v7+ the
  topic id (zero when validate_only).
Deviations: timeout_ms is not needed (creation is synchronous on a single node).
"""

from __future__ import annotations

from collections import Counter

from josef.broker.broker import Broker
from josef.broker.topics import TopicError
from josef.cluster.config import ConfigError, describe_topic_config
from josef.protocol import primitives as _p
from josef.protocol._generated.create_topics import CreateTopicsRequest, CreateTopicsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 19
MIN_VERSION = 2
MAX_VERSION = 7

Result = CreateTopicsResponse.CreatableTopicResult


async def handle(broker: Broker, request: Request) -> CreateTopicsResponse:
    body: CreateTopicsRequest = request.body
    counts = Counter(topic.name for topic in body.topics)
    results: list[Result] = []
    for topic in body.topics:
        if counts[topic.name] > 1:
            results.append(_error(topic.name, ErrorCode.INVALID_REQUEST,
                                  f"Duplicate topic name {topic.name} in the request"))
            continue
        try:
            results.append(_create(broker, topic, body.validate_only, request.api_version))
        except TopicError as err:
            results.append(_error(topic.name, err.error_code, err.message))
        except ConfigError as err:
            results.append(_error(topic.name, ErrorCode.INVALID_CONFIG, str(err)))
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


def _error(name: str, code: ErrorCode, message: str) -> Result:
    return Result(name=name, error_code=code, error_message=message, configs=None)


def _create(
    broker: Broker, topic: CreateTopicsRequest.CreatableTopic, validate_only: bool, version: int
) -> Result:
    num_partitions = topic.num_partitions
    replication_factor = topic.replication_factor
    if topic.assignments:
        if num_partitions != -1 or replication_factor != -1:
            raise TopicError(
                ErrorCode.INVALID_REQUEST,
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time.",
            )
        indexes = sorted(a.partition_index for a in topic.assignments)
        if indexes != list(range(len(indexes))):
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "Partitions should be a consecutive 0-based integer sequence",
            )
        for assignment in topic.assignments:
            if assignment.broker_ids != [broker.node_id]:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"Replica assignment {assignment.broker_ids} for partition "
                    f"{assignment.partition_index}: the only live broker is {broker.node_id}",
                )
        num_partitions = len(indexes)
        replication_factor = 1
    if num_partitions == -1:
        num_partitions = broker.config.num_partitions
    if replication_factor == -1:
        replication_factor = broker.config.default_replication_factor
    if num_partitions <= 0:
        raise TopicError(ErrorCode.INVALID_PARTITIONS,
                         f"Number of partitions was set to an invalid non-positive value "
                         f"{num_partitions}.")
    if replication_factor <= 0:
        raise TopicError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         "Replication factor must be larger than 0, or -1 to use the default "
                         "value.")
    if replication_factor > 1:
        raise TopicError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"Unable to replicate the partition {replication_factor} time(s): The target "
            "replication factor of "
            f"{replication_factor} cannot be reached because only 1 broker(s) are registered.",
        )
    configs: dict[str, str] = {}
    for config in topic.configs:
        if config.value is None:
            raise ConfigError(f"Null value not supported for topic configs: {config.name}",
                              config.name)
        configs[config.name] = config.value
    if validate_only:
        broker.topics.validate_create(topic.name, num_partitions, configs)
        topic_id = _p.ZERO_UUID
    else:
        topic_id = broker.topics.create(topic.name, num_partitions, configs).topic_id
    result = Result(
        name=topic.name,
        topic_id=topic_id,
        error_code=ErrorCode.NONE,
        error_message=None,
        num_partitions=num_partitions,
        replication_factor=replication_factor,
        configs=None,
    )
    if version >= 5:
        result.configs = [
            CreateTopicsResponse.CreatableTopicConfigs(
                name=entry.name,
                value=entry.value,
                read_only=entry.read_only,
                config_source=entry.source,
                is_sensitive=entry.is_sensitive,
            )
            for entry in describe_topic_config(broker.config, configs)
        ]
    return result
