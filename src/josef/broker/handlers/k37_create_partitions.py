"""CreatePartitions (key 37): grow topics to a new total partition count.

Versions served: 0-3 (all of them; Kafka 3.9 and 4.0 serve 0-3).
Kafka semantics followed (KRaft controller), per topic, each a value in the response:
- A topic named twice in one request: INVALID_REQUEST ("Duplicate topic name.") for each.
- Unknown topic: UNKNOWN_TOPIC_OR_PARTITION. Partitions only increase: the current count is
  INVALID_PARTITIONS ("Topic already has N partition(s)."), a lower one too ("... would not be
  an increase."); more than MAX_PARTITIONS_PER_TOPIC is INVALID_PARTITIONS.
- Manual assignments (null = automatic): one per new partition, else INVALID_REPLICA_ASSIGNMENT
  ("Attempted to add X additional partition(s), but only Y assignment(s) were specified.");
  each must list exactly the replication factor (1) of brokers, all registered, without
  repeats — on a single node that is [this node], anything else INVALID_REPLICA_ASSIGNMENT.
- validate_only: every check, nothing changed.
- The new count is persisted in the topic table before the new (empty) partition logs are
  created with the topic's current configs.
Deviations: timeout_ms is not needed (the change is synchronous on a single node).
"""

from __future__ import annotations

from collections import Counter

from josef.broker.broker import Broker
from josef.broker.topics import TopicError
from josef.protocol._generated.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3

Result = CreatePartitionsResponse.CreatePartitionsTopicResult
REPLICATION_FACTOR = 1  # single node: every topic has exactly one replica


async def handle(broker: Broker, request: Request) -> CreatePartitionsResponse:
    body: CreatePartitionsRequest = request.body
    counts = Counter(topic.name for topic in body.topics)
    results: list[Result] = []
    for topic in body.topics:
        if counts[topic.name] > 1:
            results.append(Result(name=topic.name, error_code=ErrorCode.INVALID_REQUEST,
                                  error_message="Duplicate topic name."))
            continue
        try:
            _create_partitions(broker, topic, body.validate_only)
        except TopicError as err:
            results.append(Result(name=topic.name, error_code=err.error_code,
                                  error_message=err.message))
            continue
        results.append(Result(name=topic.name, error_code=ErrorCode.NONE, error_message=None))
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)


def _create_partitions(
    broker: Broker, topic: CreatePartitionsRequest.CreatePartitionsTopic, validate_only: bool
) -> None:
    info = broker.topics.validate_add_partitions(topic.name, topic.count)
    if topic.assignments is not None:
        added = topic.count - info.num_partitions
        if len(topic.assignments) != added:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {added} additional partition(s), but only "
                f"{len(topic.assignments)} assignment(s) were specified.",
            )
        for assignment in topic.assignments:
            replicas = assignment.broker_ids
            if len(replicas) != REPLICATION_FACTOR:
                raise TopicError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes a partition with "
                    f"{len(replicas)} replica(s), but this is not consistent with previous "
                    f"partitions, which have {REPLICATION_FACTOR} replica(s).",
                )
            for broker_id in replicas:
                if broker_id != broker.node_id:
                    raise TopicError(
                        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        f"The manual partition assignment includes broker {broker_id}, but "
                        "no such broker is registered.",
                    )
    if not validate_only:
        broker.topics.add_partitions(topic.name, topic.count)
