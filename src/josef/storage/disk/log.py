"""`DiskPartitionLog`: one partition's log as a directory of segments (Kafka's UnifiedLog).

Contract (see josef.storage.api.PartitionLog for the operations, docs/storage.md for the
layout): appends are validated completely before anything is written, then written with one
`os.writev` to the active segment (rolled first when Kafka would roll), so a failed append
leaves the log unchanged. On return the bytes are in the page cache; durability comes from
`flush` or, off the event loop, `begin_flush` (loop) -> `FlushJob.run` (worker thread) ->
`finish_flush` (loop), which `josef.storage.flusher.GroupCommit` drives.

Write-behind (opened with a `writer`, as the broker does; `josef.storage.disk.writer`): an
append returns once its bookkeeping is done and its bytes are queued for the log dir's I/O
thread; `pending_write()` then `await wait_written(...)` is what "in the file" waits for
(the broker acknowledges after it), a flush job waits for the writes before its fsync, and
reads of bytes not yet written wait for them. A failed write (disk full) fails that append
and every later one not yet written; before its next operation the log rolls back to its
last written batch exactly as `truncate_to` does (segments, indexes, producer state, leader
epochs, aborted transactions), and then works as before.

Invariant: log_end_offset is the active segment's next_offset (its base_offset when empty),
so it is the same after a restart.

Producer state, leader epochs and aborted transactions (`josef.storage.producer_state`,
`leader_epoch`, `txn_index`): batches with a producer id are checked by the producer state
after offsets are assigned and before anything is written (a duplicate is answered with the
original offsets and writes nothing; a refused batch raises with Kafka's code); the update is
committed after the write, and each aborted transaction it completes goes to the `.txnindex`
of the active segment. Batches without a producer id skip all of this. Leader appends assign
their leader epoch in the epoch cache, follower appends the epochs of their batch headers.
A roll and a clean close take a producer-state snapshot (encoded on the loop, written and
fsynced by the next flush job, after the segment bytes it describes). Opening loads the newest
snapshot at or below the log end and replays the batch headers after it, so the work is
proportional to the tail written since the last roll, not to the log.

Deviation: AppendInfo.offset_of_max_timestamp is computed from batch headers only (records are
never decoded on append): the batch's first offset when its first record must hold the max
(LogAppendTime, or max_timestamp == base_timestamp), else its last offset, which is exact for
the usual increasing timestamps unless several records share the max. The ListOffsets
lookups (`offset_for_timestamp`, `offset_of_max_timestamp`) decode the one batch they land in
and are exact.
"""

from __future__ import annotations

import logging
import os
import random
import struct
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crc32c import crc32c

from josef.protocol.errors import ErrorCode
from josef.records.batch import (
    ATTRIBUTES_OFFSET,
    BASE_OFFSET_OFFSET,
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAX_TIMESTAMP_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET,
    TIMESTAMP_TYPE_MASK,
    BatchHeader,
    plain_client_batch,
    validate_batches,
)
from josef.records.control import EndTransactionMarker, parse_marker
from josef.records.errors import RecordsError
from josef.records.records import iter_records, record_offset, record_timestamp
from josef.storage.api import AppendInfo, FetchData, LogConfig, TimestampAndOffset
from josef.storage.disk.cleaner import recover_swap_files
from josef.storage.disk.segment import INT32_MAX, LogSegment, first_record_at, segment_name
from josef.storage.disk.writer import IOV_MAX, LogDirWriter, PendingWrite, WriteStream
from josef.storage.errors import (
    InvalidRecord,
    KafkaStorageError,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
    UnexpectedAppendOffset,
    from_records_error,
)
from josef.storage.leader_epoch import LEADER_EPOCH_CHECKPOINT, CorruptCheckpoint, LeaderEpochCache
from josef.storage.producer_state import (
    DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    AppendOrigin,
    AppendOutcome,
    BatchMetadata,
    CompletedTxn,
    CorruptSnapshotError,
    ProducerSnapshot,
    ProducerStateManager,
    ProducerStateUpdate,
    decode_snapshot,
    snapshot_path,
    write_snapshot,
)
from josef.storage.txn_index import (
    TXN_INDEX_SUFFIX,
    AbortedTxn,
    CorruptTxnIndex,
    TransactionIndex,
)

_log = logging.getLogger(__name__)

_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_PREFIX = struct.Struct(">qii")  # base_offset, batch_length, partition_leader_epoch
_CLIENT = AppendOrigin.CLIENT  # an Enum member lookup costs ~0.2 µs on every produce
_NO_TIMESTAMP = -1
_LOG_APPEND_TIME = "LogAppendTime"
# Header walks (producer-state replay) read this much per pread: many small batches per call.
_REPLAY_READAHEAD_BYTES = 64 * 1024


@dataclass(slots=True)
class FlushJob:
    """The blocking half of a flush: fsync these (dup'ed) fds; safe on a worker thread."""

    fds: list[int]
    target_offset: int
    messages: int
    sizes: list[tuple[LogSegment, int]] = field(default_factory=list)
    truncations: int = 0
    directory: str = ""
    snapshots: list[ProducerSnapshot] = field(default_factory=list)  # written after the fsyncs
    error: OSError | None = None
    # Write-behind: the fsyncs cover the writes up to this one, so they wait for it first.
    after: tuple[LogDirWriter, PendingWrite] | None = None

    def run(self) -> None:
        try:
            if self.after is not None:
                writer, write = self.after
                writer.wait(write)
                if write.error is not None:
                    raise write.error
            for fd in self.fds:
                os.fsync(fd)
            # After the fsyncs: a snapshot never describes bytes that a crash could lose.
            for snapshot in self.snapshots:
                write_snapshot(Path(self.directory), snapshot)
        except OSError as err:
            self.error = err
        finally:
            for fd in self.fds:
                os.close(fd)
            self.fds = []


