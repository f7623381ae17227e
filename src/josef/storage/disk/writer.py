"""Write-behind: one I/O thread per log dir writes the appends' bytes into the segment files.

Why: an append costs CPU on the event loop (CRC-32C, header checks, offsets, indexes) and a
`write` into the page cache, which under sustained load also sleeps in the kernel's dirty-page
throttling. Done in turn on one thread the two add up; here the loop does the bookkeeping of
the next append while this thread's `writev` (which releases the GIL) runs.

Contract:
- `LogSegment` appends do their bookkeeping at once and `submit` a `PendingWrite` (one under
  `hand_off_min_bytes` to a log with nothing queued is written at once instead); writes run
  in submission order, consecutive writes to one file coalesced into one `writev` (at most
  IOV_MAX buffers). Whoever needs the bytes in the file waits for that write: `wait` (blocking,
  any thread) or `await wait_async` (the event loop). The produce path acknowledges only after
  its write is done, so acks=1/all still mean "in the file" as with synchronous writes.
- A write that fails (or writes short, e.g. ENOSPC) gets `error`; so does every write of the
  same log submitted after it, without being attempted (its bytes would land at the wrong
  position). The log notices (`WriteStream.failed`) and rolls itself back to the last written
  byte before its next operation; nothing is cut here.
- Memory is bounded: `submit` blocks the caller while more than `max_pending_bytes` are
  submitted and not written (what a synchronous write would have blocked on anyway).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from josef.storage.disk.segment import LogSegment

_log = logging.getLogger(__name__)

# os.writev takes at most IOV_MAX buffers (1024 on Linux).
IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
# Bytes submitted and not yet written, per log dir. 16 MiB is a few milliseconds of the
# page cache's write rate and tens of milliseconds of a disk's: enough to keep the thread
# busy while the loop prepares the next appends, small next to a broker's memory (the
# buffers are the produce requests' own bytes, held until written).
DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024
# Smaller appends are written on the caller's thread when their log has no write queued: the
# hand-off to this thread and back costs the produce answer tens of µs (one-record acks=all
# requests, one in flight, went from about 4,400 to 2,500 a second), more than such a write
# into the page cache (1-3 µs) saves the loop. Larger ones overlap the loop's work on the
# next append with their write (16 KiB: about 9 µs).
DEFAULT_HAND_OFF_MIN_BYTES = 4096


class WriteStream:
    """The writes of one log: after one of them fails, the later ones are not attempted."""

    __slots__ = ("failed", "last")

    def __init__(self) -> None:
        self.failed: PendingWrite | None = None  # the first write that failed
        self.last: PendingWrite | None = None  # the latest write submitted


class PendingWrite:
    """`buffers` (`size` bytes) to append to `segment`'s file at `position`, holding the
    offsets below `end_offset`. `done` once attempted (or dropped); `error` tells it failed."""

    __slots__ = (
        "buffers",
        "done",
        "end_offset",
        "error",
        "position",
        "segment",
        "size",
        "stream",
    )

    def __init__(
        self, segment: LogSegment, stream: WriteStream,
        buffers: Sequence[bytes | bytearray | memoryview], size: int, position: int,
        end_offset: int,
    ) -> None:
        self.segment = segment
        self.stream = stream
        self.buffers = buffers
        self.size = size
        self.position = position
        self.end_offset = end_offset
        self.done = False
        self.error: OSError | None = None


class LogDirWriter:
    """The I/O thread of one log dir (started at the first submit)."""

    hand_off_min_bytes = DEFAULT_HAND_OFF_MIN_BYTES  # per instance with the argument

    def __init__(
        self, name: str, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        hand_off_min_bytes: int | None = None,
    ) -> None:
        self.name = name
        self.max_pending_bytes = max_pending_bytes
        if hand_off_min_bytes is not None:
            self.hand_off_min_bytes = hand_off_min_bytes
        self._queue: deque[PendingWrite] = deque()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the thread waits here when idle
        self._progress = threading.Condition(self._lock)  # blocking waiters wait here
        self._idle = False
        self._blocked = 0  # threads waiting on _progress
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Counted on one side each, so neither needs the lock: submitted by the caller,
        # written (attempted) by the thread.
        self._submitted_bytes = 0
        self._written_bytes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_waiters: list[tuple[PendingWrite, asyncio.Future[None]]] = []
        self._wakeup_scheduled = False

    # --- the caller's side (the event loop) ------------------------------------------------
    def submit(self, write: PendingWrite) -> None:
        if self._thread is None:
            self._start()
        self._submitted_bytes += write.size
        self._queue.append(write)
        if self._idle:  # checked after the append: the thread rechecks the queue under the lock
            with self._lock:
                self._work.notify()
        if self._submitted_bytes - self._written_bytes > self.max_pending_bytes:
            self._wait_until(
                lambda: self._submitted_bytes - self._written_bytes <= self.max_pending_bytes
            )

    def wait(self, write: PendingWrite) -> None:
        """Block until `write` is done (any thread but this writer's)."""
        if not write.done:
            self._wait_until(lambda: write.done)

    async def wait_async(self, write: PendingWrite) -> None:
        """Return once `write` is done, without blocking the event loop."""
        if write.done:
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a wake-up scheduled on an earlier loop may never run
            self._loop, self._wakeup_scheduled = loop, False
        future: asyncio.Future[None] = loop.create_future()
        self._async_waiters.append((write, future))
        if write.done:  # finished between the check and the registration
            self._wake_async_waiters()
        await future

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            self._stopping = True
            self._work.notify()
        thread.join()
        self._thread = None

    def _start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"josef-writer-{self.name}", daemon=True
        )
        self._thread.start()

    def _wait_until(self, ready: Callable[[], bool]) -> None:
        with self._lock:
            self._blocked += 1
            try:
                while not ready():
                    self._progress.wait()
            finally:
                self._blocked -= 1

    def _wake_async_waiters(self) -> None:
        """On the loop: resolve the futures of finished writes."""
        self._wakeup_scheduled = False
        waiting = []
        for write, future in self._async_waiters:
            if not write.done:
                waiting.append((write, future))
            elif not future.done():
                future.set_result(None)
        self._async_waiters = waiting

    # --- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                with self._lock:
                    self._idle = True
                    while not queue and not self._stopping:
                        self._work.wait()
                    self._idle = False
                    if not queue:
                        return
            try:
                self._write_some()
            except BaseException as err:  # a bug: fail what is queued rather than hang
                _log.exception("log dir writer %s failed", self.name)
                while queue:
                    write = queue.popleft()
                    write.error = OSError(errno.EIO, f"writer thread failed: {err!r}")
                    self._finish([write], write.size)
                if not isinstance(err, Exception):
                    raise

    def _write_some(self) -> None:
        """One writev of the consecutive queued writes to the file at the head of the queue.
        This thread's Python runs under the GIL, in turn with the event loop: it is kept to
        a few attribute reads per write."""
        queue = self._queue
        first = queue.popleft()
        if first.stream.failed is not None:  # an earlier write of this log failed
            first.error = OSError(errno.EIO, "not written: an earlier write failed")
            self._finish([first], first.size)
            return
        segment = first.segment
        group = [first]
        buffers = list(first.buffers)
        size = first.size
        while queue:
            write = queue[0]
            if write.segment is not segment:  # the next writev's
                break
            if len(buffers) + len(write.buffers) > IOV_MAX:
                break
            queue.popleft()
            group.append(write)
            buffers += write.buffers
            size += write.size
        try:
            written = os.writev(segment.fd, buffers)
        except OSError as err:
            self._fail(group, 0, err)
        else:
            if written == size:
                last = group[-1]
                segment.written = last.position + last.size
                segment.written_offset = last.end_offset  # after `written`: readers go by it
            else:  # short: the file system is full (or over quota)
                self._fail(group, written, None)
        self._finish(group, size)

    def _fail(self, group: list[PendingWrite], written: int, error: OSError | None) -> None:
        """The writes of `group` that `written` bytes cover are in the file; the next one
        failed (with `error`, else a short write), and the rest are not written."""
        for write in group:
            if error is None and written >= write.size:
                written -= write.size
                segment = write.segment
                segment.written = write.position + write.size
                segment.written_offset = write.end_offset
                continue
            if error is None:
                error = OSError(errno.ENOSPC, f"short write: {written} of {write.size} bytes")
            write.error = error
            if write.stream.failed is None:
                write.stream.failed = write
                _log.error(
                    "write to %s at position %d failed: %s (the log rolls back to its last "
                    "written batch)", write.segment.log_path, write.position, error,
                )
            error = OSError(errno.EIO, "not written: an earlier write failed")

    def _finish(self, group: list[PendingWrite], size: int) -> None:
        self._written_bytes += size
        for write in group:
            write.done = True
        if self._blocked:
            with self._lock:
                self._progress.notify_all()
        if self._async_waiters and not self._wakeup_scheduled:
            loop = self._loop
            if loop is not None:
                self._wakeup_scheduled = True
                try:
                    loop.call_soon_threadsafe(self._wake_async_waiters)
                except RuntimeError:  # the loop is closed: nobody is left waiting
                    self._async_waiters = []
                    self._wakeup_scheduled = False
