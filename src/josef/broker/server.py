"""The network server: a thin asyncio pump between sockets and the sans-IO protocol.

Contract:
- One `KafkaProtocol` (asyncio.BufferedProtocol) per TCP connection lets the transport read
  straight into the receive buffer of a `josef.protocol.connection.ServerConnection` (no copy
  of produced bytes on the way in). Each decoded request's handler (see
  `josef.broker.registry`) is started at once, with the peer's host in `PEER_HOST`: most finish
  without suspending and cost no Task; one that suspends continues as its own Task, so a parked
  Fetch does not block the Produce behind it. Responses are written STRICTLY in request order
  (Kafka semantics: clients match responses to requests by order as well as by correlation
  id). The responses ready at once are joined into one write when small; larger ones go to
  `transport.writelines` as produced by the codec, so record bytes are never copied.
- Limits (backpressure, never an error): at most `max_in_flight` requests per connection and at
  most `max_buffered_bytes` of unanswered request frames plus unparsed input; beyond either,
  reading pauses and TCP pushes back on the client. Reading also pauses while the transport's
  write buffer is above its high-water mark (a consumer that does not read its responses).
  At most `max_connections` connections; one more is closed at once.
- Failures: a peer that breaks the protocol (bad frame, unknown API key or version, garbage)
  gets ONE log line (peer, reason) and loses only its own connection. An exception escaping a
  handler is a Josef bug: logged with its traceback, and that connection is closed.
- Shutdown (`BrokerServer.stop`): stop accepting, wake parked requests so they answer now, let
  in-flight requests finish and their responses drain (bounded by `shutdown_timeout_s`), close
  connections, then flush and checkpoint the logs (`Broker.close`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import deque
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any, cast

from josef.broker.broker import Broker
from josef.broker.groups import PEER_HOST
from josef.broker.registry import CLOSE_CONNECTION, NO_RESPONSE
from josef.protocol.connection import Request, ServerConnection
from josef.protocol.exceptions import ProtocolError

log = logging.getLogger(__name__)


# Responses up to this size are joined into one buffer before writing: one small copy is far
# cheaper than writelines' per-chunk work (measured ~2.5x the round-trip rate on uvloop).
# Larger responses (fetches) go out chunk by chunk, their record buffers never copied.
COALESCE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServerLimits:
    # Kafka processes one request per connection at a time; pipelining up to 32 keeps every
    # client unstalled (Java and idempotent librdkafka producers keep at most 5 in flight).
    max_in_flight: int = 32
    # One maximal request (socket.request.max.bytes, Kafka's default 100 MiB) may be buffered
    # per connection; past that, reading pauses until responses go out.
    max_buffered_bytes: int = 104_857_600
    # Kafka's max.connections / max.connections.per.ip default to Int.MaxValue; the broker
    # caps them by its file-descriptor limit (`josef.broker.app`).
    max_connections: int = 10_000
    max_connections_per_ip: int = 10_000
    # connections.max.idle.ms: Kafka's 10 minutes without a request, then the broker closes.
    connections_max_idle_ms: int = 600_000
    # Transport write buffer above which we stop reading new requests from that client
    # (asyncio's own default high-water mark is 64 KiB; fetch responses are larger).
    write_buffer_high_bytes: int = 4 * 1024 * 1024
    shutdown_timeout_s: float = 10.0


# get_buffer's answer once a connection is closed or failed: the transport needs a non-empty
# buffer to read into and what lands here is dropped.
_DISCARD = memoryview(bytearray(4096))


class _Slot:
    """One request awaiting its turn to be answered."""

    __slots__ = ("done", "request", "result", "task")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.done = False
        self.result: Any = None
        self.task: asyncio.Task[Any] | None = None


class _Forward:
    """Awaiting this continues `coro`, which already ran up to yielding `yielded`.

    `yield from` cannot take over a coroutine mid-way, so `__await__` forwards by hand what the
    Task sends or throws (a cancellation reaches the handler as it would in its own Task).
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        yielded = self.yielded
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                step, arg = coro.throw, exc
            else:
                step, arg = coro.send, value
            try:
                yielded = step(arg)
            except StopIteration as stop:
                return stop.value


