"""`EmbeddedBroker`: a real Josef broker in a background thread, for tests.

Contract: entering the context starts the same code `josef serve` runs (`run_broker`) on its
own event loop in a daemon thread, bound to 127.0.0.1 on a free port (port 0) with a temporary
data directory (removed on exit unless `log_dir` was given), and returns once the port
accepts connections; `bootstrap_servers` is "127.0.0.1:<port>". Leaving it shuts the broker
down cleanly (in-flight requests finish, logs are flushed and checkpointed) and joins the
thread. `overrides` are broker configs as `--override` would give them.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from josef.broker.app import new_event_loop, run_broker
from josef.broker.server import BrokerServer
from josef.cluster.config import BrokerConfig
from josef.cluster.properties import load_broker_config

# Generous: the first start imports and opens everything; a healthy start takes well under 1 s.
START_TIMEOUT_S = 30.0


class EmbeddedBroker:
    def __init__(
        self, overrides: Mapping[str, str] | None = None, log_dir: str | Path | None = None
    ) -> None:
        self._overrides = dict(overrides or {})
        self._own_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="josef-embedded-"))
        settings = {
            "listeners": "PLAINTEXT://127.0.0.1:0",
            "log.dirs": str(self.log_dir),
            **self._overrides,
        }
        config = load_broker_config(None, [f"{k}={v}" for k, v in settings.items()], environ={})
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="josef-embedded-broker", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TimeoutError("embedded broker did not start")
        if self._error is not None:
            raise RuntimeError("embedded broker failed to start") from self._error
        return self

    def _run(self, config: BrokerConfig) -> None:
        loop = new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        def ready(server: BrokerServer) -> None:
            self.port = server.port
            self._ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await run_broker(config, self._stop, on_ready=ready)

        try:
            loop.run_until_complete(main())
        except BaseException as err:
            self._error = err
        finally:
            self._ready.set()
            loop.close()

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed in between: the broker already stopped
                pass
        thread.join()
        self._thread = None
        if self._own_dir and self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        if self._error is not None:
            raise RuntimeError("embedded broker failed") from self._error

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
