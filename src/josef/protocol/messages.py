"""Registry of every Kafka API: API key -> request/response classes and version facts.

`API_KEYS` covers every API key in the message specifications (the generated table in
`_generated/api_table.py`); which of them Josef advertises is the broker's decision.
Header versions follow Kafka: a flexible request uses request header v2 (v1 otherwise,
v0 only for ControlledShutdown v0); a flexible response uses response header v1, except
ApiVersions, whose response header is always v0 so that a client that does not yet know
the broker's versions can read it.
"""

from __future__ import annotations

import importlib
from typing import Any

from josef.protocol._generated.api_table import API_TABLE
from josef.protocol.exceptions import UnsupportedVersion

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7


class ApiMessages:
    """One API key's facts, with its generated classes imported on first use: a broker that
    serves 30 APIs does not pay at start-up for importing the other 60."""

    __slots__ = (
        "_classes", "_module", "_request_name", "_response_name", "api_key",
        "first_flexible_version", "listeners", "max_version", "min_version", "name",
    )

    def __init__(
        self,
        api_key: int,
        name: str,  # e.g. "Produce"
        module: str,  # generated module, e.g. "produce"
        request_name: str,
        response_name: str,
        min_version: int,
        max_version: int,
        first_flexible_version: int | None,  # None: no flexible version
        listeners: tuple[str, ...],  # "broker", "controller", "zkBroker"
    ) -> None:
        self.api_key = api_key
        self.name = name
        self._module = module
        self._request_name = request_name
        self._response_name = response_name
        self.min_version = min_version
        self.max_version = max_version
        self.first_flexible_version = first_flexible_version
        self.listeners = listeners
        self._classes: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._classes is None:
            module = importlib.import_module(f"josef.protocol._generated.{self._module}")
            self._classes = (
                getattr(module, self._request_name),
                getattr(module, self._response_name),
            )
        return self._classes

    @property
    def request(self) -> Any:
        """The generated request class, e.g. ProduceRequest."""
        return self._load()[0]

    @property
    def response(self) -> Any:
        """The generated response class, e.g. ProduceResponse."""
        return self._load()[1]

    def is_flexible(self, api_version: int) -> bool:
        ff = self.first_flexible_version
        return ff is not None and api_version >= ff


API_KEYS: dict[int, ApiMessages] = {
    key: ApiMessages(key, *row) for key, row in API_TABLE.items()
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
