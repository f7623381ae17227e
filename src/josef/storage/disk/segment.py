"""One log segment: `<base_offset:020d>.log` plus its `.index` and `.timeindex`.

The `.log` file holds whole record batches exactly as appended; it is opened O_APPEND and
every append is ONE `os.writev`, either at once (a failed or short write is cut back with
ftruncate, so the file only ever grows by whole appends) or, with a `writer`, on the log
dir's I/O thread (`josef.storage.disk.writer`: the append's bookkeeping is done at once, the
write follows; a failed write is rolled back by the log). Reads are `os.pread` of whole
batches; the read path trusts the file (it was validated on append or by recovery) and walks
only batch headers.

Contract: `size` is the number of valid bytes, `written` how many of them are in the file
(equal without a writer): a read of bytes past `written` first waits for the writes
(`settle`), read-aheads stop at `written`; `next_offset` is the offset after the last
batch (base_offset when empty). Indexes are caches kept in memory, written at flush
(`begin_flush`) and fsynced once the segment is sealed (`finalize`); `scan(validate=True)`
is Kafka's LogSegment.recover: it rebuilds both indexes and stops at the first invalid byte
(length, magic, CRC-32C, offsets not increasing or not fitting a relative int32).
`first_record_at` finds a record by timestamp in one batch without decoding records.
"""

from __future__ import annotations

import errno
import os
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from crc32c import crc32c

from josef.protocol.varint import read_varlong
from josef.records.batch import (
    ATTRIBUTES_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    MIN_BATCH_LENGTH,
    TIMESTAMP_TYPE_MASK,
    BatchHeader,
)
from josef.records.records import records_section
from josef.storage.api import LogConfig
from josef.storage.disk.index import (
    OFFSET_ENTRY_SIZE,
    TIME_ENTRY_SIZE,
    OffsetIndex,
    TimeIndex,
    write_pending,
)
from josef.storage.disk.writer import LogDirWriter, PendingWrite, WriteStream
from josef.storage.errors import KafkaStorageError

INT32_MAX = 2**31 - 1
# Header scans read ahead this much per pread: covers a whole index interval (4 KiB by
# default) of small batches in one system call.
READAHEAD_BYTES = 64 * 1024
# Recovery reads the log in chunks of this size: large enough that CRC-32C and syscalls
# run near disk speed, small enough to bound memory (one chunk, or one batch if larger).
RECOVERY_CHUNK_BYTES = 8 * 1024 * 1024

# base_offset, batch_length, partition_leader_epoch | last_offset_delta | max_timestamp
_BASE_LENGTH_EPOCH = struct.Struct(">qii")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_MAX_TIMESTAMP = struct.Struct(">q")
# Recovery's one unpack: base_offset, batch_length, partition_leader_epoch, magic, crc,
# attributes, last_offset_delta, base_timestamp, max_timestamp (the first 43 header bytes).
_SCAN_HEADER = struct.Struct(">qiibIhiqq")
_LAST_OFFSET_DELTA_POS = 23
_MAX_TIMESTAMP_POS = 35


class BatchInfo(NamedTuple):
    """What the log engine needs from one stored batch header."""

    position: int
    base_offset: int
    last_offset: int
    size: int
    max_timestamp: int
    leader_epoch: int


def _parse(buf: bytes | memoryview, off: int, position: int) -> BatchInfo:
    base, length, epoch = _BASE_LENGTH_EPOCH.unpack_from(buf, off)
    delta = _LAST_OFFSET_DELTA.unpack_from(buf, off + _LAST_OFFSET_DELTA_POS)[0]
    max_ts = _MAX_TIMESTAMP.unpack_from(buf, off + _MAX_TIMESTAMP_POS)[0]
    return BatchInfo(position, base, base + delta, length + LOG_OVERHEAD, max_ts, epoch)


