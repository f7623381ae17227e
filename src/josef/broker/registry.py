"""The table of request handlers the broker serves, and nothing else.

Contract: each handler module (one per API key, in `josef.broker.handlers`) declares
`API_KEY`, `MIN_VERSION`, `MAX_VERSION` and `async def handle(broker, request)`; the registry
holds exactly those entries. ApiVersions advertises what is registered here, and the
connection layer refuses any (api_key, version) outside it, so an API that is not
implemented is never advertised nor dispatched.

A handler returns the response body, `NO_RESPONSE` (Produce with acks=0: Kafka sends
nothing back) or `CLOSE_CONNECTION` (Produce with acks=0 that failed: Kafka closes the
connection so that the client refreshes its metadata).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from josef.broker.broker import Broker
    from josef.protocol.connection import Request


class Outcome(enum.Enum):
    """What a handler returns instead of a response body."""

    NO_RESPONSE = "no_response"
    CLOSE_CONNECTION = "close_connection"


NO_RESPONSE = Outcome.NO_RESPONSE
CLOSE_CONNECTION = Outcome.CLOSE_CONNECTION

Handler = Callable[["Broker", "Request"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    api_key: int
    min_version: int
    max_version: int
    handler: Handler
    name: str


class HandlerRegistry:
    """api_key -> HandlerSpec; registering the same key twice is a bug."""

    def __init__(self) -> None:
        self._specs: dict[int, HandlerSpec] = {}

    def register(
        self, api_key: int, min_version: int, max_version: int, handler: Handler, name: str = ""
    ) -> None:
        if api_key in self._specs:
            raise ValueError(f"api key {api_key} registered twice")
        if not 0 <= min_version <= max_version:
            raise ValueError(f"api key {api_key}: bad version range {min_version}-{max_version}")
        self._specs[api_key] = HandlerSpec(api_key, min_version, max_version, handler, name)

    def register_module(self, module: ModuleType) -> None:
        """Register a handler module by its API_KEY / MIN_VERSION / MAX_VERSION / handle."""
        self.register(
            module.API_KEY,
            module.MIN_VERSION,
            module.MAX_VERSION,
            module.handle,
            module.__name__.rsplit(".", 1)[-1],
        )

    def get(self, api_key: int) -> HandlerSpec | None:
        return self._specs.get(api_key)

    def supports(self, api_key: int, api_version: int) -> bool:
        spec = self._specs.get(api_key)
        return spec is not None and spec.min_version <= api_version <= spec.max_version

    def __iter__(self) -> Iterator[HandlerSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.api_key))

    def __len__(self) -> int:
        return len(self._specs)