class DiskPartitionLog:
    """One partition's segmented log on disk. Single writer: the event loop."""

    def __init__(
        self, directory: str, config: LogConfig, segments: list[LogSegment],
        log_start_offset: int, recovery_point: int, high_watermark: int, rng: random.Random,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        writer: LogDirWriter | None = None,
    ) -> None:
        self.directory = directory
        self._config = config
        self._writer = writer
        self._stream = WriteStream()
        for segment in segments:
            self._attach(segment)
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._rng = rng
        self._log_start_offset = log_start_offset
        self._recovery_point = recovery_point
        self._high_watermark = high_watermark
        self._unflushed_messages = 0
        self._truncations = 0  # bumped by truncate_to: a flush begun before does not count
        self._dir_dirty = True  # segment files created or deleted since the last dir fsync
        self._closed = False
        self._jitter = (-1, 0)  # (base_offset of the active segment, its roll jitter)
        self._now_ms = 0  # the latest clock reading seen (producer expiry on a reload)
        self.producer_state = ProducerStateManager(
            Path(directory), producer_id_expiration_ms=producer_id_expiration_ms
        )
        self._pending_snapshots: list[ProducerSnapshot] = []
        epochs_path = Path(directory) / LEADER_EPOCH_CHECKPOINT
        self._epochs_lost = False  # the checkpoint was corrupt: rebuild from batch headers
        try:
            self._epoch_cache = LeaderEpochCache(epochs_path)
        except CorruptCheckpoint as err:
            _log.warning("%s; rebuilding it from the batch headers", err)
            epochs_path.unlink()
            self._epoch_cache = LeaderEpochCache(epochs_path)
            self._epochs_lost = True
        self._txn_indexes: dict[int, TransactionIndex] = {}  # base_offset -> aborted txns
        self._dirty_txn_indexes: set[int] = set()  # appended to since the last flush began
        self._state_log_start_offset = log_start_offset  # the one the state was told about

    # --- opening and recovery -----------------------------------------------------------------
    @classmethod
    def open(
        cls, directory: str, config: LogConfig, *, now_ms: int, log_start_offset: int = 0,
        recovery_point: int = 0, high_watermark: int = 0, clean_shutdown: bool = False,
        rng: random.Random | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        writer: LogDirWriter | None = None,
    ) -> DiskPartitionLog:
        """Open (or create) the log in `directory`. Segments below the one holding
        recovery_point are trusted; the rest are recovered (scanned, validated, cut at the
        first invalid byte), unless the last shutdown was clean. With `writer`, appends are
        written behind (see the module contract)."""
        os.makedirs(directory, exist_ok=True)
        try:
            recover_swap_files(directory)  # an interrupted compaction swap, completed or undone
        except OSError as err:
            raise KafkaStorageError(f"cannot recover {directory}: {err}") from err
        bases = _segment_bases(directory)
        segments: list[LogSegment] = []
        try:
            if clean_shutdown:
                first_unflushed = len(bases)
            else:
                first_unflushed = max(bisect_right(bases, recovery_point) - 1, 0)
            for i, base in enumerate(bases):
                if segments and base < segments[-1].next_offset:
                    _delete_files(directory, bases[i:])  # overlapping: not ours to trust
                    break
                segment = LogSegment.open_existing(directory, base, config, now_ms)
                segments.append(segment)
                if i < first_unflushed:
                    segment.load(config)
                    truncated = False
                elif i == first_unflushed:
                    truncated = segment.recover(config, recovery_point)
                else:
                    truncated = segment.scan(config, validate=True)
                if truncated:
                    _delete_files(directory, bases[i + 1 :])
                    break
            if not segments:
                segments.append(LogSegment.create(directory, log_start_offset, config))
            log_end_offset = segments[-1].next_offset
            log_start_offset = max(log_start_offset, segments[0].base_offset)
            if log_start_offset > log_end_offset:
                for segment in reversed(segments):
                    segment.delete()
                segments = [LogSegment.create(directory, log_start_offset, config)]
                log_end_offset = log_start_offset
        except OSError as err:
            for segment in segments:
                segment.close()
            raise KafkaStorageError(f"cannot open the log in {directory}: {err}") from err
        recovery_point = log_end_offset if clean_shutdown else min(recovery_point, log_end_offset)
        high_watermark = min(max(high_watermark, log_start_offset), log_end_offset)
        log = cls(
            directory, config, segments, log_start_offset, recovery_point, high_watermark,
            rng or random.Random(), producer_id_expiration_ms, writer,
        )
        try:
            log._load_state(now_ms)
        except (OSError, StorageError) as err:
            log.close_without_flush()
            if isinstance(err, StorageError):
                raise
            raise KafkaStorageError(f"cannot load the state of {directory}: {err}") from err
        return log

    def _load_state(self, now_ms: int) -> None:
        """Transaction indexes, leader epochs and producer state of a just-opened log: cut
        back to the log's offsets, then the producer state from its newest snapshot plus a
        replay of the batch headers after it (Kafka's UnifiedLog.loadProducerState)."""
        self._now_ms = now_ms
        log_end_offset = self.log_end_offset
        for segment in self._segments:
            path = _txn_index_path(self.directory, segment.base_offset)
            if not os.path.exists(path):
                continue
            index = TransactionIndex(Path(path), segment.base_offset)
            self._txn_indexes[segment.base_offset] = index
            try:
                index.sanity_check()
            except CorruptTxnIndex as err:
                _log.warning("%s; rebuilding it from the producer snapshots and batches", err)
                self._rebuild_txn_index(index)
            index.truncate_to(log_end_offset)
        self._epoch_cache.truncate_from_end(log_end_offset)
        self._epoch_cache.truncate_from_start(self._log_start_offset)
        state = self.producer_state
        map_end_offset = state.truncate_and_reload(self._log_start_offset, log_end_offset, now_ms)
        epochs_from = self._log_start_offset if self._epochs_lost else self._recovery_point
        self._replay(min(map_end_offset, epochs_from), map_end_offset)
        self._epochs_lost = False

    def _replay(self, start_offset: int, producers_from: int) -> None:
        """Walk the batch headers from start_offset to the log end: epochs newer than the
        cache knows are assigned (as Kafka's segment recovery does), and batches from
        producers_from on update the producer state (aborted transactions re-indexed)."""
        state, cache = self.producer_state, self._epoch_cache
        for segment, header, position in self._stored_headers(start_offset):
            epoch = header.partition_leader_epoch
            if epoch >= 0 and (cache.latest_epoch is None or epoch > cache.latest_epoch):
                cache.assign(epoch, header.base_offset)
            if header.producer_id < 0 or header.last_offset < producers_from:
                continue
            for txn in self._replay_batch(state, segment, header, position):
                if txn.is_aborted:
                    index = self._txn_index(segment.base_offset)
                    if index.last_offset is None or txn.last_offset > index.last_offset:
                        index.append(AbortedTxn.from_completed(txn))
        state.map_end_offset = self.log_end_offset

    @staticmethod
    def _replay_batch(
        state: ProducerStateManager, segment: LogSegment, header: BatchHeader, position: int
    ) -> list[CompletedTxn]:
        """Recovery: apply one stored batch with a producer id to `state`; the transactions
        it completes. A control batch is read whole for its marker; one that is not a
        transaction marker changes no producer state."""
        marker = None
        if header.is_control and header.record_count:
            whole = BatchHeader(os.pread(segment.fd, header.size, position))
            try:
                marker = parse_marker(whole)
            except RecordsError:
                return []
        return state.update_from_batch(header, marker)

    def _rebuild_txn_index(self, index: TransactionIndex) -> None:
        """Refill the corrupt .txnindex of a segment as Kafka's segment recovery does: a
        scratch producer state loaded from the newest snapshot at or before the segment's
        base offset (else empty at the log start) replays the batch headers from there
        through the segment, and each aborted transaction whose marker lies in the segment
        is indexed with the first and last stable offsets the append computed. A transaction
        begun below the log start without such a snapshot cannot be known, so it is missed."""
        base = index.start_offset
        index.reset()
        with tempfile.TemporaryDirectory(prefix="josef-txnindex-") as scratch:
            # A copy of the one snapshot needed: loading from the partition directory
            # itself would delete the snapshots newer than `base`.
            self._copy_snapshot_at_or_before(base, Path(scratch))
            state = ProducerStateManager(
                Path(scratch),
                producer_id_expiration_ms=self.producer_state.producer_id_expiration_ms,
            )
            start = state.truncate_and_reload(self._log_start_offset, base, self._now_ms)
            for segment, header, position in self._stored_headers(start):
                if segment.base_offset > base:
                    break
                if header.producer_id < 0:
                    continue
                for txn in self._replay_batch(state, segment, header, position):
                    if txn.is_aborted and segment.base_offset == base:
                        index.append(AbortedTxn.from_completed(txn))
        self._dirty_txn_indexes.add(base)

    def _copy_snapshot_at_or_before(self, offset: int, target: Path) -> None:
        """Copy the newest valid producer snapshot in [log_start_offset, offset] to
        `target` (none when there is no such snapshot)."""
        directory = Path(self.directory)
        for candidate in reversed(self.producer_state.snapshot_offsets()):
            if not self._log_start_offset <= candidate <= offset:
                continue
            data = snapshot_path(directory, candidate).read_bytes()
            try:
                decode_snapshot(data)
            except CorruptSnapshotError:
                continue  # the log's own producer-state load deletes it
            snapshot_path(target, candidate).write_bytes(data)
            return

    def _stored_headers(self, start_offset: int) -> Iterator[tuple[LogSegment, BatchHeader, int]]:
        """(segment, header, file position) of each stored batch holding offsets at or after
        start_offset, reading headers ahead in chunks; a header's buffer may end before its
        records (read the batch at the position when they are needed)."""
        first = max(bisect_right(self._bases, start_offset) - 1, 0)
        for segment in self._segments[first:]:
            position = segment.offset_index.lookup(start_offset - segment.base_offset)
            buf, buf_start = b"", position
            while position < segment.size:
                off = position - buf_start
                if off + HEADER_SIZE > len(buf):
                    buf = os.pread(
                        segment.fd, min(_REPLAY_READAHEAD_BYTES, segment.size - position), position
                    )
                    buf_start, off = position, 0
                header = BatchHeader(buf, off)
                if header.last_offset >= start_offset:
                    yield segment, header, position
                position += header.size

    # --- state --------------------------------------------------------------------------------
    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def unflushed_messages(self) -> int:
        """Records appended since the last flush began (for flush.messages)."""
        return self._unflushed_messages

    @property
    def active_base_offset(self) -> int:
        return self._bases[-1]

    @property
    def segment_base_offsets(self) -> list[int]:
        return list(self._bases)

    def update_config(self, config: LogConfig) -> None:
        self._config = config

    # --- appends ------------------------------------------------------------------------------
    def append_as_leader(
        self, records: bytes | memoryview, leader_epoch: int, now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        self._check_open()
        self._now_ms = now_ms
        config = self._config
        log_append_time = now_ms if config.message_timestamp_type == _LOG_APPEND_TIME else -1
        if origin is _CLIENT and log_append_time < 0:
            plain = plain_client_batch(records, config.max_message_bytes)
            if plain is not None:  # one checked batch, no producer id: no BatchHeader needed
                self._check_fits_a_segment(len(records))
                return self._append_one(records, *plain, leader_epoch, now_ms)
        try:
            headers = validate_batches(
                records, config.max_message_bytes, from_client=origin is _CLIENT
            )
        except RecordsError as err:
            raise from_records_error(err) from err
        total = len(records)
        self._check_fits_a_segment(total)
        if len(headers) == 1 and log_append_time < 0 and headers[0].producer_id >= 0:
            h = headers[0]
            # An idempotent batch right after its producer's last one: no update object.
            next_batch = self.producer_state.next_batch(h, self.log_end_offset)
            if next_batch is not None:
                return self._append_one(
                    records, h.batch_length, h.last_offset_delta, h.base_timestamp,
                    h.max_timestamp, h.record_count, leader_epoch, now_ms,
                    h.producer_id, next_batch,
                )
        view = memoryview(records)
        # More batches than IOV_MAX / 2 (os.writev's limit on buffers): copied once into one
        # buffer instead of written as header + payload pairs.
        whole = bytearray(records) if 2 * len(headers) > IOV_MAX else None
        buffers: list[bytes | bytearray | memoryview] = [whole] if whole is not None else []
        batches: list[tuple[int, int, int, int]] = []
        # (header with the assigned offsets, header as received) of batches with a producer id
        with_producer: list[tuple[BatchHeader, BatchHeader]] = []
        offset = self.log_end_offset
        for h in headers:
            if whole is not None:
                target, at = whole, h.pos
            else:
                target, at = bytearray(view[h.pos : h.pos + HEADER_SIZE]), 0
            _INT64.pack_into(target, at + BASE_OFFSET_OFFSET, offset)
            _INT32.pack_into(target, at + PARTITION_LEADER_EPOCH_OFFSET, leader_epoch)
            max_timestamp = h.max_timestamp
            if log_append_time >= 0:
                max_timestamp = log_append_time
                _INT16.pack_into(
                    target, at + ATTRIBUTES_OFFSET, h.attributes | TIMESTAMP_TYPE_MASK
                )
                _INT64.pack_into(target, at + MAX_TIMESTAMP_OFFSET, log_append_time)
                # The CRC covers attributes..end: header part, then the untouched payload.
                if whole is not None:
                    crc = crc32c(memoryview(whole)[at + ATTRIBUTES_OFFSET : at + h.size])
                else:
                    head_crc = crc32c(target[ATTRIBUTES_OFFSET:])
                    crc = crc32c(view[h.pos + HEADER_SIZE : h.end], head_crc)
                _UINT32.pack_into(target, at + CRC_OFFSET, crc)
            if whole is None:
                buffers += (target, view[h.pos + HEADER_SIZE : h.end])
            if h.producer_id >= 0:
                with_producer.append((BatchHeader(target, at), h))
            last = offset + h.last_offset_delta
            batches.append((offset, last, max_timestamp, h.size))
            offset = last + 1
        update = None
        if with_producer:
            # Before the write, so that a duplicate or a refused batch leaves the log unchanged.
            update = self.producer_state.prepare_update(origin)
            for assigned, received in with_producer:
                duplicate = self._check_producer(update, assigned, received, log_append_time)
                if duplicate is not None:
                    return duplicate
        holder = self._write(buffers, total, batches, now_ms)
        if update is not None:
            self._commit_producer_state(update)
        if leader_epoch >= 0 and self._epoch_cache.latest_epoch != leader_epoch:
            self._assign_epoch(leader_epoch, batches[0][0])
        return self._append_info(headers, batches, holder, log_append_time)

    def _append_one(
        self, records: bytes | memoryview, batch_length: int, last_offset_delta: int,
        base_timestamp: int, max_timestamp: int, record_count: int, leader_epoch: int,
        now_ms: int, producer_id: int = -1, next_batch: BatchMetadata | None = None,
    ) -> AppendInfo:
        """The common produce: one checked CreateTime batch, with no producer id or with
        `next_batch`, the producer-state shortcut's metadata, given as the header fields it
        needs. Only the 16 bytes before the magic byte change (base_offset, batch_length,
        partition_leader_epoch)."""
        active = self._segments[-1]
        offset = active.next_offset
        last = offset + last_offset_delta
        size = batch_length + LOG_OVERHEAD
        if active.size:
            config = self._config
            if active.first_batch_timestamp >= 0:
                waited = max_timestamp - active.first_batch_timestamp
            else:
                waited = now_ms - active.first_append_ms
            if (
                active.size > config.segment_bytes - size
                or waited > config.segment_ms - config.segment_jitter_ms
                or active.index_full()
                or last - active.base_offset > INT32_MAX
            ):
                self._maybe_roll(size, max_timestamp, offset, last, now_ms)
                active = self._segments[-1]
        else:
            self._maybe_roll(size, max_timestamp, offset, last, now_ms)
            active = self._segments[-1]
        active.append_batch(
            [_PREFIX.pack(offset, batch_length, leader_epoch), memoryview(records)[16:size]],
            offset, last, max_timestamp, size, now_ms,
        )
        if next_batch is not None:
            self.producer_state.commit_next_batch(producer_id, next_batch, last + 1)
        if leader_epoch >= 0 and self._epoch_cache.latest_epoch != leader_epoch:
            self._assign_epoch(leader_epoch, offset)
        self._unflushed_messages += record_count
        if max_timestamp < 0:
            max_timestamp, offset_of_max = _NO_TIMESTAMP, -1
        else:
            offset_of_max = offset if max_timestamp == base_timestamp else last
        return AppendInfo(
            offset, last, max_timestamp, offset_of_max, -1, self._log_start_offset, record_count
        )

    def _check_producer(
        self, update: ProducerStateUpdate, assigned: BatchHeader, received: BatchHeader,
        log_append_time: int,
    ) -> AppendInfo | None:
        """Stage one batch in the producer-state update: None to go on, the original
        append's AppendInfo for a duplicate; raises StorageError with Kafka's code."""
        marker: EndTransactionMarker | None = None
        if assigned.is_control and assigned.record_count:
            try:
                marker = parse_marker(received)  # the records are unchanged in `received`
            except RecordsError as err:
                raise from_records_error(err) from err
        check = update.append(assigned, marker)
        if check.outcome is AppendOutcome.APPEND:
            return None
        if check.outcome is AppendOutcome.ERROR:
            raise StorageError(check.message, check.error_code)
        # Kafka answers a duplicate with the original offsets and its timestamp.
        timestamp = _NO_TIMESTAMP
        entry = self.producer_state.last_entry(assigned.producer_id)
        if entry is not None:
            timestamp = next(
                (b.timestamp for b in entry.batches if b.last_offset == check.last_offset),
                _NO_TIMESTAMP,
            )
        return AppendInfo(
            first_offset=check.first_offset,
            last_offset=check.last_offset,
            max_timestamp=timestamp,
            offset_of_max_timestamp=check.last_offset if timestamp >= 0 else -1,
            log_append_time=timestamp if log_append_time >= 0 else _NO_TIMESTAMP,
            log_start_offset=self._log_start_offset,
            record_count=0,
            duplicate=True,
        )

    def _commit_producer_state(self, update: ProducerStateUpdate) -> None:
        """After the write: apply the update; aborted transactions it completed are indexed
        in the active segment, which holds their markers."""
        for txn in self.producer_state.commit_update(update, self.log_end_offset):
            if txn.is_aborted:
                base = self._bases[-1]
                try:
                    self._txn_index(base).append(AbortedTxn.from_completed(txn))
                except OSError as err:
                    raise KafkaStorageError(
                        f"cannot index the aborted transaction {txn} in {self.directory}: {err}"
                    ) from err
                self._dirty_txn_indexes.add(base)

    def _txn_index(self, base_offset: int) -> TransactionIndex:
        index = self._txn_indexes.get(base_offset)
        if index is None:
            index = self._txn_indexes[base_offset] = TransactionIndex(
                Path(_txn_index_path(self.directory, base_offset)), base_offset
            )
        return index

    def _assign_epoch(self, epoch: int, start_offset: int) -> None:
        try:
            self._epoch_cache.assign(epoch, start_offset)
        except OSError as err:
            raise KafkaStorageError(
                f"cannot write the leader-epoch checkpoint of {self.directory}: {err}"
            ) from err

    def append_as_follower(self, records: bytes | memoryview, now_ms: int) -> AppendInfo:
        self._check_open()
        self._now_ms = now_ms
        try:
            headers = validate_batches(records, self._config.max_message_bytes, from_client=False)
        except RecordsError as err:
            raise from_records_error(err) from err
        log_end_offset = self.log_end_offset
        if headers[0].base_offset < log_end_offset:
            raise UnexpectedAppendOffset(
                f"first offset {headers[0].base_offset} is below the log end offset "
                f"{log_end_offset}"
            )
        previous_last = log_end_offset - 1
        batches: list[tuple[int, int, int, int]] = []
        update = None
        for h in headers:
            if h.last_offset_delta < 0 or h.base_offset <= previous_last:
                raise InvalidRecord(
                    f"offsets out of order: batch [{h.base_offset}, {h.last_offset}] after "
                    f"offset {previous_last}"
                )
            previous_last = h.last_offset
            batches.append((h.base_offset, h.last_offset, h.max_timestamp, h.size))
            if h.producer_id >= 0:
                if update is None:
                    update = self.producer_state.prepare_update(AppendOrigin.REPLICATION)
                self._check_producer(update, h, h, -1)  # replicated: trusted, never refused
        total = len(records)
        self._check_fits_a_segment(total)
        holder = self._write([records], total, batches, now_ms)
        if update is not None:
            self._commit_producer_state(update)
        for h in headers:  # the epochs of the leaders that wrote the batches
            epoch = h.partition_leader_epoch
            latest = self._epoch_cache.latest_epoch
            if epoch >= 0 and (latest is None or epoch > latest):
                self._assign_epoch(epoch, h.base_offset)
        return self._append_info(headers, batches, holder, -1)

    def _check_open(self) -> None:
        if self._closed:
            raise KafkaStorageError(f"the log in {self.directory} is closed")
        if self._stream.failed is not None:
            self._roll_back_failed_write()

    # --- write-behind -------------------------------------------------------------------------
    def _attach(self, segment: LogSegment) -> None:
        if self._writer is not None:
            segment.writer, segment.stream = self._writer, self._stream

    def pending_write(self) -> PendingWrite | None:
        """The latest append's write while it is not done or when it failed (write-behind),
        else None: take it right after the append, then `await wait_written(it)` before
        acknowledging (which raises for a failed one)."""
        last = self._stream.last
        return last if last is not None and (not last.done or last.error is not None) else None

    async def wait_written(self, write: PendingWrite) -> None:
        """Return once `write` is in the file. KafkaStorageError if it failed; the log has
        then rolled back to its last written batch."""
        assert self._writer is not None
        await self._writer.wait_async(write)
        if write.error is not None:
            if self._stream.failed is not None and not self._closed:
                self._roll_back_failed_write()
            raise KafkaStorageError(f"write to {self.directory} failed: {write.error}")

    def settle(self) -> None:
        """Block until every append so far is written; roll back if a write failed."""
        self._wait_for_writes()
        if self._stream.failed is not None and not self._closed:
            self._roll_back_failed_write()

    def _wait_for_writes(self) -> None:
        """Block until every queued write of this log is done (written, failed or dropped)."""
        last = self._stream.last
        if last is not None and not last.done:
            assert self._writer is not None
            self._writer.wait(last)

    def _roll_back_failed_write(self) -> None:
        """After a failed write: drop what was not written (the failed write's segment is cut
        back to it, later segments go), then reload the tail state as `truncate_to` does."""
        stream = self._stream
        failed = stream.failed
        assert failed is not None
        self._wait_for_writes()  # the writes after it are dropped, not in flight
        segment = failed.segment
        if segment not in self._segments:  # deleted meanwhile: only by a caller's misuse
            self._closed = True
            raise KafkaStorageError(
                f"the log in {self.directory} lost a write to a deleted segment; reopen it"
            )
        i = self._segments.index(segment)
        try:
            self._delete_tail(i + 1)  # created after the failed write: nothing written
            os.ftruncate(segment.fd, failed.position)
            segment.scan(self._config, validate=False)
        except OSError as err:
            raise KafkaStorageError(
                f"cannot roll back a failed write in {self.directory}: {err}"
            ) from err
        stream.failed = stream.last = None
        _log.warning(
            "%s: rolled back to offset %d after a failed write (%s)",
            self.directory, segment.next_offset, failed.error,
        )
        self._truncations += 1
        self._truncate_state(segment.next_offset)

    def _check_fits_a_segment(self, size: int) -> None:
        # Kafka's RecordBatchTooLargeException: one append must fit in one segment.
        if size > self._config.segment_bytes:
            raise RecordTooLarge(
                f"{size} bytes of records exceed segment.bytes {self._config.segment_bytes}",
                ErrorCode.RECORD_LIST_TOO_LARGE,
            )

    def _write(
        self, buffers: list[bytes | bytearray | memoryview], total: int,
        batches: list[tuple[int, int, int, int]], now_ms: int,
    ) -> int:
        """Roll if needed and write; returns the index of the first batch holding the max
        timestamp (-1 when no batch has a timestamp)."""
        max_timestamp, holder = _NO_TIMESTAMP, -1
        for i, batch in enumerate(batches):
            if batch[2] > max_timestamp:
                max_timestamp, holder = batch[2], i
        self._maybe_roll(total, max_timestamp, batches[0][0], batches[-1][1], now_ms)
        self._segments[-1].append(buffers, total, batches, now_ms)
        return holder

    def _append_info(
        self, headers: list[BatchHeader], batches: list[tuple[int, int, int, int]], holder: int,
        log_append_time: int,
    ) -> AppendInfo:
        count = sum(h.record_count for h in headers)
        self._unflushed_messages += count
        max_timestamp, offset_of_max = _NO_TIMESTAMP, -1
        if holder >= 0:
            base, last, max_timestamp, _size = batches[holder]
            h = headers[holder]
            # From the header alone: the first record holds the max when every record has
            # the log-append time, or when the max is the batch's first timestamp.
            first_holds_max = log_append_time >= 0 or h.max_timestamp == h.base_timestamp
            offset_of_max = base if first_holds_max else last
        return AppendInfo(
            first_offset=batches[0][0],
            last_offset=batches[-1][1],
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max,
            log_append_time=log_append_time,
            log_start_offset=self._log_start_offset,
            record_count=count,
        )

    def _maybe_roll(
        self, size: int, max_timestamp: int, first_offset: int, last_offset: int, now_ms: int
    ) -> None:
        """Kafka's UnifiedLog.maybeRoll: roll a non-empty active segment before an append
        that would overflow segment.bytes, comes segment.ms (less jitter) after its first
        batch, finds its index full, or whose offsets do not fit relative to its base."""
        active = self._segments[-1]
        overflow = last_offset - active.base_offset > INT32_MAX
        if active.size == 0:
            if overflow:  # an empty segment is moved instead (follower jumping ahead)
                self._replace_empty_active(first_offset)
            return
        config = self._config
        if active.first_batch_timestamp >= 0:
            waited = max_timestamp - active.first_batch_timestamp
        else:
            waited = now_ms - active.first_append_ms
        if (
            active.size > config.segment_bytes - size
            or waited > config.segment_ms - self._roll_jitter(active)
            or active.index_full()
            or overflow
        ):
            base_offset = max(first_offset, self.log_end_offset)
            self._queue_snapshot(base_offset)
            self._roll_to(base_offset)

    def _roll_jitter(self, segment: LogSegment) -> int:
        """Kafka's segment.jitter.ms: a random value below it, fixed per segment."""
        jitter = min(self._config.segment_jitter_ms, self._config.segment_ms)
        if jitter <= 0:
            return 0
        if self._jitter[0] != segment.base_offset:
            self._jitter = (segment.base_offset, self._rng.randrange(jitter))
        return self._jitter[1]

    def _queue_snapshot(self, offset: int) -> None:
        """Kafka snapshots the producer state at each roll and at a clean close: encoded now
        (the state as of `offset`, before the append that rolls), written with an fsync by
        the next flush job."""
        state = self.producer_state
        # Batches without a producer id change nothing, so the state describes [0, offset).
        state.map_end_offset = offset
        if state.latest_snapshot_offset == offset or any(
            s.offset == offset for s in self._pending_snapshots
        ):
            return
        self._pending_snapshots.append(state.snapshot())

    def _create_segment(self, base_offset: int) -> LogSegment:
        """A new empty segment, without the .txnindex of an earlier segment at its offset."""
        stale = self._txn_indexes.pop(base_offset, None)
        if stale is not None:
            stale.delete()
        else:
            _unlink_if_exists(_txn_index_path(self.directory, base_offset))
        segment = LogSegment.create(self.directory, base_offset, self._config)
        self._attach(segment)
        return segment

    def _roll_to(self, base_offset: int) -> None:
        # The new segment's file must not reach the disk before the bytes below its base: a
        # crash would keep it, empty, past the stored end, and the log would go on after a
        # gap. Rolls are rare (segment.bytes, segment.ms); the wait is for queued writes only.
        self._wait_for_writes()
        if self._stream.failed is not None:
            raise KafkaStorageError(
                f"a write to {self.directory} failed; the log rolls back to its last write"
            )
        self._segments[-1].finalize()
        try:
            segment = self._create_segment(base_offset)
        except OSError as err:
            raise KafkaStorageError(f"cannot roll {self.directory}: {err}") from err
        self._segments.append(segment)
        self._bases.append(base_offset)
        self._dir_dirty = True

    def _replace_empty_active(self, base_offset: int) -> None:
        self._delete_segment(self._segments.pop())
        self._bases.pop()
        try:
            segment = self._create_segment(base_offset)
        except OSError as err:
            raise KafkaStorageError(f"cannot create a segment in {self.directory}: {err}") from err
        self._segments.append(segment)
        self._bases.append(base_offset)
        self._dir_dirty = True

    # --- reads --------------------------------------------------------------------------------
    def read(
        self, fetch_offset: int, max_bytes: int, max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> FetchData:
        log_end_offset = self.log_end_offset
        if not self._log_start_offset <= fetch_offset <= log_end_offset:
            raise OffsetOutOfRange(
                f"offset {fetch_offset} is outside [{self._log_start_offset}, {log_end_offset}]"
            )
        limit = log_end_offset if max_offset is None else min(max_offset, log_end_offset)
        data = FetchData(
            high_watermark=self._high_watermark,
            log_start_offset=self._log_start_offset,
            log_end_offset=log_end_offset,
        )
        i = max(bisect_right(self._bases, fetch_offset) - 1, 0)
        offset, budget = fetch_offset, max_bytes
        while i < len(self._segments) and offset < limit:
            chunk, offset, more = self._segments[i].read(
                offset, budget, limit, min_one_batch and not data.records
            )
            if chunk is not None:
                data.records.append(chunk)
                data.size += len(chunk)
                budget -= len(chunk)
            # Out of bytes ends the read only once it holds a batch: min_one_batch carries
            # over a segment with nothing at or after `offset` (one emptied by compaction).
            if not more or (budget <= 0 and (data.records or not min_one_batch)):
                break
            i += 1
        return data

    def batches(
        self, start_offset: int = 0, end_offset: int | None = None
    ) -> Iterator[BatchHeader]:
        """Whole stored batches holding offsets in [start_offset, end_offset), in order, one
        pread each: for replays (producer state after a snapshot, tools), not for fetches.
        Do not append, truncate or delete while iterating."""
        end = self.log_end_offset if end_offset is None else end_offset
        first = max(bisect_right(self._bases, start_offset) - 1, 0)
        for segment in self._segments[first:]:
            if segment.base_offset >= end:
                return
            position = segment.offset_index.lookup(start_offset - segment.base_offset)
            for info in segment.iter_batches(position):
                if info.base_offset >= end:
                    return
                if info.last_offset >= start_offset:
                    yield segment.read_batch(info)

    def offset_for_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """Kafka's fetchOffsetByTimestamp: the first record at or after log_start_offset with
        a timestamp >= timestamp; the time index finds the batch, which is then decoded."""
        first = max(bisect_right(self._bases, self._log_start_offset) - 1, 0)
        for segment in self._segments[first:]:
            if segment.max_timestamp < timestamp:
                continue
            start = segment.offset_index.lookup(
                segment.time_index.lookup(timestamp)
            )
            for info in segment.iter_batches(start):
                if info.max_timestamp < timestamp or info.last_offset < self._log_start_offset:
                    continue
                batch = segment.read_batch(info)
                found = first_record_at(batch, timestamp, self._log_start_offset)
                if found is not None:
                    return TimestampAndOffset(found[0], found[1], batch.partition_leader_epoch)
        return None

    def offset_of_max_timestamp(self) -> TimestampAndOffset | None:
        """KIP-734: the first record holding the largest timestamp in the log."""
        best: LogSegment | None = None
        for segment in self._segments:
            if segment.max_timestamp >= 0 and (
                best is None or segment.max_timestamp > best.max_timestamp
            ):
                best = segment
        if best is None:
            return None
        info = best.batch_at_offset(best.offset_of_max_timestamp)
        assert info is not None, f"{best.log_path}: no batch at {best.offset_of_max_timestamp}"
        batch = best.read_batch(info)
        offset = batch.last_offset
        for record in iter_records(batch):
            if record_timestamp(batch, record) == batch.max_timestamp:
                offset = record_offset(batch, record)
                break
        return TimestampAndOffset(batch.max_timestamp, offset, batch.partition_leader_epoch)

    # --- offsets moving -----------------------------------------------------------------------
    def set_high_watermark(self, offset: int) -> None:
        # Kafka's UnifiedLog.updateHighWatermark clamps into [log_start_offset, log_end_offset].
        self._high_watermark = min(max(offset, self._log_start_offset), self.log_end_offset)
        self.producer_state.on_high_watermark_updated(self._high_watermark)

    def truncate_to(self, offset: int) -> None:
        """Kafka's UnifiedLog.truncateTo: the batch holding `offset` goes whole, and
        log_end_offset becomes `offset` (an empty segment starting there keeps it so)."""
        assert offset >= 0, f"truncate_to({offset})"
        self._check_open()
        self.settle()
        if offset >= self.log_end_offset:
            return
        self._truncations += 1
        try:
            if offset < self._bases[0]:
                self._delete_tail(0)
                self._segments.append(self._create_segment(offset))
                self._bases.append(offset)
                self._log_start_offset = offset
            else:
                i = bisect_right(self._bases, offset) - 1
                self._delete_tail(i + 1)
                active = self._segments[i]
                active.truncate_to_offset(offset, self._config)
                if active.next_offset < offset:
                    if active.size == 0:
                        self._replace_empty_active(offset)
                    else:
                        self._roll_to(offset)
                self._log_start_offset = min(self._log_start_offset, offset)
        except OSError as err:
            raise KafkaStorageError(f"truncation of {self.directory} failed: {err}") from err
        self._truncate_state(offset)

    def _truncate_state(self, offset: int) -> None:
        """What follows the segments of a truncation to `offset` (the new log end)."""
        try:
            index = self._txn_indexes.get(self._bases[-1])
            if index is not None:
                index.truncate_to(offset)
            self._epoch_cache.truncate_from_end(offset)
        except OSError as err:
            raise KafkaStorageError(f"truncation of {self.directory} failed: {err}") from err
        self._dir_dirty = True
        self._high_watermark = min(self._high_watermark, offset)
        self._recovery_point = min(self._recovery_point, offset)
        self._pending_snapshots = [s for s in self._pending_snapshots if s.offset <= offset]
        # Kafka's truncateAndReload: the newest snapshot at or below the new end, then replay.
        state = self.producer_state
        map_end_offset = state.truncate_and_reload(self._log_start_offset, offset, self._now_ms)
        self._state_log_start_offset = self._log_start_offset
        self._replay(map_end_offset, map_end_offset)

    def _delete_tail(self, keep: int) -> None:
        """Delete segments [keep:], newest first, so a crash leaves a prefix of the log."""
        while len(self._segments) > keep:
            self._delete_segment(self._segments.pop())
            self._bases.pop()

    def _delete_segment(self, segment: LogSegment) -> None:
        index = self._txn_indexes.pop(segment.base_offset, None)
        if index is not None:
            index.delete()
        self._dirty_txn_indexes.discard(segment.base_offset)
        segment.delete()

    def delete_records_before(self, offset: int) -> int:
        # Kafka's maybeIncrementLogStartOffset refuses to go past the high watermark.
        if offset > self._high_watermark:
            raise OffsetOutOfRange(
                f"cannot move log_start_offset to {offset}, above the high watermark "
                f"{self._high_watermark}"
            )
        self._log_start_offset = max(self._log_start_offset, offset)
        self._delete_segments(lambda _segment, next_base: next_base <= self._log_start_offset)
        return self._log_start_offset

    def roll(self, now_ms: int) -> None:
        self._check_open()
        if self._segments[-1].size > 0:
            self._queue_snapshot(self.log_end_offset)
            self._roll_to(self.log_end_offset)

    def apply_retention(self, now_ms: int) -> int:
        """Kafka's deleteOldSegments: retention.ms, then retention.bytes, then segments wholly
        below log_start_offset; only segments wholly below the high watermark, never the
        active segment."""
        deleted = 0
        config = self._config
        if config.delete:
            if config.retention_ms >= 0:
                deleted += self._delete_segments(
                    lambda segment, _next: now_ms - _largest_timestamp(segment)
                    > config.retention_ms
                )
            if config.retention_bytes >= 0 and self.size_bytes >= config.retention_bytes:
                excess = self.size_bytes - config.retention_bytes

                def over_size(segment: LogSegment, _next: int) -> bool:
                    nonlocal excess
                    if excess - segment.size < 0:
                        return False
                    excess -= segment.size
                    return True

                deleted += self._delete_segments(over_size)
        deleted += self._delete_segments(
            lambda _segment, next_base: next_base <= self._log_start_offset
        )
        return deleted

    def _delete_segments(self, predicate: Callable[[LogSegment, int], bool]) -> int:
        """Delete the oldest segments while `predicate(segment, next base_offset)` holds,
        stopping at the active segment and at the high watermark."""
        count = 0
        while len(self._segments) > 1:
            segment, next_base = self._segments[0], self._bases[1]
            if next_base > self._high_watermark or not predicate(segment, next_base):
                break
            self._segments.pop(0)
            self._bases.pop(0)
            self._delete_segment(segment)
            self._dir_dirty = True
            count += 1
        self._log_start_offset = max(self._log_start_offset, self._bases[0])
        if self._log_start_offset != self._state_log_start_offset:
            self._log_start_offset_moved()
        return count

    def _log_start_offset_moved(self) -> None:
        """Kafka's maybeIncrementLogStartOffset / deleteSegments bookkeeping: epochs and
        producer state forget what is below the new log_start_offset."""
        self._state_log_start_offset = start = self._log_start_offset
        try:
            _epochs_start_at(self._epoch_cache, start)
        except OSError as err:
            raise KafkaStorageError(
                f"cannot write the leader-epoch checkpoint of {self.directory}: {err}"
            ) from err
        state = self.producer_state
        state.on_log_start_offset_incremented(start)
        state.delete_snapshots_before(self._bases[0])

    # --- producer state, leader epochs, transactions --------------------------------------------
    @property
    def leader_epoch_cache(self) -> LeaderEpochCache:
        return self._epoch_cache

    @property
    def last_stable_offset(self) -> int:
        """The first offset of an undecided transaction (or of a decided one whose marker is
        not below the high watermark yet), capped by the high watermark."""
        first_unstable = self.producer_state.first_unstable_offset()
        if first_unstable is None:
            return self._high_watermark
        return min(first_unstable, self._high_watermark)

    def remove_expired_producers(self, now_ms: int) -> int:
        """Forget producers idle for producer.id.expiration.ms; returns how many."""
        return self.producer_state.remove_expired_producers(now_ms)

    # --- durability ---------------------------------------------------------------------------
    def begin_flush(self) -> FlushJob:
        """Loop side of a flush: write pending index entries, pick the fds to fsync."""
        self._check_open()
        job = FlushJob([], self.log_end_offset, self._unflushed_messages)
        job.truncations = self._truncations
        pending = self.pending_write()
        if pending is not None:
            assert self._writer is not None
            job.after = (self._writer, pending)
        try:
            active = self._segments[-1]
            for segment in self._segments:
                if segment.is_dirty():
                    job.sizes.append((segment, segment.size))
                    job.fds += segment.begin_flush(active=segment is active)
            for base in self._dirty_txn_indexes:
                job.fds.append(os.open(_txn_index_path(self.directory, base), os.O_RDONLY))
            self._dirty_txn_indexes.clear()
            if self._dir_dirty:
                job.fds.append(os.open(self.directory, os.O_RDONLY))
                self._dir_dirty = False
        except (OSError, KafkaStorageError) as err:
            for fd in job.fds:
                os.close(fd)
            if isinstance(err, KafkaStorageError):
                raise
            raise KafkaStorageError(f"flush of {self.directory} failed: {err}") from err
        self._unflushed_messages = 0
        job.directory = self.directory
        job.snapshots, self._pending_snapshots = self._pending_snapshots, []
        return job

    def finish_flush(self, job: FlushJob) -> None:
        """Loop side, after `job.run()`: advance the recovery point (unless truncated since)."""
        # A truncation since begin_flush may have replaced the batches a snapshot describes.
        truncated = job.truncations != self._truncations
        if job.error is not None:
            self._dir_dirty = True
            self._unflushed_messages += job.messages
            if not truncated:  # the next flush writes them
                self._pending_snapshots[:0] = job.snapshots
            raise KafkaStorageError(f"fsync in {self.directory} failed: {job.error}")
        for snapshot in job.snapshots:
            if truncated:
                _unlink_if_exists(str(snapshot_path(Path(self.directory), snapshot.offset)))
            else:
                self.producer_state.snapshot_written(snapshot.offset)
        for segment, size in job.sizes:
            segment.flushed_size = max(segment.flushed_size, size)
        if job.truncations == self._truncations:
            self._recovery_point = max(
                self._recovery_point, min(job.target_offset, self.log_end_offset)
            )

    def flush(self) -> None:
        job = self.begin_flush()
        job.run()
        self.finish_flush(job)

    def close(self) -> None:
        """Flush and release the files; the log is unusable afterwards."""
        if self._closed:
            return
        try:
            self.settle()
            self._segments[-1].finalize()
            self._queue_snapshot(self.log_end_offset)  # the next open replays nothing
            self.flush()
        finally:
            self._closed = True
            self._release_files()

    def _release_files(self) -> None:
        for segment in self._segments:
            segment.close()
        for index in self._txn_indexes.values():
            index.close()

    # --- compaction (josef.storage.disk.cleaner) ----------------------------------------------
    @property
    def segments(self) -> list[LogSegment]:
        """The segments, oldest first, the last one active (a copy of the list)."""
        return list(self._segments)

    @property
    def truncations(self) -> int:
        """Truncations so far: a cleaning round begun before one must not be swapped in."""
        return self._truncations

    def holds_segments(self, segments: list[LogSegment]) -> bool:
        """Whether `segments` are still consecutive non-active segments of this open log."""
        if self._closed or not segments or segments[0] not in self._segments:
            return False
        i = self._segments.index(segments[0])
        end = i + len(segments)
        return end < len(self._segments) and all(
            a is b for a, b in zip(self._segments[i:end], segments, strict=True)
        )

    def replace_segments(self, old: list[LogSegment], new: LogSegment, swap_path: str) -> None:
        """Put the cleaned segment `new` (complete and fsynced at `swap_path`) in place of
        `old`: the old files are deleted newest first, then `swap_path` is renamed to the
        final name; `recover_swap_files` completes a crash in between."""
        assert self.holds_segments(old), "the cleaner checks the segments first"
        i = self._segments.index(old[0])
        final = os.path.join(self.directory, segment_name(new.base_offset) + ".log")
        # Cleaning keeps every transaction marker, so the aborted transactions of the old
        # segments all belong to the new one.
        aborted = [
            txn for segment in old if segment.base_offset in self._txn_indexes
            for txn in self._txn_indexes[segment.base_offset].all_aborted()
        ]
        try:
            for segment in reversed(old):
                self._delete_segment(segment)
            os.replace(swap_path, final)
            for txn in aborted:
                self._txn_index(new.base_offset).append(txn)
            if aborted:
                self._dirty_txn_indexes.add(new.base_offset)
        except OSError as err:
            self._closed = True  # the segment list no longer matches the files
            raise KafkaStorageError(f"compaction swap in {self.directory} failed: {err}") from err
        new.log_path = final
        self._segments[i : i + len(old)] = [new]
        self._bases[i : i + len(old)] = [new.base_offset]
        self._dir_dirty = True

    def close_without_flush(self) -> None:
        """Release the files only (the partition is being deleted)."""
        self._closed = True
        self._release_files()


def _largest_timestamp(segment: LogSegment) -> int:
    """Kafka's LogSegment.largestTimestamp: max record timestamp, else last-modified time."""
    return segment.max_timestamp if segment.max_timestamp >= 0 else segment.last_append_ms


def _txn_index_path(directory: str, base_offset: int) -> str:
    return os.path.join(directory, segment_name(base_offset) + TXN_INDEX_SUFFIX)


def _unlink_if_exists(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _epochs_start_at(cache: LeaderEpochCache, log_start_offset: int) -> None:
    """truncate_from_start, skipped when it would change nothing (it rewrites the file)."""
    earliest = cache.earliest_entry
    if earliest is not None and earliest.start_offset < log_start_offset:
        cache.truncate_from_start(log_start_offset)


def _segment_bases(directory: str) -> list[int]:
    """Base offsets of the `.log` files; stray index and temporary files are removed."""
    names = os.listdir(directory)
    bases = sorted(
        int(n[:-4]) for n in names if n.endswith(".log") and len(n) == 24 and n[:20].isdigit()
    )
    present = set(bases)
    for name in names:
        stem, _, suffix = name.partition(".")
        orphan_index = suffix in ("index", "timeindex", "txnindex") and (
            not stem.isdigit() or int(stem) not in present
        )
        if orphan_index or name.endswith((".tmp", ".deleted")):
            os.unlink(os.path.join(directory, name))
    return bases


def _delete_files(directory: str, bases: list[int]) -> None:
    """Delete whole segments (newest first) that recovery cut off."""
    for base in reversed(bases):
        stem = os.path.join(directory, f"{base:020d}")
        for suffix in (TXN_INDEX_SUFFIX, ".timeindex", ".index", ".log"):
            _unlink_if_exists(stem + suffix)

