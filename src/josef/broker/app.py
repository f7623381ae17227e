"""Running one broker: open the log dirs, bind the listener, serve until told to stop.

Contract: `run_broker(config, stop)` opens the broker (meta.properties, topics, partition logs),
binds the first listener (port 0 picks a free port; the advertised port follows it), logs the
start-up banner, calls `on_ready(server)` and serves until `stop` is set; then it shuts down
cleanly (stop accepting, finish in-flight requests, flush + checkpoint the logs) and returns.
`serve(...)` is the `josef serve` process: it installs SIGTERM/SIGINT handlers that set `stop`,
uses uvloop when it is importable (about 2x the ingest rate, see PERFORMANCE-NOTES.md) and the
standard loop otherwise, and returns the process exit code.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path

from josef import __version__
from josef.broker.broker import Broker
from josef.broker.handlers import default_registry
from josef.broker.server import BrokerServer, ServerLimits
from josef.cluster.config import BrokerConfig

log = logging.getLogger("josef.broker")


def _connection_ceiling() -> int:
    """Connections this process can hold: raise the soft file-descriptor limit to the hard
    one, and keep a quarter (at least 256) for segment and index files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(soft - max(256, soft // 4), 1)


def _limits(config: BrokerConfig) -> ServerLimits:
    ceiling = _connection_ceiling()
    return ServerLimits(
        max_buffered_bytes=config.socket_request_max_bytes,
        max_connections=min(config.max_connections, ceiling),
        max_connections_per_ip=min(config.max_connections_per_ip, ceiling),
        connections_max_idle_ms=config.connections_max_idle_ms,
    )


def _banner(broker: Broker, server: BrokerServer, config_file: Path | None, took_s: float) -> str:
    config = broker.config
    listener = config.listeners[0]
    partitions = sum(t.num_partitions for t in broker.topics)
    log_dirs = ", ".join(str(Path(d).resolve()) for d in config.log_dirs)
    return "\n".join([
        f"josef {__version__} broker started in {took_s:.2f} s "
        f"(node.id {broker.node_id}, cluster.id {broker.cluster_id})",
        f"  listener:             {listener.name}://{listener.host or '0.0.0.0'}:{server.port}",
        f"  advertised listener:  PLAINTEXT://{broker.advertised_host}:{broker.advertised_port}",
        f"  log dirs:             {log_dirs} ({len(broker.topics)} topics, "
        f"{partitions} partitions)",
        f"  config file:          {config_file if config_file is not None else '(none)'}",
        f"  event loop:           {type(asyncio.get_running_loop()).__module__}",
    ])


async def run_broker(
    config: BrokerConfig,
    stop: asyncio.Event,
    on_ready: Callable[[BrokerServer], None] | None = None,
    config_file: Path | None = None,
) -> None:
    started = time.monotonic()
    for name in config.unknown:
        log.warning("ignoring unknown config %s", name)
    broker = Broker.open(config, default_registry())
    listener = config.listeners[0]
    server = BrokerServer(
        broker,
        listener.host,
        listener.port,
        limits=_limits(config),
        max_frame_bytes=config.socket_request_max_bytes,
    )
    try:
        await server.start()
    except BaseException:
        await broker.close()
        raise
    broker.set_advertised_port(server.port)
    broker.start_maintenance()
    log.info("%s", _banner(broker, server, config_file, time.monotonic() - started))
    if on_ready is not None:
        on_ready(server)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.stop()
        log.info("shut down cleanly")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(config: BrokerConfig, config_file: Path | None = None) -> int:
    """The `josef serve` process: returns 0 after a clean SIGTERM/SIGINT shutdown."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.run_until_complete(run_broker(config, stop, config_file=config_file))
    finally:
        loop.close()
    return 0
