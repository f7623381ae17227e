"""Registry of every Kafka API: API key -> request/response classes and version facts.

`API_KEYS` covers every API key in the message specifications (the generated table in
`_generated/api_table.py`); which of them Josef advertises is the broker's decision.
Header versions follow Kafka: a flexible request uses request header v2 (v1 otherwise,
v0 only for ControlledShutdown v0); a flexible response uses response header v1, except
ApiVersions, whose response header is always v0 so that a client that does not yet know
the broker's versions can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from josef.protocol._generated.api_table import API_TABLE
from josef.protocol.exceptions import UnsupportedVersion

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7


@dataclass(frozen=True, slots=True)
class ApiMessages:
    api_key: int
    name: str  # e.g. "Produce"
    request: Any  # the generated request class, e.g. ProduceRequest
    response: Any  # the generated response class, e.g. ProduceResponse
    min_version: int
    max_version: int
    first_flexible_version: int | None  # None: no flexible version
    listeners: tuple[str, ...]  # "broker", "controller", "zkBroker"

    def is_flexible(self, api_version: int) -> bool:
        ff = self.first_flexible_version
        return ff is not None and api_version >= ff


API_KEYS: dict[int, ApiMessages] = {
    key: ApiMessages(
        api_key=key,
        name=name,
        request=request,
        response=response,
        min_version=request.MIN_VERSION,
        max_version=request.MAX_VERSION,
        first_flexible_version=request.FIRST_FLEXIBLE_VERSION,
        listeners=listeners,
    )
    for key, (name, request, response, listeners) in API_TABLE.items()
}


def api(api_key: int, api_version: int) -> ApiMessages:
    """The API for a key, checking that the version is one the specifications define."""
    entry = API_KEYS.get(api_key)
    if entry is None:
        raise UnsupportedVersion(f"unknown API key {api_key}", api_key, api_version)
    if not entry.min_version <= api_version <= entry.max_version:
        raise UnsupportedVersion(
            f"{entry.name} v{api_version} is not in {entry.min_version}-{entry.max_version}",
            api_key,
            api_version,
        )
    return entry


def request_header_version(api_key: int, api_version: int) -> int:
    entry = api(api_key, api_version)
    if api_key == CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if entry.is_flexible(api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    entry = api(api_key, api_version)
    if api_key == API_VERSIONS_KEY:
        return 0
    return 1 if entry.is_flexible(api_version) else 0
