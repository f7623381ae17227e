"""DescribeConfigs (key 32): the effective configs of topics and brokers, with their sources.

Versions served: 0-4.
Kafka semantics followed (each resource answered on its own, in request order):
- TOPIC (2): every topic config (or those named in configuration_keys; null means all, unknown
  names are left out) with its value, source (DYNAMIC_TOPIC_CONFIG for an override, else the
  broker layer that supplied the default, KIP-226), read_only false. Illegal name:
  INVALID_TOPIC_EXCEPTION; unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
- BROKER (4): name = this node's id: every broker config with its effective value and source;
  read_only unless it can be set dynamically. Name "": the cluster-wide dynamic defaults only.
  A name that is not an integer or another node's id: INVALID_REQUEST.
- Other resource types: INVALID_REQUEST "Unsupported resource type".
- Sensitive values (passwords) are null. v0 carries is_default (source is DEFAULT_CONFIG)
  instead of config_source; synonyms (v1+) only with include_synonyms, in Kafka's order;
  config_type (KIP-569) from v3; documentation (v3+) only with include_documentation, else null.
- On an error the resource carries no configs.
Deviations: BROKER_LOGGER (8) is not supported (INVALID_REQUEST). Where josef.cluster.config
says so, topic synonyms Kafka would hide are listed (see that module's contract).
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.handlers.k33_alter_configs import (
    ResourceError,
    existing_topic,
    parse_node_id,
)
from josef.cluster.config import (
    ConfigEntry,
    ConfigResourceType,
    describe_broker_config,
    describe_topic_config,
)
from josef.protocol._generated.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 32
MIN_VERSION = 0
MAX_VERSION = 4

Result = DescribeConfigsResponse.DescribeConfigsResult
Entry = DescribeConfigsResponse.DescribeConfigsResourceResult
Synonym = DescribeConfigsResponse.DescribeConfigsSynonym


def _entries(broker: Broker, resource: DescribeConfigsRequest.DescribeConfigsResource
             ) -> list[ConfigEntry]:
    names = resource.configuration_keys
    try:
        resource_type = ConfigResourceType(resource.resource_type)
    except ValueError:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST, f"Unsupported resource type: {resource.resource_type}"
        ) from None
    if resource_type is ConfigResourceType.TOPIC:
        if not resource.resource_name:  # Kafka's Topic.validate: not a default resource here
            raise ResourceError(ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic name is empty")
        info = existing_topic(broker, resource.resource_name)
        return describe_topic_config(broker.config, info.configs, names)
    name = resource.resource_name
    if not name:
        return describe_broker_config(broker.config, names, per_broker=False)
    node_id = parse_node_id(name)
    if node_id is None:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {name}"
        )
    if node_id != broker.node_id:
        raise ResourceError(
            ErrorCode.INVALID_REQUEST,
            f"Unexpected broker id, expected {broker.node_id} or empty string, but received "
            f"{name}",
        )
    return describe_broker_config(broker.config, names, per_broker=True)


def _entry(entry: ConfigEntry, include_synonyms: bool, include_documentation: bool) -> Entry:
    return Entry(
        name=entry.name,
        value=entry.value,
        read_only=entry.read_only,
        is_default=entry.is_default,
        config_source=entry.source,
        is_sensitive=entry.is_sensitive,
        synonyms=[
            Synonym(name=s.name, value=s.value, source=s.source) for s in entry.synonyms
        ] if include_synonyms else [],
        config_type=entry.config_type,
        documentation=entry.documentation if include_documentation else None,
    )


async def handle(broker: Broker, request: Request) -> DescribeConfigsResponse:
    body: DescribeConfigsRequest = request.body
    version = request.api_version
    include_synonyms = version >= 1 and body.include_synonyms
    include_documentation = version >= 3 and body.include_documentation
    results: list[Result] = []
    for resource in body.resources:
        result = Result(
            error_code=ErrorCode.NONE,
            error_message=None,
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
            configs=[],
        )
        try:
            result.configs = [
                _entry(entry, include_synonyms, include_documentation)
                for entry in _entries(broker, resource)
            ]
        except ResourceError as err:
            result.error_code, result.error_message = err.error_code, err.message
        results.append(result)
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)
