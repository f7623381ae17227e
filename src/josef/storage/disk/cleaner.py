"""The log cleaner of the disk engine (Kafka's LogCleaner): compaction rounds and their files.

What a round decides is `josef.storage.compaction.run_round`; this module does the I/O.

Threading contract (the log's single writer is the event loop):

    job = cleaner.begin(log, now_ms)      # loop: choose the range, dup the segment fds
    job.run()                             # worker thread: read, build the map, write, fsync
    stats = cleaner.finish(job)           # loop: swap the cleaned segments in
    cleaner.write_checkpoints()           # any thread: cleaner-offset-checkpoint files

`LogCleaner.clean_once` does the four steps for the filthiest log with asyncio's executor;
`clean` does them synchronously (tests, tools). While a job runs the loop keeps appending,
reading, rolling and applying retention: the worker only reads non-active segments (and the
active one's bytes below the size it had at `begin`) through dup'ed fds and writes new files,
so deleted segments stay readable and nothing it uses changes. `finish` swaps only when the
replaced segments are still the log's (same objects, no truncation since `begin`); otherwise
the round is dropped and its files deleted.

The checkpoint (first dirty offset) of a log is validated whenever it is used, as Kafka's
LogCleanerManager.cleanableOffsets does, and persisted when corrected: below the log start
it becomes the log start; above the log end offset (the log was cut since, e.g. by recovery
before a restart) or after a truncation of the log (`DiskPartitionLog.truncations` moved
since the cleaner last validated it) it is reset to the log start, so records written over
a truncated range are never taken for cleaned ones. The cleaner validates every log when it
is created, before any append can carry a cut log past its old checkpoint again.

Files of a round, per group of segments with first base offset B (Kafka's names):
`B.log.cleaned` (written, fsynced, mtime set to the group's) -> renamed `B.log.swap` and the
directory fsynced (worker) -> on the loop the old segments' files are deleted, newest first,
and `B.log.swap` is renamed `B.log`. `recover_swap_files` (called when a log is opened) makes
any crash point safe: `.cleaned` files are deleted (the old segments are all there), a
`.swap` file is complete, so the old segments it covers are deleted and it takes the name.
Indexes of the new segment are built in memory while writing and reach their files at the
next flush (missing index files are rebuilt on load).

Bounds: reads and writes go through 512 KiB buffers (Kafka's log.cleaner.io.buffer.size; one
batch larger than that is read whole, it is at most max.message.bytes); the offset map holds
at most `max_map_entries` keys (see josef.storage.compaction).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from josef.records.batch import BATCH_LENGTH_OFFSET, LOG_OVERHEAD, BatchHeader, iter_batches
from josef.records.errors import RecordsError
from josef.storage.api import LogConfig
from josef.storage.compaction import (
    DEFAULT_MAX_MAP_ENTRIES,
    CleanStats,
    SegmentSummary,
    plan_cleaning,
    run_round,
)
from josef.storage.disk.checkpoint import CorruptCheckpoint, read_offsets, write_offsets
from josef.storage.disk.segment import LogSegment, segment_name
from josef.storage.errors import CorruptRecord, KafkaStorageError, StorageError
from josef.storage.files import fsync_dir

if TYPE_CHECKING:
    from josef.storage.disk.log import DiskPartitionLog
    from josef.storage.disk.manager import DiskPartitionLogs

CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
# Kafka's log.cleaner.io.buffer.size (512 KiB): the read chunk and the write-behind buffer.
IO_BUFFER_BYTES = 512 * 1024
# os.writev takes at most IOV_MAX (1024 on Linux) buffers; flush the write buffer before.
_MAX_WRITE_BUFFERS = 512
_INT32 = struct.Struct(">i")

TopicPartitionKey = tuple[str, int]

_log = logging.getLogger(__name__)


# --- recovery -----------------------------------------------------------------------------------
def recover_swap_files(directory: str) -> None:
    """Finish or roll back an interrupted swap in a partition directory (call before the
    segments are listed): delete `.cleaned` files, complete every `.log.swap`."""
    names = os.listdir(directory)
    changed = False
    for name in names:
        if name.endswith(CLEANED_SUFFIX):
            os.unlink(os.path.join(directory, name))
            changed = True
    bases = sorted(
        int(n[:20]) for n in names if n.endswith(".log") and len(n) == 24 and n[:20].isdigit()
    )
    for name in sorted(n for n in names if n.endswith(".log" + SWAP_SUFFIX)):
        stem = name[: -len(".log" + SWAP_SUFFIX)]
        if len(stem) != 20 or not stem.isdigit():
            continue
        base = int(stem)
        swap_path = os.path.join(directory, name)
        next_offset = _next_offset(swap_path, base)
        for old in reversed([b for b in bases if base < b < next_offset]):
            _unlink_segment_files(directory, old, with_log=True)
        _unlink_segment_files(directory, base, with_log=False)  # stale indexes of the old one
        os.replace(swap_path, os.path.join(directory, stem + ".log"))
        changed = True
    if changed:
        fsync_dir(directory)


def _next_offset(path: str, base_offset: int) -> int:
    """The offset after the last whole batch of a segment file (headers only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        next_offset = base_offset
        for header in _read_batches(fd, os.fstat(fd).st_size, tolerate_damage=True):
            next_offset = header.next_offset
        return next_offset
    finally:
        os.close(fd)


def _unlink_segment_files(directory: str, base_offset: int, *, with_log: bool) -> None:
    stem = os.path.join(directory, segment_name(base_offset))
    for suffix in (".timeindex", ".index", ".log") if with_log else (".timeindex", ".index"):
        try:
            os.unlink(stem + suffix)
        except FileNotFoundError:
            pass


# --- reading ------------------------------------------------------------------------------------
def _read_batches(fd: int, size: int, *, tolerate_damage: bool = False) -> Iterator[BatchHeader]:
    """The batches in the first `size` bytes of a segment file, through IO_BUFFER_BYTES reads.
    A short or malformed file raises CorruptRecord, or ends quietly with `tolerate_damage`."""
    position = 0
    while position < size:
        buf = os.pread(fd, min(IO_BUFFER_BYTES, size - position), position)
        consumed = 0
        try:
            for header in iter_batches(buf, allow_truncated_tail=True):
                yield header
                consumed = header.end
            if consumed == 0 and len(buf) >= BATCH_LENGTH_OFFSET + 4:
                # One batch larger than the buffer: read it whole (max.message.bytes bounds it).
                length = _INT32.unpack_from(buf, BATCH_LENGTH_OFFSET)[0] + LOG_OVERHEAD
                if LOG_OVERHEAD < length <= size - position:
                    buf = os.pread(fd, length, position)
                    for header in iter_batches(buf):
                        yield header
                        consumed = header.end
        except RecordsError as err:
            if tolerate_damage:
                return
            where = position + consumed
            raise CorruptRecord(f"unreadable batch at position {where}: {err}") from err
        if consumed == 0:
            if tolerate_damage:
                return
            raise CorruptRecord(f"truncated batch at position {position} of {size}")
        position += consumed


# --- a job --------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Source:
    """A segment as the worker sees it: a dup'ed fd and the size it had at `begin`."""

    segment: LogSegment
    fd: int
    size: int


@dataclass(slots=True)
class _CleanedGroup:
    old: list[LogSegment]
    new: LogSegment
    swap_path: str


class _SegmentWriter:
    """The compaction sink of the disk engine: one `.log.cleaned` segment per changed group."""

    def __init__(self, job: CleanJob) -> None:
        self._job = job
        self._segment: LogSegment | None = None
        self._group: list[int] = []
        self._buffers: list[bytes | memoryview] = []
        self._batches: list[tuple[int, int, int, int]] = []
        self._pending = 0

    def begin_group(self, group: list[int]) -> None:
        job = self._job
        base = job.sources[group[0]].segment.base_offset
        path = os.path.join(job.directory, segment_name(base) + ".log" + CLEANED_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        segment = LogSegment(job.directory, base, job.config, fd)
        segment.log_path = path
        job.files.append(path)
        self._segment, self._group = segment, group

    def write(self, batch: bytes | memoryview) -> None:
        header = BatchHeader(batch)
        self._buffers.append(batch)
        self._batches.append(
            (header.base_offset, header.last_offset, header.max_timestamp, header.size)
        )
        self._pending += header.size
        if self._pending >= IO_BUFFER_BYTES or len(self._buffers) >= _MAX_WRITE_BUFFERS:
            self._flush_buffer()

    def _flush_buffer(self) -> None:
        if self._buffers:
            assert self._segment is not None
            self._segment.append(self._buffers, self._pending, self._batches, self._job.now_ms)
        self._buffers, self._batches, self._pending = [], [], 0

    def end_group(self, changed: bool) -> None:
        segment, job = self._segment, self._job
        assert segment is not None
        self._flush_buffer()
        self._segment = None
        old = [job.sources[i].segment for i in self._group]
        if not changed:
            segment.close()
            os.unlink(segment.log_path)
            job.files.remove(segment.log_path)
            return
        segment.finalize()
        os.fsync(segment.fd)
        segment.flushed_size = segment.size
        # Kafka keeps the group's last-modified time: retention by time counts from it.
        last_modified_ms = max(s.last_append_ms for s in old)
        segment.last_append_ms = last_modified_ms
        os.utime(segment.log_path, ns=(last_modified_ms * 1_000_000,) * 2)
        job.groups.append(_CleanedGroup(old, segment, segment.log_path))


@dataclass(slots=True)
class CleanJob:
    """One round on one log: made by `LogCleaner.begin` (loop), `run` on a worker thread,
    then `LogCleaner.finish` (loop)."""

    log: DiskPartitionLog
    key: TopicPartitionKey
    log_dir: str
    directory: str
    config: LogConfig
    now_ms: int
    checkpoint: int | None
    log_start_offset: int
    log_end_offset: int
    high_watermark: int
    truncations: int
    sources: list[_Source]
    summaries: list[SegmentSummary]  # taken on the loop at `begin`
    max_map_entries: int
    delete_horizon_ms: int | None
    force: bool
    stats: CleanStats | None = None
    error: Exception | None = None
    groups: list[_CleanedGroup] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # created by this job, for clean-up

    def run(self) -> None:
        """Worker side: the whole round up to `.swap` files; errors are kept in `error`."""
        try:
            self.stats = run_round(
                self.summaries, self._batches_of,
                log_start_offset=self.log_start_offset, log_end_offset=self.log_end_offset,
                high_watermark=self.high_watermark, checkpoint=self.checkpoint,
                config=self.config, now_ms=self.now_ms, sink=_SegmentWriter(self),
                max_map_entries=self.max_map_entries, delete_horizon_ms=self.delete_horizon_ms,
                force=self.force,
            )
            for group in self.groups:
                swap_path = group.swap_path[: -len(CLEANED_SUFFIX)] + SWAP_SUFFIX
                os.replace(group.swap_path, swap_path)
                self.files[self.files.index(group.swap_path)] = swap_path
                group.swap_path = group.new.log_path = swap_path
            if self.groups:
                fsync_dir(self.directory)
        except (OSError, RecordsError, StorageError) as err:
            self.error = err
        finally:
            for source in self.sources:
                os.close(source.fd)
            self.sources = []

    def _batches_of(self, i: int) -> Iterable[BatchHeader]:
        source = self.sources[i]
        return _read_batches(source.fd, source.size)

    def discard(self) -> None:
        """Delete what the round wrote (it is not swapped in)."""
        for group in self.groups:
            group.new.close()
        for path in self.files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.groups, self.files = [], []


# --- the cleaner --------------------------------------------------------------------------------
class LogCleaner:
    """Compaction for the logs of a `DiskPartitionLogs` whose cleanup.policy has compact,
    with one `cleaner-offset-checkpoint` per log dir (Kafka's format: first dirty offsets)."""

    def __init__(
        self, logs: DiskPartitionLogs, *, max_map_entries: int = DEFAULT_MAX_MAP_ENTRIES
    ) -> None:
        self._logs = logs
        self._max_map_entries = max_map_entries
        self._checkpoints: dict[str, dict[TopicPartitionKey, int]] = {}
        # Per log, when kept tombstones may go (not persisted: after a restart they go at the
        # next round the dirty ratio triggers).
        self._delete_horizons: dict[TopicPartitionKey, int] = {}
        self._dirty_dirs: set[str] = set()
        self._in_progress: set[TopicPartitionKey] = set()
        # log -> its truncation count when its checkpoint was last validated or set: a
        # truncation since then may have replaced cleaned offsets with new, never-mapped
        # records. A log never seen counts from 0, its count when it was opened.
        self._truncations: dict[TopicPartitionKey, tuple[DiskPartitionLog, int]] = {}
        self.uncleanable: dict[TopicPartitionKey, str] = {}  # failed rounds, by reason
        for topic, partition in logs.partitions():
            log = logs.get(topic, partition)
            if log is not None:
                self.checkpoint_of(log)

    def _locate(self, log: DiskPartitionLog) -> tuple[str, TopicPartitionKey]:
        directory = os.path.abspath(log.directory)
        topic, _, partition = os.path.basename(directory).rpartition("-")
        return os.path.dirname(directory), (topic, int(partition))

    def _checkpoint_of(self, log_dir: str) -> dict[TopicPartitionKey, int]:
        if log_dir not in self._checkpoints:
            path = os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT)
            try:
                self._checkpoints[log_dir] = read_offsets(path)
            except CorruptCheckpoint as err:
                # As Kafka: nothing counts as cleaned (every log is dirty from its start),
                # and the next write replaces the file.
                _log.error("%s; cleaning every log of %s from its start", err, log_dir)
                self._checkpoints[log_dir] = {}
                self._dirty_dirs.add(log_dir)
        return self._checkpoints[log_dir]

    def checkpoint_of(self, log: DiskPartitionLog) -> int | None:
        """The first dirty offset recorded for `log`, None when never cleaned; validated
        first (see the module docstring), the correction kept for `write_checkpoints`."""
        log_dir, key = self._locate(log)
        checkpoints = self._checkpoint_of(log_dir)
        checkpoint = checkpoints.get(key)
        truncated = self._truncated_since_seen(key, log)
        self._truncations[key] = (log, log.truncations)
        if checkpoint is None:
            return None
        log_start_offset, log_end_offset = log.log_start_offset, log.log_end_offset
        if truncated or checkpoint > log_end_offset:
            _log.warning(
                "resetting the first dirty offset of %s from %d to the log start offset %d: "
                "%s", log.directory, checkpoint, log_start_offset,
                "the log was truncated since it was cleaned" if truncated
                else f"it is above the log end offset {log_end_offset}",
            )
        elif checkpoint >= log_start_offset:
            return checkpoint
        # Below the log start is routine (retention, DeleteRecords): no log line.
        checkpoints[key] = log_start_offset
        self._dirty_dirs.add(log_dir)
        return log_start_offset

    def _truncated_since_seen(self, key: TopicPartitionKey, log: DiskPartitionLog) -> bool:
        seen = self._truncations.get(key)
        if seen is None:
            return log.truncations != 0
        if seen[0] is not log:  # reopened: the old object's count, then the new one's
            return seen[0].truncations != seen[1] or log.truncations != 0
        return log.truncations != seen[1]

    def truncate_checkpoint(self, log: DiskPartitionLog, offset: int) -> None:
        """Kafka's maybeTruncateCheckpoint: `log` was truncated to `offset`, so nothing at or
        after it counts as cleaned. Whoever truncates a compacted log calls this (the cleaner
        also notices truncations of logs it cleaned since it was created)."""
        log_dir, key = self._locate(log)
        checkpoints = self._checkpoint_of(log_dir)
        if checkpoints.get(key, -1) > offset:
            checkpoints[key] = offset
            self._dirty_dirs.add(log_dir)
        self._truncations[key] = (log, log.truncations)

    # --- choosing -----------------------------------------------------------------------------
    def filthiest(self, now_ms: int) -> DiskPartitionLog | None:
        """The due log with the highest dirty ratio (Kafka's grabFilthiestCompactedLog).
        Planned from segment metadata only, bounded by the high watermark; open
        transactions are found by the round itself."""
        best: tuple[float, DiskPartitionLog] | None = None
        for topic, partition in self._logs.partitions():
            log = self._logs.get(topic, partition)
            if log is None or not log.config.compact:
                continue
            _, key = self._locate(log)
            if key in self._in_progress or key in self.uncleanable:
                continue
            summaries = [_summary(s, s.size) for s in log.segments]
            plan = plan_cleaning(
                summaries, log.log_start_offset, log.log_end_offset, self.checkpoint_of(log),
                log.high_watermark, log.config, now_ms,
            )
            horizon = self._delete_horizons.get(key)
            due = plan.is_due(log.config) or (horizon is not None and horizon <= now_ms)
            if due and (best is None or plan.dirty_ratio > best[0]):
                best = (plan.dirty_ratio, log)
        return None if best is None else best[1]

    # --- the three steps ----------------------------------------------------------------------
    def begin(self, log: DiskPartitionLog, now_ms: int, *, force: bool = False) -> CleanJob:
        """Loop side: capture the segments and dup their fds for the worker."""
        log_dir, key = self._locate(log)
        assert key not in self._in_progress, f"{key} is being cleaned already"
        log.settle()  # the worker reads the files: every append in them first
        sources: list[_Source] = []
        try:
            for segment in log.segments:
                sources.append(_Source(segment, os.dup(segment.fd), segment.size))
        except OSError as err:
            for source in sources:
                os.close(source.fd)
            raise KafkaStorageError(f"cannot clean {log.directory}: {err}") from err
        self._in_progress.add(key)
        return CleanJob(
            log=log, key=key, log_dir=log_dir, directory=log.directory, config=log.config,
            now_ms=now_ms, checkpoint=self.checkpoint_of(log),
            log_start_offset=log.log_start_offset, log_end_offset=log.log_end_offset,
            high_watermark=log.high_watermark, truncations=log.truncations, sources=sources,
            summaries=[_summary(s.segment, s.size) for s in sources],
            max_map_entries=self._max_map_entries,
            delete_horizon_ms=self._delete_horizons.get(key), force=force,
        )

    def finish(self, job: CleanJob) -> CleanStats | None:
        """Loop side: swap the cleaned segments in and advance the checkpoint (in memory;
        `write_checkpoints` persists it). None when the round cleaned nothing or was
        dropped because the log changed under it; a failed round raises and marks the log
        uncleanable (Kafka's LogCleaningException)."""
        self._in_progress.discard(job.key)
        if job.error is not None:
            job.discard()
            self.uncleanable[job.key] = str(job.error)
            if isinstance(job.error, StorageError):
                raise job.error
            raise KafkaStorageError(f"cleaning {job.directory} failed: {job.error}") from (
                job.error
            )
        if job.stats is None:
            job.discard()
            return None
        log = job.log
        if log.truncations != job.truncations or not all(
            log.holds_segments(g.old) for g in job.groups
        ):
            job.discard()
            return None
        for group in job.groups:
            log.replace_segments(group.old, group.new, group.swap_path)
        self._checkpoint_of(job.log_dir)[job.key] = job.stats.end_offset
        self._truncations[job.key] = (log, log.truncations)
        if job.stats.next_delete_horizon_ms is None:
            self._delete_horizons.pop(job.key, None)
        else:
            self._delete_horizons[job.key] = job.stats.next_delete_horizon_ms
        self._dirty_dirs.add(job.log_dir)
        return job.stats

    def write_checkpoints(self) -> None:
        """Persist the cleaner checkpoints changed since the last call (blocking: fsync)."""
        live = set(self._logs.partitions())
        for log_dir in sorted(self._dirty_dirs):
            offsets = {k: v for k, v in self._checkpoints[log_dir].items() if k in live}
            write_offsets(os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT), offsets)
        self._dirty_dirs.clear()

    # --- drivers ------------------------------------------------------------------------------
    def clean(
        self, log: DiskPartitionLog, now_ms: int, *, force: bool = False
    ) -> CleanStats | None:
        """One synchronous round on `log` (blocks: tests, tools, shutdown)."""
        if not log.config.compact:
            return None
        job = self.begin(log, now_ms, force=force)
        job.run()
        stats = self.finish(job)
        self.write_checkpoints()
        return stats

    async def clean_once(
        self, now_ms: int, executor: Executor | None = None
    ) -> CleanStats | None:
        """Clean the filthiest due log with the heavy work on `executor` (asyncio's default
        thread pool when None); None when no log is due. The broker calls this every
        log.cleaner.backoff.ms (Kafka: 15 s) while it returns None."""
        log = self.filthiest(now_ms)
        loop = asyncio.get_running_loop()
        if log is None:
            if self._dirty_dirs:  # checkpoints corrected while choosing
                await loop.run_in_executor(executor, self.write_checkpoints)
            return None
        job = self.begin(log, now_ms)
        await loop.run_in_executor(executor, job.run)
        try:
            return self.finish(job)
        finally:
            await loop.run_in_executor(executor, self.write_checkpoints)


def _largest_timestamp(segment: LogSegment) -> int:
    """Kafka's LogSegment.largestTimestamp: max record timestamp, else last-modified time."""
    return segment.max_timestamp if segment.max_timestamp >= 0 else segment.last_append_ms


def _summary(segment: LogSegment, size: int) -> SegmentSummary:
    return SegmentSummary(
        segment.base_offset, size, _largest_timestamp(segment),
        segment.first_batch_timestamp,
    )
