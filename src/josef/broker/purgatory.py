"""Parked requests waiting for something to happen to a partition (Kafka's purgatory).

Contract: a long-poll Fetch calls `await purgatory.wait(keys, timeout_ms)` and is woken as soon
as the produce path calls `notify(key)` for any of its keys (data arrived / the high watermark
moved), or when timeout_ms passes. Wake-ups are pushed by the writer, never found by a polling
timer, so a waiting fetch answers within one loop turn of the append. After a wake-up the
caller re-checks its own completion condition (min_bytes) and may wait again for the time left.

Single-threaded: used only from the broker's event loop. The number of parked operations is
bounded by the server's limits (connections x requests in flight per connection), so the
purgatory keeps no limit of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable


class Purgatory:
    def __init__(self) -> None:
        self._watchers: dict[Hashable, set[asyncio.Future[bool]]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def parked(self) -> int:
        """Distinct operations currently parked (for metrics and tests)."""
        return len({fut for futs in self._watchers.values() for fut in futs})

    async def wait(self, keys: Iterable[Hashable], timeout_ms: int) -> bool:
        """Park until notify() for one of keys (True) or timeout_ms elapses (False).
        Returns at once (True) once the purgatory is closed for shutdown."""
        if self._closed:
            return True
        keys = list(keys)
        if timeout_ms <= 0 or not keys:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        for key in keys:
            self._watchers.setdefault(key, set()).add(fut)
        timer = loop.call_later(timeout_ms / 1000.0, _resolve, fut, False)
        try:
            return await fut
        finally:
            timer.cancel()
            for key in keys:
                futs = self._watchers.get(key)
                if futs is not None:
                    futs.discard(fut)
                    if not futs:
                        del self._watchers[key]

    def notify(self, key: Hashable) -> None:
        """Wake every operation parked on key."""
        futs = self._watchers.pop(key, None)
        if futs:
            for fut in futs:
                _resolve(fut, True)

    def close(self) -> None:
        """Shutdown: wake everything now and answer future waits at once."""
        self._closed = True
        for key in list(self._watchers):
            self.notify(key)


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)
