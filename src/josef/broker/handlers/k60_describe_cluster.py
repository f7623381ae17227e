"""DescribeCluster (key 60): the cluster id, the controller and the brokers (KIP-700).

Versions served: 0-1.
Kafka semantics followed:
- Brokers: this node alone at its advertised listener, no rack; controller_id is this node (as
  in Metadata: KRaft brokers report an alive broker there); cluster_id from meta.properties.
- v1 (KIP-919) endpoint_type: a broker serves BROKER (1). CONTROLLER (2) sent to a broker is
  MISMATCHED_ENDPOINT_TYPE, any other value UNSUPPORTED_ENDPOINT_TYPE (v0 cannot name a type).
  The response echoes endpoint_type 1.
- Authorized operations (KIP-430): without ACLs every cluster operation is allowed, so when
  asked the bit field lists them all; else Kafka's "not requested" sentinel.
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.broker.handlers.k03_metadata import CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED
from josef.protocol._generated.describe_cluster import (
    DescribeClusterRequest,
    DescribeClusterResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 60
MIN_VERSION = 0
MAX_VERSION = 1

# Kafka's EndpointType ids (KIP-919).
BROKER_ENDPOINT = 1
CONTROLLER_ENDPOINT = 2


async def handle(broker: Broker, request: Request) -> DescribeClusterResponse:
    body: DescribeClusterRequest = request.body
    if body.endpoint_type != BROKER_ENDPOINT:
        if body.endpoint_type == CONTROLLER_ENDPOINT:
            error = ErrorCode.MISMATCHED_ENDPOINT_TYPE
            message = ("The request was sent to an endpoint of type BROKER, but we wanted an "
                       "endpoint of type CONTROLLER")
        else:
            error = ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
            message = f"Unsupported endpoint type {body.endpoint_type}"
        return DescribeClusterResponse(
            throttle_time_ms=0, error_code=error, error_message=message,
            endpoint_type=BROKER_ENDPOINT, cluster_id=broker.cluster_id, brokers=[],
        )
    return DescribeClusterResponse(
        throttle_time_ms=0,
        error_code=ErrorCode.NONE,
        error_message=None,
        endpoint_type=BROKER_ENDPOINT,
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(
                broker_id=broker.node_id,
                host=broker.advertised_host,
                port=broker.advertised_port,
                rack=None,
            )
        ],
        cluster_authorized_operations=(
            CLUSTER_OPERATIONS if body.include_cluster_authorized_operations
            else OPERATIONS_NOT_REQUESTED
        ),
    )
