"""DeleteTopics (key 20): delete topics by name (v1-v5) or by name or topic id (v6, KIP-516).

Versions served: 1-6 (v0 is removed in Kafka 4.0, KIP-896).
Kafka semantics followed (KRaft controller), per topic, each a value in the response:
- delete.topic.enable=false refuses the whole request: every topic answers
  TOPIC_DELETION_DISABLED (v3+) or INVALID_REQUEST (v1-v2, which predate that code).
- v6 entries: a name and a non-zero id together, or neither, is INVALID_REQUEST; a name or an
  id named twice is INVALID_REQUEST ("Duplicate topic name." / "Duplicate topic id.") for each
  occurrence, as is a name repeated in v1-v5.
- Unknown name: UNKNOWN_TOPIC_OR_PARTITION; unknown id: UNKNOWN_TOPIC_ID (name null).
- Internal topics are deleted like any other: Kafka 3.9's controller (ControllerApis
  .deleteTopics) does not protect them (only its command-line tools refuse). Deleting
  `__consumer_offsets` makes the group coordinator resign every shard (parked and later
  requests get NOT_COORDINATOR until the next group request creates the topic again); the
  groups and their committed offsets are gone, as in Kafka.
- `Broker.delete_topic` waits for a log-cleaner round in progress, then the topic leaves the
  persisted topic table, then each partition log is closed, its directory renamed to
  `<topic>-<partition>.<uuid>-delete` and removed (a crash in between leaves a `-delete` dir,
  removed at the next start; Kafka does the same).
- v5+ results carry an error message; v6 results carry the topic id (and the name, also when
  the topic was named by id).
Deviations: the partition directories are removed before the response is sent, on the event
loop (the storage engine offers one synchronous delete); Kafka removes them later, after
file.delete.delay.ms. timeout_ms is not needed (deletion completes synchronously).
"""

from __future__ import annotations

import uuid
from collections import Counter

from josef.broker.broker import Broker
from josef.broker.topics import TopicInfo
from josef.protocol import primitives as _p
from josef.protocol._generated.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 6

Result = DeleteTopicsResponse.DeletableTopicResult


def _result(
    name: str | None, topic_id: uuid.UUID, code: ErrorCode, message: str | None = None
) -> Result:
    return Result(name=name, topic_id=topic_id, error_code=code, error_message=message)


async def handle(broker: Broker, request: Request) -> DeleteTopicsResponse:
    body: DeleteTopicsRequest = request.body
    version = request.api_version
    if version >= 6:
        wanted = [(t.name, t.topic_id) for t in body.topics]
    else:
        wanted = [(name, _p.ZERO_UUID) for name in body.topic_names]
    if not broker.config.delete_topic_enable:
        code = ErrorCode.TOPIC_DELETION_DISABLED if version >= 3 else ErrorCode.INVALID_REQUEST
        return DeleteTopicsResponse(
            throttle_time_ms=0,
            responses=[_result(name, topic_id, code, "Topic deletion is disabled.")
                       for name, topic_id in wanted],
        )
    names = Counter(name for name, topic_id in wanted if topic_id == _p.ZERO_UUID)
    ids = Counter(topic_id for name, topic_id in wanted if name is None)
    results: list[Result] = []
    for name, topic_id in wanted:
        if name is not None and topic_id != _p.ZERO_UUID:
            results.append(_result(name, topic_id, ErrorCode.INVALID_REQUEST,
                                   "You may not specify both topic name and topic id."))
        elif name is None and topic_id == _p.ZERO_UUID:
            results.append(_result(None, topic_id, ErrorCode.INVALID_REQUEST,
                                   "Neither topic name nor id were specified."))
        elif name is not None and names[name] > 1:
            results.append(_result(name, topic_id, ErrorCode.INVALID_REQUEST,
                                   "Duplicate topic name."))
        elif name is None and ids[topic_id] > 1:
            results.append(_result(None, topic_id, ErrorCode.INVALID_REQUEST,
                                   "Duplicate topic id."))
        elif name is None:
            info = broker.topics.by_id(topic_id)
            if info is None:
                results.append(_result(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID,
                                       "This server does not host this topic ID."))
            else:
                results.append(await _delete(broker, info))
        else:
            info = broker.topics.get(name)
            if info is None:
                results.append(_result(name, topic_id, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                       "This server does not host this topic-partition."))
            else:
                results.append(await _delete(broker, info))
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


async def _delete(broker: Broker, info: TopicInfo) -> Result:
    if not await broker.delete_topic(info):
        # Deleted by a concurrent request while this one waited for the log cleaner.
        return _result(info.name, info.topic_id, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                       "This server does not host this topic-partition.")
    return _result(info.name, info.topic_id, ErrorCode.NONE)
