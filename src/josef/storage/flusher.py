"""Group commit and Kafka's flush policy (flush.messages, flush.ms), off the event loop.

Contract:
- `await group_commit.wait_durable(log, offset)` returns once `log.recovery_point >= offset`
  (everything below `offset` is fsynced). Every caller that asks within one loop turn shares
  ONE run: the loop writes pending index entries and collects the fds (`begin_flush`), a
  worker thread fsyncs them all, the loop then advances the recovery points
  (`finish_flush`). Callers that arrive while a run is in progress share the next run.
  A failed fsync raises `KafkaStorageError` in every caller of that log.
- `await group_commit.after_append(log, now_ms, write)` applies flush.messages (fsync once that
  many records are unflushed; flush.messages=1 is fsync-before-ack) and flush.ms; otherwise,
  with write-behind, it waits for `write` (`pending_write(log)` taken right after the append)
  to be in the file, which is what an acknowledgement promises. When the append
  rolled a segment it also starts, without waiting for it, a flush up to the new active
  segment (Kafka's roll schedules `flushUptoOffsetExclusive`), so the recovery point - and
  with it the work of recovery after a crash - follows the rolls even when no fsync is asked.
- `await group_commit.flush_expired(logs, now_ms)` is the periodic flush.ms check (Kafka's
  log flusher, log.flush.scheduler.interval.ms).
Logs without a split flush (the memory engine) are durable as soon as appended.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any, Protocol, TypeGuard, runtime_checkable

from josef.storage.api import LONG_MAX, LogConfig, PartitionLog
from josef.storage.errors import KafkaStorageError, StorageError

_log = logging.getLogger(__name__)


class FlushJobLike(Protocol):
    error: OSError | None

    def run(self) -> None: ...


@runtime_checkable
class SplitFlushLog(Protocol):
    """A log whose fsync can run off the event loop (`josef.storage.disk.DiskPartitionLog`)."""

    @property
    def config(self) -> LogConfig: ...
    @property
    def recovery_point(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    @property
    def unflushed_messages(self) -> int: ...
    @property
    def active_base_offset(self) -> int: ...

    def begin_flush(self) -> FlushJobLike: ...
    def finish_flush(self, job: FlushJobLike) -> None: ...
    def pending_write(self) -> object | None: ...
    async def wait_written(self, write: Any) -> None: ...


_Waiter = tuple[SplitFlushLog, int, "asyncio.Future[None]"]

# isinstance() against a runtime-checkable Protocol probes every member (evaluating the
# properties) and costs ~40 µs; it runs on every produce, so the answer is kept per class.
_split_flush_types: dict[type, bool] = {}


def _is_split_flush(log: PartitionLog) -> TypeGuard[SplitFlushLog]:
    cls = type(log)
    known = _split_flush_types.get(cls)
    if known is None:
        known = _split_flush_types[cls] = isinstance(log, SplitFlushLog)
    return known


def pending_write(log: PartitionLog) -> object | None:
    """The write of `log`'s latest append while it is not in the file yet (write-behind),
    else None: take it right after the append, give it to `after_append`."""
    return log.pending_write() if _is_split_flush(log) else None


class GroupCommit:
    """One fsync run at a time, shared by everyone waiting; `executor=None` is asyncio's
    default thread pool."""

    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor
        self._waiting: list[_Waiter] = []
        self._scheduled = False
        self._running = False
        self._last_flush_ms: weakref.WeakKeyDictionary[SplitFlushLog, int] = (
            weakref.WeakKeyDictionary()
        )
        self._rolled_flushes: set[asyncio.Task[None]] = set()  # one per log at most
        self._rolled_logs: weakref.WeakSet[SplitFlushLog] = weakref.WeakSet()

    async def wait_durable(self, log: PartitionLog, offset: int) -> None:
        """Return once every offset below `offset` is fsynced."""
        if not _is_split_flush(log) or log.recovery_point >= offset:
            return
        if offset > log.log_end_offset:
            raise ValueError(f"offset {offset} is past the log end {log.log_end_offset}")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((log, offset, future))
        self._schedule(loop)
        await future

    async def after_append(
        self, log: PartitionLog, now_ms: int, write: object | None = None
    ) -> None:
        """flush.messages / flush.ms after an append: wait for an fsync when one is due (the
        flush job waits for the writes before it), else for the append's `write`."""
        if not _is_split_flush(log):
            return
        if self._flush_due(log, now_ms):
            self._last_flush_ms[log] = now_ms
            await self.wait_durable(log, log.log_end_offset)
            return
        if write is not None:
            await log.wait_written(write)
        if log.recovery_point < log.active_base_offset and log not in self._rolled_logs:
            self._rolled_logs.add(log)
            task = asyncio.ensure_future(self.wait_durable(log, log.active_base_offset))
            self._rolled_flushes.add(task)
            task.add_done_callback(lambda t: self._rolled_flush_done(log, t))

    def _rolled_flush_done(self, log: SplitFlushLog, task: asyncio.Task[None]) -> None:
        self._rolled_flushes.discard(task)
        self._rolled_logs.discard(log)
        if not task.cancelled() and task.exception() is not None:
            # Nobody waits on this flush: the next one retries, recovery covers the rest.
            _log.warning("background flush of rolled segments failed: %s", task.exception())

    async def flush_expired(self, logs: Iterable[PartitionLog], now_ms: int) -> None:
        """Flush every log whose flush.ms has passed since its last flush (one shared run)."""
        due = [
            log for log in logs
            if _is_split_flush(log) and log.config.flush_ms < LONG_MAX
            and log.recovery_point < log.log_end_offset
            and now_ms - self._last_flush_ms.setdefault(log, now_ms) >= log.config.flush_ms
        ]
        for log in due:
            self._last_flush_ms[log] = now_ms
        await asyncio.gather(*(self.wait_durable(log, log.log_end_offset) for log in due))

    def _flush_due(self, log: SplitFlushLog, now_ms: int) -> bool:
        config = log.config
        if log.unflushed_messages >= config.flush_messages:
            return True
        if config.flush_ms >= LONG_MAX:
            return False
        last = self._last_flush_ms.setdefault(log, now_ms)
        return now_ms - last >= config.flush_ms

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and not self._running:
            self._scheduled = True
            loop.call_soon(self._start_run, loop)

    def _start_run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        waiters, self._waiting = self._waiting, []
        jobs: dict[SplitFlushLog, FlushJobLike] = {}
        failed: dict[SplitFlushLog, StorageError] = {}
        for log, _offset, _future in waiters:
            if log in jobs or log in failed:
                continue
            try:
                jobs[log] = log.begin_flush()
            except StorageError as err:
                failed[log] = err
        self._running = True
        run = loop.run_in_executor(self._executor, _run_all, list(jobs.values()))
        run.add_done_callback(lambda _f: self._finish_run(loop, waiters, jobs, failed))

    def _finish_run(
        self, loop: asyncio.AbstractEventLoop, waiters: list[_Waiter],
        jobs: dict[SplitFlushLog, FlushJobLike], failed: dict[SplitFlushLog, StorageError],
    ) -> None:
        self._running = False
        for log, job in jobs.items():
            try:
                log.finish_flush(job)
            except StorageError as err:
                failed[log] = err
        for log, offset, future in waiters:
            if future.done():
                continue  # the caller was cancelled
            if log in failed:
                future.set_exception(failed[log])
            elif log.recovery_point >= offset:
                future.set_result(None)
            elif offset > log.log_end_offset:
                future.set_exception(
                    KafkaStorageError(f"offset {offset} was truncated before it became durable")
                )
            else:  # truncated and re-appended meanwhile: the next run covers it
                self._waiting.append((log, offset, future))
        if self._waiting:
            self._schedule(loop)


def _run_all(jobs: list[FlushJobLike]) -> None:
    """Worker thread: every fsync of one run; errors stay in each job for its log."""
    for job in jobs:
        job.run()
