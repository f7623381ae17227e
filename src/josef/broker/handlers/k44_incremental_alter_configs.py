"""IncrementalAlterConfigs (key 44): SET / DELETE / APPEND / SUBTRACT single configs (KIP-339).

Versions served: 0-1.
Kafka semantics followed (each resource answered on its own, in request order):
- Same resource checks as AlterConfigs (k33_alter_configs): duplicate resources, duplicate
  config names, unknown resource types and broker resource names are INVALID_REQUEST; a null
  value is INVALID_REQUEST except for DELETE; an unknown operation code is INVALID_REQUEST.
- TOPIC: the operations apply to the topic's current overrides, left to right; configs not
  named keep their override. APPEND/SUBTRACT only for LIST configs (cleanup.policy), starting
  from the default when there is no override; DELETE of an absent override is fine. Unknown
  names, invalid values, APPEND/SUBTRACT on a non-list: INVALID_CONFIG; unknown topic:
  UNKNOWN_TOPIC_OR_PARTITION. The result is persisted and applied to the open partition logs.
- BROKER: the operations apply to this node's per-broker dynamic layer (resource name = node
  id) or the cluster default (""); validation failures are INVALID_REQUEST (KAFKA-13609), as
  in AlterConfigs. Persisted across restarts.
- validate_only: every check, nothing changed.
Deviations: BROKER_LOGGER (8, KIP-412 log levels) is not supported: INVALID_REQUEST "Unknown
resource type 8"; dynamic broker configs are limited as described in k33_alter_configs.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.dynamic_configs import layer_text
from josef.broker.handlers.k33_alter_configs import (
    ResourceError,
    alter_broker,
    alter_each,
    alter_topic,
    check_config_names,
    check_no_nulls,
    existing_topic,
    is_per_broker,
    resource_type_of,
)
from josef.cluster.config import AlterConfigOp, ConfigError, ConfigResourceType, incremental_alter
from josef.protocol._generated.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1

Resource = IncrementalAlterConfigsRequest.AlterConfigsResource
Operation = tuple[str, AlterConfigOp, str | None]


def _operations(resource: Resource) -> list[Operation]:
    operations: list[Operation] = []
    for config in resource.configs:
        try:
            op = AlterConfigOp(config.config_operation)
        except ValueError:
            raise ResourceError(
                ErrorCode.INVALID_REQUEST, f"Unknown operation type {config.config_operation}"
            ) from None
        operations.append((config.name, op, config.value))
    return operations


def _alter(broker: Broker, resource: Resource, validate_only: bool) -> None:
    check_config_names([config.name for config in resource.configs])
    check_no_nulls([
        config.name for config in resource.configs
        if config.value is None and config.config_operation != AlterConfigOp.DELETE
    ])
    resource_type = resource_type_of(resource.resource_type)
    operations = _operations(resource)
    if resource_type is ConfigResourceType.TOPIC:
        info = existing_topic(broker, resource.resource_name)
        try:
            configs = incremental_alter(resource_type, info.configs, operations)
        except ConfigError as err:
            raise ResourceError(ErrorCode.INVALID_CONFIG, str(err)) from None
        alter_topic(broker, info, configs, validate_only)
        return
    per_broker = is_per_broker(broker, resource.resource_name)
    try:
        layer = incremental_alter(resource_type, layer_text(broker.config, per_broker), operations)
    except ConfigError as err:
        raise ResourceError(ErrorCode.INVALID_REQUEST, str(err)) from None
    alter_broker(broker, per_broker, layer, validate_only)


async def handle(broker: Broker, request: Request) -> IncrementalAlterConfigsResponse:
    body: IncrementalAlterConfigsRequest = request.body
    results = alter_each(body.resources, lambda r: _alter(broker, r, body.validate_only))
    return IncrementalAlterConfigsResponse(
        throttle_time_ms=0,
        responses=[
            IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
                error_code=code,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
            for resource, code, message in results
        ],
    )