def first_record_at(batch: BatchHeader, timestamp: int, min_offset: int) -> tuple[int, int] | None:
    """(timestamp, offset) of the batch's first record at or after `timestamp` whose offset
    is at least `min_offset` (None when there is none): ListOffsets by time. Only each
    record's length, timestamp delta and offset delta are read; keys, values and headers are
    skipped, not decoded. Malformed records raise ProtocolError (from the varint reader)."""
    section = bytes(records_section(batch))  # indexing bytes is faster than a memoryview
    log_append_time = batch.attributes & TIMESTAMP_TYPE_MASK
    base_offset, base_timestamp = batch.base_offset, batch.base_timestamp
    end = len(section)
    pos = 0
    for _ in range(batch.record_count):
        if pos >= end:
            break
        length, pos = _small_varint(section, pos, end)
        record_end = pos + length
        delta, pos = _small_varint(section, pos + 1, end)  # after the attributes byte
        offset = base_offset + _small_varint(section, pos, end)[0]
        record_ts = batch.max_timestamp if log_append_time else base_timestamp + delta
        if offset >= min_offset and record_ts >= timestamp:
            return record_ts, offset
        pos = record_end
    return None


def _small_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A zig-zag varint (record lengths and deltas), the one- and two-byte cases inline."""
    if pos + 1 < end:
        b = buf[pos]
        if b < 0x80:
            return (b >> 1) ^ -(b & 1), pos + 1
        c = buf[pos + 1]
        if c < 0x80:
            raw = (b & 0x7F) | (c << 7)
            return (raw >> 1) ^ -(raw & 1), pos + 2
    return read_varlong(buf, pos, end)


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class LogSegment:
    """A segment file and its in-memory index state (single writer: the log)."""

    def __init__(self, directory: str, base_offset: int, config: LogConfig, fd: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.fd = fd
        stem = os.path.join(directory, segment_name(base_offset))
        self.log_path = stem + ".log"
        self.index_path = stem + ".index"
        self.time_index_path = stem + ".timeindex"
        self._index_fd = -1
        self._time_index_fd = -1
        # Index entries written to the files without an fsync (the active segment's, see
        # begin_flush); fsynced once the segment is sealed.
        self._indexes_unsynced = False
        self.size = 0
        self.written = 0  # bytes in the file (set by the writer's thread with write-behind)
        self.flushed_size = 0
        # Write-behind (set by the log): the log dir's writer, the log's stream of writes,
        # and this segment's latest write.
        self.writer: LogDirWriter | None = None
        self.stream: WriteStream | None = None
        self.last_write: PendingWrite | None = None
        # Clock times of the file, not of its contents: a rescan (recovery, truncation)
        # keeps them, as Kafka's lastModified is the file's.
        self.first_append_ms = -1  # for segment.ms when no batch has a timestamp
        self.last_append_ms = -1
        self._reset_state(config)

    def _reset_state(self, config: LogConfig) -> None:
        self.index_interval_bytes = config.index_interval_bytes
        self.offset_index = OffsetIndex(config.segment_index_bytes // OFFSET_ENTRY_SIZE)
        self.time_index = TimeIndex(config.segment_index_bytes // TIME_ENTRY_SIZE)
        self.next_offset = self.base_offset
        # The offset after the last written batch, kept only while writes are pending.
        self.written_offset = self.base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1  # base_offset of the first batch holding it
        self.first_batch_timestamp = -1  # Kafka's rollingBasedTimestamp
        self.bytes_since_last_index_entry = 0
        self.sealed = False  # finalized: rolled, closed or written by the cleaner

    # --- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def create(cls, directory: str, base_offset: int, config: LogConfig) -> LogSegment:
        path = os.path.join(directory, segment_name(base_offset) + ".log")
        for suffix in (".index", ".timeindex"):  # leftovers of an earlier segment here
            _unlink_if_exists(path[: -len(".log")] + suffix)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        return cls(directory, base_offset, config, fd)

    @classmethod
    def open_existing(
        cls, directory: str, base_offset: int, config: LogConfig, now_ms: int
    ) -> LogSegment:
        path = os.path.join(directory, segment_name(base_offset) + ".log")
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        segment = cls(directory, base_offset, config, fd)
        st = os.fstat(fd)
        segment.size = segment.written = segment.flushed_size = st.st_size
        segment.last_append_ms = st.st_mtime_ns // 1_000_000
        segment.first_append_ms = now_ms
        return segment

    def close(self) -> None:
        self.settle()  # the writer's thread must not write to a closed (reused) fd
        for fd in (self.fd, self._index_fd, self._time_index_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self._index_fd = self._time_index_fd = -1

    def delete(self) -> None:
        self.close()
        for path in (self.time_index_path, self.index_path, self.log_path):
            _unlink_if_exists(path)

    # --- appends ------------------------------------------------------------------------------
    def append(
        self, buffers: Sequence[bytes | bytearray | memoryview], total: int,
        batches: Sequence[tuple[int, int, int, int]], now_ms: int,
    ) -> None:
        """Write `buffers` (whole batches, `total` bytes) with one writev; `batches` holds
        (base_offset, last_offset, max_timestamp, size) of each. All or nothing."""
        start = self.size
        if self._hand_off(total):
            self._submit(buffers, total, start, batches[-1][1] + 1)
        else:
            self._write_now(buffers, total, start)
        if start == 0:
            self.first_append_ms = now_ms
            self.first_batch_timestamp = batches[0][2]
        # _index_batch inlined: this runs on every append.
        position = start
        max_timestamp = self.max_timestamp
        since_entry = self.bytes_since_last_index_entry
        for base, _last, max_ts, size in batches:
            if max_ts > max_timestamp:
                max_timestamp = self.max_timestamp = max_ts
                self.offset_of_max_timestamp = base
            if since_entry > self.index_interval_bytes:
                self.offset_index.append(base - self.base_offset, position)
                self.time_index.maybe_append(
                    max_timestamp, self.offset_of_max_timestamp - self.base_offset
                )
                since_entry = 0
            since_entry += size
            position += size
        self.bytes_since_last_index_entry = since_entry
        self.next_offset = batches[-1][1] + 1
        self.size = position
        self.last_append_ms = now_ms

    def append_batch(
        self, buffers: Sequence[bytes | bytearray | memoryview], base: int, last: int,
        max_timestamp: int, size: int, now_ms: int,
    ) -> None:
        """`append` of one batch (the common produce), without the per-batch tuples."""
        start = self.size
        if self._hand_off(size):
            self._submit(buffers, size, start, last + 1)
        else:
            self._write_now(buffers, size, start)
        if start == 0:
            self.first_append_ms = now_ms
            self.first_batch_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = base
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(base - self.base_offset, start)
            self.time_index.maybe_append(
                self.max_timestamp, self.offset_of_max_timestamp - self.base_offset
            )
            self.bytes_since_last_index_entry = size
        else:
            self.bytes_since_last_index_entry += size
        self.next_offset = last + 1
        self.size = start + size
        self.last_append_ms = now_ms

    def _hand_off(self, size: int) -> bool:
        """Whether the writer's thread writes this append: always when the log has writes
        queued (order), and from the writer's hand_off_min_bytes on; a smaller append to a
        log with nothing queued is written here, at once."""
        writer, stream = self.writer, self.stream
        if writer is None or stream is None:
            return False
        if size >= writer.hand_off_min_bytes:
            return True
        last = stream.last
        # A failed write leaves `error` on the latest one: the log rolls back first.
        return last is not None and (not last.done or last.error is not None)

    def _write_now(
        self, buffers: Sequence[bytes | bytearray | memoryview], size: int, start: int
    ) -> None:
        try:
            written = os.writev(self.fd, buffers)
        except OSError as err:
            self._cut_back(start)
            raise KafkaStorageError(f"write to {self.log_path} failed: {err}") from err
        if written != size:
            self._cut_back(start)
            raise KafkaStorageError(
                f"short write to {self.log_path}: {written} of {size} bytes "
                f"({os.strerror(errno.ENOSPC)}?)"
            )
        self.written = start + size

    def _submit(
        self, buffers: Sequence[bytes | bytearray | memoryview], size: int, start: int,
        end_offset: int,
    ) -> None:
        stream = self.stream
        assert self.writer is not None and stream is not None
        write = PendingWrite(self, stream, buffers, size, start, end_offset)
        self.last_write = stream.last = write
        self.writer.submit(write)

    def settle(self) -> None:
        """Wait until every write submitted for this segment is done (write-behind)."""
        last = self.last_write
        if last is not None and not last.done:
            assert self.writer is not None
            self.writer.wait(last)

    def _pread(self, length: int, position: int) -> bytes:
        """os.pread of bytes that must be in the file: waits for the writes first; raises when
        they failed (the log rolls back before its next operation)."""
        if position + length > self.written:
            self.settle()
            if position + length > self.written:
                raise KafkaStorageError(
                    f"{self.log_path}: bytes {position}..{position + length} were not written"
                )
        return os.pread(self.fd, length, position)

    def _ahead(self, position: int, want: int, need: int) -> int:
        """A read-ahead length: `want` bytes, cut at `written` when that still leaves the
        `need` bytes the caller must have (a tail read does not wait for the writer)."""
        written = self.written
        if position + want > written and position + need <= written:
            return written - position
        return want

    def _cut_back(self, size: int) -> None:
        try:
            os.ftruncate(self.fd, size)
        except OSError:
            pass  # the file keeps junk past `size`; reads never look there, recovery cuts it

    def _index_batch(self, position: int, base: int, last: int, max_ts: int, size: int) -> None:
        """Kafka's LogSegment.append bookkeeping for one batch at `position`."""
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
            self.offset_of_max_timestamp = base
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(base - self.base_offset, position)
            self.time_index.maybe_append(
                self.max_timestamp, self.offset_of_max_timestamp - self.base_offset
            )
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += size
        self.next_offset = last + 1

    def finalize(self) -> None:
        """On roll and close: the time index's last entry becomes the segment's max, and the
        next flush fsyncs the index files."""
        self.sealed = True
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(
                self.max_timestamp, self.offset_of_max_timestamp - self.base_offset
            )

    def index_full(self) -> bool:
        return self.offset_index.is_full or self.time_index.is_full

    # --- reads --------------------------------------------------------------------------------
    def iter_batches(self, position: int = 0, end: int | None = None) -> Iterator[BatchInfo]:
        """Headers of the batches in [position, end), read ahead in chunks."""
        end = self.size if end is None else end
        buf = b""
        buf_start = position
        while position < end:
            off = position - buf_start
            if off + HEADER_SIZE > len(buf):
                want = self._ahead(position, min(READAHEAD_BYTES, end - position), HEADER_SIZE)
                buf = self._pread(want, position)
                buf_start, off = position, 0
                assert len(buf) >= HEADER_SIZE, f"{self.log_path}: short header at {position}"
            info = _parse(buf, off, position)
            yield info
            position += info.size

    def find_batch(self, offset: int) -> BatchInfo | None:
        """The first batch whose last offset is >= offset (None past the end)."""
        return self._locate(offset)[0]

    def _locate(self, offset: int) -> tuple[BatchInfo | None, bytes, int]:
        """`find_batch`, plus the bytes last read to find it and their file position: the
        first read-ahead stops one header past the next index entry, as that batch starts at
        or before it, so a lookup of one large batch reads it once."""
        index = self.offset_index
        i = bisect_right(index.offsets, offset - self.base_offset)
        position = index.positions[i - 1] if i else 0
        size = self.size
        end = min(size, index.positions[i] + HEADER_SIZE) if i < len(index.positions) else size
        buf, buf_start = b"", position
        while position < size:
            off = position - buf_start
            if off + HEADER_SIZE > len(buf):
                want = max(min(READAHEAD_BYTES, end - position), HEADER_SIZE)
                want = self._ahead(position, want, HEADER_SIZE)
                buf, buf_start, off = self._pread(want, position), position, 0
            info = _parse(buf, off, position)
            if info.last_offset >= offset:
                return info, buf, buf_start
            position += info.size
        return None, buf, buf_start

    def read(
        self, offset: int, max_bytes: int, max_offset: int, min_one_batch: bool
    ) -> tuple[bytes | memoryview | None, int, bool]:
        """Whole batches from the one holding `offset`: (data, next offset, more_may_follow).

        Batches holding max_offset or later are left out, and so is everything past
        max_bytes except a first batch when min_one_batch (KIP-74). `more_may_follow` is
        True when the read stopped only because this segment ended.
        """
        first, found_in, found_at = self._locate(offset)
        if first is None:
            return None, offset, True
        if first.last_offset >= max_offset:
            return None, offset, False
        if first.size > max_bytes and not min_one_batch:
            return None, offset, False
        end = self.size
        if max_offset < self.next_offset:
            stop = self.offset_index.position_at_or_after(max_offset - self.base_offset)
            if stop is not None:
                end = stop
        length = min(end - first.position, max(max_bytes, first.size))
        if max_offset <= self.written_offset:  # all it may return is written: do not wait
            length = self._ahead(first.position, length, first.size)
        skip = first.position - found_at
        data: bytes | memoryview
        if skip + length <= len(found_in):  # read already while looking for the batch
            data = memoryview(found_in)[skip : skip + length]
        else:
            data = self._pread(length, first.position)
        cut, next_offset = first.size, first.last_offset + 1
        # The last index entry inside the data, below max_offset, is a batch boundary that
        # every batch before it qualifies for: only the headers after it (about
        # index.interval.bytes of them) are walked to find the cut.
        index = self.offset_index
        i = min(
            bisect_right(index.positions, first.position + len(data)),
            bisect_left(index.offsets, max_offset - self.base_offset),
        ) - 1
        if i >= 0 and index.positions[i] - first.position > cut:
            cut = index.positions[i] - first.position
            next_offset = self.base_offset + index.offsets[i]
        while cut + HEADER_SIZE <= len(data):
            info = _parse(data, cut, first.position + cut)
            if cut + info.size > len(data) or info.last_offset >= max_offset:
                break
            cut += info.size
            next_offset = info.last_offset + 1
        reached_end = first.position + cut == self.size
        view = data if cut == len(data) else memoryview(data)[:cut]
        return view, next_offset, reached_end

    def read_batch(self, info: BatchInfo) -> BatchHeader:
        return BatchHeader(self._pread(info.size, info.position))

    def find_timestamp(self, timestamp: int) -> BatchInfo | None:
        """The first batch with max_timestamp >= timestamp."""
        if self.max_timestamp < timestamp:
            return None
        relative = self.time_index.lookup(timestamp)
        start = self.offset_index.lookup(relative)
        for info in self.iter_batches(start):
            if info.max_timestamp >= timestamp:
                return info
        return None

    def batch_at_offset(self, base_offset: int) -> BatchInfo | None:
        info = self.find_batch(base_offset)
        return info if info is not None and info.base_offset == base_offset else None

    # --- recovery, truncation -----------------------------------------------------------------
    def load(self, config: LogConfig) -> None:
        """State of a segment below the recovery point: trust its indexes when they pass a
        sanity check (else rebuild them from the log), and read the headers after the last
        offset-index entry to find next_offset and the max timestamp."""
        max_relative = INT32_MAX
        offset_index = OffsetIndex.load(
            self.index_path, config.segment_index_bytes // OFFSET_ENTRY_SIZE, self.size
        )
        time_index = TimeIndex.load(
            self.time_index_path, config.segment_index_bytes // TIME_ENTRY_SIZE, max_relative
        )
        if offset_index is None or time_index is None:
            self.scan(config, validate=False)
            return
        self.offset_index, self.time_index = offset_index, time_index
        # Sealed segments' indexes were fsynced whole: the time index's last entry is the
        # max before the tail (no header walk, which would cost O(segment) when timestamps
        # do not grow).
        if time_index.timestamps:
            self.max_timestamp = time_index.timestamps[-1]
            self.offset_of_max_timestamp = self.base_offset + time_index.offsets[-1]
        if self.size == 0:
            return
        self.first_batch_timestamp = next(self.iter_batches(0)).max_timestamp
        start = offset_index.last_position()
        tail = self.iter_batches(start)
        if offset_index.positions:  # the batch at the last entry is indexed already
            info = next(tail)
            self._note_max(info)
            self.bytes_since_last_index_entry = info.size
            self.next_offset = info.last_offset + 1
        for info in tail:
            self._index_batch(
                info.position, info.base_offset, info.last_offset, info.max_timestamp, info.size
            )
        self.written_offset = self.next_offset  # all of it is in the file

    def _load_max_timestamp(self, end: int) -> None:
        """max_timestamp of the batches before position `end` (an offset-index entry's), for
        recovery: the time index's last entry, then the headers from the batch it names up
        to `end`, as the time index may lag the offset index (an active segment's index
        files are not fsynced; power loss). With growing timestamps nothing is walked; when
        they do not grow, recovery walks this segment's headers (no CRC)."""
        start = 0
        if self.time_index.timestamps:
            self.max_timestamp = self.time_index.timestamps[-1]
            relative = self.time_index.offsets[-1]
            self.offset_of_max_timestamp = self.base_offset + relative
            start = self.offset_index.lookup(relative)
        if start < end:
            for info in self.iter_batches(start, end):
                self._note_max(info)

    def _note_max(self, info: BatchInfo) -> None:
        if info.max_timestamp > self.max_timestamp:
            self.max_timestamp = info.max_timestamp
            self.offset_of_max_timestamp = info.base_offset

    def scan(self, config: LogConfig, validate: bool) -> bool:
        """Rebuild all state from the `.log` file; with validate, check every batch and cut
        the file at the first invalid byte. Returns True when bytes were cut."""
        self._reset_state(config)
        self._reset_index_files()
        return self._scan_from(0, validate)

    def recover(self, config: LogConfig, recovery_point: int) -> bool:
        """Kafka's LogSegment.recover for the segment holding the recovery point, resumed
        from the last index entry below it: the bytes before that entry's batch were
        fsynced with the index entries describing them. Returns True when bytes were cut."""
        offset_index = OffsetIndex.load(
            self.index_path, config.segment_index_bytes // OFFSET_ENTRY_SIZE, self.size,
            below=recovery_point - self.base_offset,
        )
        if offset_index is None or not offset_index.positions:
            return self.scan(config, validate=True)
        resume_at = offset_index.positions[-1]
        if resume_at + HEADER_SIZE > self.size:
            return self.scan(config, validate=True)
        resume = next(self.iter_batches(resume_at, resume_at + HEADER_SIZE))
        if (
            resume.base_offset != self.base_offset + offset_index.offsets[-1]
            or resume.position + resume.size > self.size
            or not self.read_batch(resume).crc_valid()
        ):
            return self.scan(config, validate=True)  # the trusted part is damaged after all
        time_index = TimeIndex.load(
            self.time_index_path, config.segment_index_bytes // TIME_ENTRY_SIZE,
            offset_index.offsets[-1], prefix=True,
        )
        if time_index is None:
            return self.scan(config, validate=True)
        self._reset_state(config)
        self.offset_index, self.time_index = offset_index, time_index
        # Drop entries past the trusted prefix from the files; persist appends after it.
        os.truncate(self.index_path, len(offset_index) * OFFSET_ENTRY_SIZE)
        os.truncate(self.time_index_path, len(time_index) * TIME_ENTRY_SIZE)
        self._load_max_timestamp(resume_at)
        self.first_batch_timestamp = next(self.iter_batches(0, HEADER_SIZE)).max_timestamp
        self.next_offset = self.base_offset + offset_index.offsets[-1]
        return self._scan_from(resume_at, validate=True)

    def _scan_from(self, position: int, validate: bool) -> bool:
        """Walk (and with validate, check) batches from `position`, which is 0 or the
        position of the last offset-index entry; cut the file at the first invalid byte.
        One header unpack per batch and the bookkeeping inline: this loop is recovery."""
        indexed_position = position if position > 0 else -1
        file_size = os.fstat(self.fd).st_size
        buf: bytes = b""
        buf_start = position
        unpack = _SCAN_HEADER.unpack_from
        while position < file_size:
            off = position - buf_start
            if off + HEADER_SIZE > len(buf):
                buf = os.pread(self.fd, min(RECOVERY_CHUNK_BYTES, file_size - position), position)
                buf_start, off = position, 0
                if len(buf) < HEADER_SIZE:
                    break
            base, length, _epoch, magic, crc, _attributes, delta, _first_ts, max_ts = unpack(
                buf, off
            )
            size = length + LOG_OVERHEAD
            if length < MIN_BATCH_LENGTH or position + size > file_size or magic != MAGIC:
                break
            last = base + delta
            if validate:
                if off + size > len(buf):
                    chunk = max(RECOVERY_CHUNK_BYTES, size)
                    buf = os.pread(self.fd, min(chunk, file_size - position), position)
                    buf_start, off = position, 0
                if (
                    delta < 0
                    or base < self.next_offset
                    or last - self.base_offset > INT32_MAX
                    or crc32c(memoryview(buf)[off + ATTRIBUTES_OFFSET : off + size]) != crc
                ):
                    break
            if position == 0:
                self.first_batch_timestamp = max_ts
            if position == indexed_position:  # its index entries are loaded already
                if max_ts > self.max_timestamp:
                    self.max_timestamp, self.offset_of_max_timestamp = max_ts, base
                self.bytes_since_last_index_entry = size
                self.next_offset = last + 1
            else:
                self._index_batch(position, base, last, max_ts, size)
            position += size
        self.size = self.written = position
        self.written_offset = self.next_offset
        self.flushed_size = min(self.flushed_size, position)
        if position < file_size:
            os.ftruncate(self.fd, position)
            return True
        return False

    def truncate_to_offset(self, offset: int, config: LogConfig) -> None:
        """Remove the batch holding `offset` and everything after it."""
        self.settle()
        info = self.find_batch(offset)
        if info is None:
            return
        os.ftruncate(self.fd, info.position)
        self.scan(config, validate=False)

    def _reset_index_files(self) -> None:
        for fd in (self._index_fd, self._time_index_fd):
            if fd >= 0:
                os.close(fd)
        self._index_fd = self._time_index_fd = -1
        self._indexes_unsynced = False
        _unlink_if_exists(self.index_path)
        _unlink_if_exists(self.time_index_path)

    # --- durability ---------------------------------------------------------------------------
    def is_dirty(self) -> bool:
        return (
            self.flushed_size != self.size
            or self.offset_index.persisted != len(self.offset_index)
            or self.time_index.persisted != len(self.time_index)
            or (self._indexes_unsynced and self.sealed)
        )

    def begin_flush(self, active: bool) -> list[int]:
        """Write pending index entries; return dup'ed fds to fsync off the event loop (the
        caller closes them), so that a segment deleted meanwhile cannot reuse the numbers.

        The active segment's index files are written but not fsynced: one fsync per commit
        instead of three (fsync-before-ack). After a process crash the page cache still has
        them and recovery resumes at their last entry; after a power loss they may be stale,
        which recovery tolerates (`load`, `recover`: a valid prefix, the rest rebuilt from
        the fsynced `.log`). A sealed or rolled segment's indexes are fsynced and their fds
        closed: they are complete."""
        sync_indexes = self.sealed or not active
        try:
            if self._index_fd < 0:
                self._index_fd = _open_append(self.index_path)
            if self._time_index_fd < 0:
                self._time_index_fd = _open_append(self.time_index_path)
            write_pending(
                self._index_fd, self.offset_index.pending_bytes(),
                self.offset_index.persisted * OFFSET_ENTRY_SIZE,
            )
            self.offset_index.persisted = len(self.offset_index)
            write_pending(
                self._time_index_fd, self.time_index.pending_bytes(),
                self.time_index.persisted * TIME_ENTRY_SIZE,
            )
            self.time_index.persisted = len(self.time_index)
            if sync_indexes:
                fds = [os.dup(self.fd), os.dup(self._index_fd), os.dup(self._time_index_fd)]
                self._indexes_unsynced = False
            else:
                fds = [os.dup(self.fd)]
                self._indexes_unsynced = True
        except OSError as err:
            raise KafkaStorageError(f"flush of {self.log_path} failed: {err}") from err
        if not active:
            os.close(self._index_fd)
            os.close(self._time_index_fd)
            self._index_fd = self._time_index_fd = -1
        return fds


def _open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _unlink_if_exists(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
