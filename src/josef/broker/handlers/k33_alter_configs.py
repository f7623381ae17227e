"""AlterConfigs (key 33): replace the whole config override set of topics and brokers.

Versions served: 0-2.
Kafka semantics followed (KRaft broker preprocessing + controller; each resource answered on
its own, in request order, never a failed request):
- A resource named twice in one request: every occurrence INVALID_REQUEST "Each resource must
  appear at most once."; a config named twice in a resource: INVALID_REQUEST "Error due to
  duplicate config keys"; a null value: INVALID_REQUEST "Null value not supported for : ...".
- TOPIC (2): the given configs REPLACE every override of the topic (legacy AlterConfigs
  semantics: a config not listed returns to the broker default). Empty name: INVALID_REQUEST;
  illegal name: INVALID_TOPIC_EXCEPTION; unknown topic: UNKNOWN_TOPIC_OR_PARTITION; unknown
  config name or invalid value: INVALID_CONFIG. The new configs are persisted in the topics
  table and applied at once to the open partition logs (`PartitionLog.update_config`).
- BROKER (4): resource name "" is the cluster-wide dynamic default, this node's id its
  per-broker dynamic configs (KIP-226); any other name is INVALID_REQUEST ("Node id must be an
  integer" / "Unexpected broker id"). The given configs replace that whole dynamic layer.
  Only dynamic configs can be set; anything else ("Cannot update these configs dynamically"),
  an unknown name or an invalid value is INVALID_REQUEST, as Kafka answers broker-config
  validation failures (KAFKA-13609 keeps INVALID_REQUEST there for compatibility). Dynamic
  configs are persisted (`josef.broker.dynamic_configs`) and re-resolve every topic's config.
- Any other resource type: INVALID_REQUEST "Unknown resource type N".
- validate_only: every check, nothing changed.
Deviations: Josef's dynamic broker configs are exactly the broker defaults of topic configs
(log.retention.ms, log.segment.bytes, ...); Kafka also allows listener, SSL, quota and thread
settings, and accepts unknown (custom) broker config names, which Josef refuses.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from josef.broker.broker import Broker
from josef.broker.topics import TopicError, TopicInfo, validate_topic_name
from josef.cluster.config import (
    ConfigError,
    ConfigResourceType,
    resolve_topic_config,
)
from josef.protocol._generated.alter_configs import AlterConfigsRequest, AlterConfigsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


class ResourceError(Exception):
    """A config resource refused with a Kafka error code (a protocol outcome, not a bug)."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


ResourceKey = tuple[int, str]


def duplicate_resources(keys: Sequence[ResourceKey]) -> set[ResourceKey]:
    return {key for key, count in Counter(keys).items() if count > 1}


def check_config_names(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        raise ResourceError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")


def check_no_nulls(null_names: Sequence[str]) -> None:
    if null_names:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST, f"Null value not supported for : {', '.join(null_names)}"
        )


def resource_type_of(resource_type: int) -> ConfigResourceType:
    try:
        return ConfigResourceType(resource_type)
    except ValueError:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST, f"Unknown resource type {resource_type}"
        ) from None


def existing_topic(broker: Broker, name: str) -> TopicInfo:
    """The topic a TOPIC resource names, or the ResourceError Kafka answers."""
    if not name:
        raise ResourceError(ErrorCode.INVALID_REQUEST, "Default topic resources are not allowed.")
    try:
        validate_topic_name(name)
    except TopicError as err:
        raise ResourceError(err.error_code, err.message) from None
    info = broker.topics.get(name)
    if info is None:
        raise ResourceError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist."
        )
    return info


def alter_topic(broker: Broker, info: TopicInfo, configs: Mapping[str, str],
                validate_only: bool) -> None:
    """Make `configs` the topic's whole override set (or only check it)."""
    try:
        if validate_only:
            broker.topics.resolve_config(configs)
        else:
            broker.topics.set_configs(info.name, configs)
    except ConfigError as err:
        raise ResourceError(ErrorCode.INVALID_CONFIG, str(err)) from None


_INT32 = re.compile(r"-?[0-9]{1,10}")


def parse_node_id(name: str) -> int | None:
    """A broker resource name as Java's Integer.parseInt reads it (no spaces, no '+')."""
    if not _INT32.fullmatch(name):
        return None
    value = int(name)
    return value if -(2**31) <= value < 2**31 else None


def is_per_broker(broker: Broker, name: str) -> bool:
    """True for this node's resource, False for the cluster default (""); else refused."""
    if not name:
        return False
    node_id = parse_node_id(name)
    if node_id is None:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST, f"Node id must be an integer, but it is: {name}"
        )
    if node_id != broker.node_id:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST,
            f"Unexpected broker id, expected {broker.node_id}, but received {name}",
        )
    return True


def alter_broker(broker: Broker, per_broker: bool, layer: Mapping[str, str],
                 validate_only: bool) -> None:
    """Make `layer` the whole per-broker (or cluster-default) dynamic layer, or only check it."""
    try:
        if per_broker:
            config = broker.config.with_dynamic(dynamic_broker=layer)
        else:
            config = broker.config.with_dynamic(dynamic_default=layer)
        for info in broker.topics:  # new defaults must leave every topic's config valid
            resolve_topic_config(config, info.configs)
    except ConfigError as err:
        raise ResourceError(ErrorCode.INVALID_REQUEST, str(err)) from None
    if not validate_only:
        broker.apply_dynamic_config(config)


def _alter(broker: Broker, resource: AlterConfigsRequest.AlterConfigsResource,
           validate_only: bool) -> None:
    check_config_names([config.name for config in resource.configs])
    check_no_nulls([config.name for config in resource.configs if config.value is None])
    configs = {config.name: str(config.value) for config in resource.configs}
    resource_type = resource_type_of(resource.resource_type)
    if resource_type is ConfigResourceType.TOPIC:
        alter_topic(broker, existing_topic(broker, resource.resource_name), configs,
                    validate_only)
    else:
        per_broker = is_per_broker(broker, resource.resource_name)
        alter_broker(broker, per_broker, configs, validate_only)


def alter_each(
    resources: Sequence[Any], alter: Callable[[Any], None]
) -> list[tuple[Any, ErrorCode, str | None]]:
    """Run `alter` for every resource, refusing repeated ones as Kafka does; returns each
    resource with its error code and message (AlterConfigs and IncrementalAlterConfigs)."""
    duplicates = duplicate_resources([(r.resource_type, r.resource_name) for r in resources])
    results: list[tuple[Any, ErrorCode, str | None]] = []
    for resource in resources:
        try:
            if (resource.resource_type, resource.resource_name) in duplicates:
                raise ResourceError(
                    ErrorCode.INVALID_REQUEST, "Each resource must appear at most once."
                )
            alter(resource)
        except ResourceError as err:
            results.append((resource, err.error_code, err.message))
        else:
            results.append((resource, ErrorCode.NONE, None))
    return results


async def handle(broker: Broker, request: Request) -> AlterConfigsResponse:
    body: AlterConfigsRequest = request.body
    results = alter_each(body.resources, lambda r: _alter(broker, r, body.validate_only))
    return AlterConfigsResponse(
        throttle_time_ms=0,
        responses=[
            AlterConfigsResponse.AlterConfigsResourceResponse(
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
            for resource, code, message in results
        ],
    )
