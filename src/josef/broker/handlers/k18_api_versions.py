"""ApiVersions (key 18): the API keys and version ranges this broker serves.

Versions served: 0-4.
Kafka semantics followed:
- The list is exactly the broker's handler registry: an API is advertised only if a handler
  for it is registered, with the range that handler implements. One exception, Kafka 4.0's
  (KAFKA-18659): Produce is advertised from v0 although only v3+ is served (older requests
  are still refused), because older librdkafka (e.g. 2.0.2, bundled by kcat 1.7.1; fixed by
  librdkafka issue 4956) enables gzip/snappy/lz4 only when Produce v0-v2 is listed and
  otherwise silently sends batches uncompressed.
- KIP-511: a request of a version we do not know is answered with a v0 response carrying
  UNSUPPORTED_VERSION and ApiVersions' own supported range, so the client retries with a
  version both sides know (`josef.protocol.connection.api_versions_fallback`).
- v3+ requests carry client_software_name/version (KIP-511); Kafka validates them
  (`[a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?`) and answers INVALID_REQUEST if they do not match.
Deviations: no supported/finalized features are listed (none exist on a single-node Josef);
finalized_features_epoch stays -1.
"""

from __future__ import annotations

import re

from josef.broker.broker import Broker
from josef.protocol._generated.api_versions import ApiVersionsRequest, ApiVersionsResponse
from josef.protocol.connection import Request, api_versions_fallback
from josef.protocol.errors import ErrorCode

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4

# KAFKA-18659: the minimum advertised for these API keys, whatever their handler serves.
ADVERTISED_MIN_VERSION = {0: 0}

_SOFTWARE_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


async def handle(broker: Broker, request: Request) -> ApiVersionsResponse:
    if request.unsupported_version:
        return api_versions_fallback(MAX_VERSION)
    body: ApiVersionsRequest = request.body
    if request.api_version >= 3 and not (
        _SOFTWARE_NAME.fullmatch(body.client_software_name or "")
        and _SOFTWARE_NAME.fullmatch(body.client_software_version or "")
    ):
        # Kafka answers with the error and an empty api list.
        return ApiVersionsResponse(error_code=ErrorCode.INVALID_REQUEST, throttle_time_ms=0)
    return ApiVersionsResponse(
        error_code=ErrorCode.NONE,
        api_keys=[
            ApiVersionsResponse.ApiVersion(
                api_key=spec.api_key,
                min_version=ADVERTISED_MIN_VERSION.get(spec.api_key, spec.min_version),
                max_version=spec.max_version,
            )
            for spec in broker.registry
        ],
        throttle_time_ms=0,
    )