async def _continue(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _Forward(coro, yielded)


class KafkaProtocol(asyncio.BufferedProtocol):
    def __init__(self, server: BrokerServer) -> None:
        self._server = server
        self._broker = server.broker
        self._limits = server.limits
        self._conn = ServerConnection(
            max_frame_bytes=server.max_frame_bytes,
            supported=server.broker.registry.supports,
        )
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        # Handlers run in a copy of this context (PEER_HOST: JoinGroup's client_host).
        self._context = contextvars.copy_context()
        self._slots: deque[_Slot] = deque()
        self._in_flight_bytes = 0
        self._reading = True
        self._write_paused = False
        self._closed = False
        self._pumping = False
        self._pump_again = False
        self.peer = "?"
        self.peer_host = ""
        self.last_active = 0.0  # loop.time() of the last bytes received or response written

    # ---- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.peer_host = str(peer[0]) if isinstance(peer, tuple) else self.peer
        self._context.run(PEER_HOST.set, self.peer_host)
        self.last_active = self._loop.time()
        refusal = self._server.admit(self)
        if refusal is not None:
            log.warning("closing connection from %s: %s", self.peer, refusal)
            self._closed = True
            transport.abort()
            return
        transport.set_write_buffer_limits(high=self._limits.write_buffer_high_bytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.release(self)
        for slot in self._slots:
            if slot.task is not None:
                slot.task.cancel()
        self._slots.clear()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._closed:
            return _DISCARD
        try:
            return self._conn.get_buffer(sizehint)
        except ProtocolError as err:
            self._peer_error(err)
            return _DISCARD

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self.last_active = self._loop.time()
        try:
            self._conn.buffer_updated(nbytes)
        except ProtocolError as err:
            self._peer_error(err)
            return
        self._pump()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._pump()

    # ---- request flow --------------------------------------------------------------------
    def _pump(self) -> None:
        """Dispatch buffered requests while the limits allow, write the answers that are ready
        (in order), repeat while that frees room; then pause/resume reading."""
        if self._pumping:
            # Re-entered from a transport callback during a write: the running pump repeats.
            self._pump_again = True
            return
        self._pumping = True
        try:
            limits = self._limits
            slots = self._slots
            again = True
            while again and not self._closed:
                self._pump_again = False
                while (
                    not self._closed
                    and not self._write_paused
                    and len(slots) < limits.max_in_flight
                    and (not slots or self._in_flight_bytes < limits.max_buffered_bytes)
                ):
                    try:
                        request = self._conn.next_request()
                    except ProtocolError as err:
                        self._peer_error(err)
                        return
                    if request is None:
                        break
                    self._dispatch(request)
                again = self._write_ready() or self._pump_again
        finally:
            self._pumping = False
        self._update_reading()

    def _dispatch(self, request: Request) -> None:
        spec = self._broker.registry.get(request.api_key)
        # ServerConnection refuses what the registry does not support (ApiVersions always is).
        assert spec is not None, request.api_key
        slot = _Slot(request)
        self._slots.append(slot)
        self._in_flight_bytes += request.frame_size
        # Run the handler's first step here: most handlers never suspend, and then need no Task
        # (a Task per request was ~2% of broker CPU under small requests).
        context = self._context.copy()
        coro = cast(Coroutine[Any, Any, Any], spec.handler(self._broker, request))
        try:
            yielded = context.run(coro.send, None)
        except StopIteration as stop:
            slot.result = stop.value
            slot.done = True
            return
        except Exception as err:
            self._failed(slot, err)
            return
        # It suspended: the rest runs as a Task in the same context, as if it had been one.
        task = self._loop.create_task(_continue(coro, yielded), context=context)
        slot.task = task
        task.add_done_callback(functools.partial(self._on_done, slot))

    def _on_done(self, slot: _Slot, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        err = task.exception()  # retrieved even when closed, so asyncio does not warn
        if self._closed:
            return
        if err is not None:
            self._failed(slot, err)
            return
        slot.result = task.result()
        slot.done = True
        self._pump()

    def _failed(self, slot: _Slot, err: BaseException) -> None:
        """A handler raised: the peer's fault for a ProtocolError, otherwise a Josef bug."""
        if isinstance(err, ProtocolError):
            self._peer_error(err)
            return
        log.error(
            "closing connection from %s: bug handling api key %d v%d",
            self.peer,
            slot.request.api_key,
            slot.request.api_version,
            exc_info=err,
        )
        self._close()

    def _write_ready(self) -> bool:
        """Write every finished response at the head of the queue, in request order, as one
        write when small; True if any slot was freed."""
        transport = self._transport
        assert transport is not None
        slots = self._slots
        out: list[bytes | memoryview] = []
        freed = False
        while slots and slots[0].done:
            slot = slots.popleft()
            freed = True
            self._in_flight_bytes -= slot.request.frame_size
            result = slot.result
            if result is CLOSE_CONNECTION:
                self._write(transport, out)
                self._close()
                return False
            if result is not NO_RESPONSE:
                try:
                    out += self._conn.encode_response(slot.request, result)
                except Exception:
                    log.exception(
                        "closing connection from %s: bug encoding api key %d v%d response",
                        self.peer,
                        slot.request.api_key,
                        slot.request.api_version,
                    )
                    self._write(transport, out)
                    self._close()
                    return False
        if out:
            self._write(transport, out)
            self.last_active = self._loop.time()
        return freed

    @staticmethod
    def _write(transport: asyncio.Transport, chunks: list[bytes | memoryview]) -> None:
        if not chunks:
            return
        if sum(map(len, chunks)) <= COALESCE_BYTES:
            transport.write(b"".join(chunks))
        else:
            transport.writelines(chunks)

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        limits = self._limits
        # With nothing in flight the buffer holds at most one partial frame (bounded by
        # max_frame_bytes): keep reading so that even a maximal request can complete.
        want = (
            not self._write_paused
            and len(self._slots) < limits.max_in_flight
            and (
                not self._slots
                or self._in_flight_bytes + self._conn.buffered_bytes < limits.max_buffered_bytes
            )
        )
        if want and not self._reading:
            self._reading = True
            transport.resume_reading()
        elif not want and self._reading:
            self._reading = False
            transport.pause_reading()

    # ---- closing -------------------------------------------------------------------------
    def _peer_error(self, err: ProtocolError) -> None:
        log.warning("closing connection from %s: %s", self.peer, err)
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            if slot.task is not None:
                slot.task.cancel()
        self._slots.clear()
        if self._transport is not None:
            self._transport.close()

    @property
    def idle(self) -> bool:
        return not self._slots

    def close(self) -> None:
        self._close()


class BrokerServer:
    """The listener(s) of one broker, bound to `broker`."""

    def __init__(
        self,
        broker: Broker,
        host: str,
        port: int,
        limits: ServerLimits | None = None,
        max_frame_bytes: int = 104_857_600,  # socket.request.max.bytes: Kafka's 100 MiB
    ) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self.limits = limits or ServerLimits()
        self.max_frame_bytes = max_frame_bytes
        self.connections: set[KafkaProtocol] = set()
        self._per_host: dict[str, int] = {}
        self._server: asyncio.Server | None = None
        self._idle_sweeper: asyncio.Task[None] | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaProtocol(self),
            self.host or None,
            self.port,
            reuse_address=True,
            backlog=1024,
        )
        self.port = self.bound_port
        self._idle_sweeper = loop.create_task(self._close_idle())

    def admit(self, conn: KafkaProtocol) -> str | None:
        """Register a new connection, or say why it is refused."""
        limits = self.limits
        if len(self.connections) >= limits.max_connections:
            return f"max.connections ({limits.max_connections}) reached"
        count = self._per_host.get(conn.peer_host, 0)
        if count >= limits.max_connections_per_ip:
            return f"max.connections.per.ip ({limits.max_connections_per_ip}) reached"
        self._per_host[conn.peer_host] = count + 1
        self.connections.add(conn)
        return None

    def release(self, conn: KafkaProtocol) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            left = self._per_host[conn.peer_host] - 1
            if left:
                self._per_host[conn.peer_host] = left
            else:
                del self._per_host[conn.peer_host]

    async def _close_idle(self) -> None:
        """connections.max.idle.ms: close connections with nothing in flight for that long."""
        idle_s = self.limits.connections_max_idle_ms / 1000.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(idle_s / 4, 0.05))
            now = loop.time()
            for conn in list(self.connections):
                if conn.idle and now - conn.last_active > idle_s:
                    idle_ms = (now - conn.last_active) * 1000
                    log.info("closing connection from %s: idle for %.0f ms "
                             "(connections.max.idle.ms)", conn.peer, idle_ms)
                    conn.close()

    async def stop(self) -> None:
        """Stop accepting, answer what is in flight, close connections, close the broker."""
        if self._server is not None:
            self._server.close()
        if self._idle_sweeper is not None:
            self._idle_sweeper.cancel()
        self.broker.purgatory.close()
        self.broker.groups.close()  # parked JoinGroup/SyncGroup answer NOT_COORDINATOR now
        deadline = asyncio.get_running_loop().time() + self.limits.shutdown_timeout_s
        while any(not c.idle for c in self.connections):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("shutdown: giving up on requests still in flight")
                break
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
        await self.broker.close()
