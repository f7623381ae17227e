"""Per-partition producer state: idempotent deduplication, sequence and epoch checks,
transactions and the last stable offset, with Kafka's ProducerStateManager semantics
(KIP-98 idempotence/transactions, KIP-360 producer-state retention).

Contract for a partition log (single writer, the event loop; no locks):

    update = state.prepare_update(AppendOrigin.CLIENT)    # never changes `state`
    for header in headers:                                # offsets already assigned
        check = update.append(header, marker)             # marker: parse_marker(header)
        if check.outcome is AppendOutcome.DUPLICATE:      # answer with check.first_offset /
            ...                                           # check.last_offset, write nothing
        if check.outcome is AppendOutcome.ERROR:          # answer with check.error_code,
            ...                                           # write nothing
    <write the bytes; on failure drop `update` and the state is as before>
    completed = state.commit_update(update, log_end_offset)
    for txn in completed:                                 # txn.last_stable_offset is set
        if txn.is_aborted: segment.txn_index.append(...)

The common idempotent append, a single batch right after its producer's last one, has a
shortcut with the same effect and no update object:

    batch = state.next_batch(header, base_offset)         # None: use prepare_update
    <write the bytes>
    state.commit_next_batch(header.producer_id, batch, log_end_offset)

As in Kafka, only CLIENT appends look for duplicates and check sequences; COORDINATOR
appends (transaction markers) check epochs; REPLICATION appends and recovery
(`update_from_batch`) are trusted. Duplicates are searched among the last 5 batches of a
producer (5 = the maximum max.in.flight.requests.per.connection with idempotence).
An unknown producer id is accepted at any sequence (Kafka 2.5+, KIP-360: state may have
been removed by retention or expiration), never answered with UNKNOWN_PRODUCER_ID.

Recovery: `truncate_and_reload(log_start_offset, log_end_offset, now_ms)` loads the newest
valid snapshot `<20-digit offset>.snapshot` at or below log_end_offset (a corrupt one is
deleted and the next older one tried) and returns `map_end_offset`; the log then replays
the batch headers in [map_end_offset, log_end_offset) with `update_from_batch`.
Snapshots use Kafka's ProducerSnapshot v1 layout (version int16, crc uint32 = CRC-32C of
everything after it, int32 count, 46-byte entries), written atomically. `snapshot()` is
cheap and runs on the loop; `write_snapshot()` does the file I/O and fsync and may run on
a worker thread.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from crc32c import crc32c

from josef.protocol.errors import ErrorCode
from josef.records.batch import BatchHeader
from josef.records.control import ControlRecordType, EndTransactionMarker
from josef.storage.files import write_atomically

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_TIMESTAMP = -1
NO_COORDINATOR_EPOCH = -1
INT32_MAX = 2**31 - 1

# Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: a producer with idempotence has at most
# 5 requests in flight per partition, so a retry duplicates one of its last 5 batches.
NUM_BATCHES_TO_RETAIN = 5
# producer.id.expiration.ms, Kafka's default: 1 day.
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000
# Kafka has no per-partition bound (KIP-936 discusses the memory it costs). Ours: a table
# of 20,000 entries stays around 20 MB in memory and 1 MB as a snapshot; a full table
# evicts its least recently appending producer outside a transaction, which only costs that
# producer its duplicate detection (it is then unknown, and accepted at any sequence).
DEFAULT_MAX_PRODUCERS = 20_000

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
_SNAPSHOT_HEADER = struct.Struct(">hIi")  # version, crc, entry count
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
_CRC_OFFSET = 2
_ENTRIES_OFFSET = 6  # the CRC covers the entry count and the entries
assert _SNAPSHOT_ENTRY.size == 46


class AppendOrigin(enum.Enum):
    CLIENT = "client"  # Produce: duplicate, sequence and epoch checks
    COORDINATOR = "coordinator"  # WriteTxnMarkers / internal writers: epoch checks only
    REPLICATION = "replication"  # follower appends and recovery: no checks


class AppendOutcome(enum.Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AppendCheck:
    outcome: AppendOutcome
    error_code: ErrorCode = ErrorCode.NONE
    message: str = ""
    first_offset: int = -1  # DUPLICATE: offsets of the original append
    last_offset: int = -1


APPEND = AppendCheck(AppendOutcome.APPEND)


@dataclass(frozen=True, slots=True)
class CompletedTxn:
    """A transaction closed by a marker at `last_offset`; an aborted one goes to the
    .txnindex of the segment holding the marker, with `last_stable_offset`."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool
    last_stable_offset: int = -1


def decrement_sequence(sequence: int, decrement: int) -> int:
    """sequence - decrement, wrapping below 0 to INT32_MAX as Kafka's sequences do."""
    if sequence < decrement:
        return INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class BatchMetadata(NamedTuple):
    """A retained batch of a producer (a tuple: built on every idempotent append, and a
    frozen dataclass's __init__ costs several times more)."""

    last_seq: int
    last_offset: int
    offset_delta: int  # last_offset - first_offset, which is also last_seq - first_seq
    timestamp: int

    @property
    def first_seq(self) -> int:
        return decrement_sequence(self.last_seq, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


def _batch_deque() -> deque[BatchMetadata]:
    return deque(maxlen=NUM_BATCHES_TO_RETAIN)


@dataclass(slots=True)
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    coordinator_epoch: int = NO_COORDINATOR_EPOCH
    last_timestamp: int = NO_TIMESTAMP
    current_txn_first_offset: int = -1  # -1: no ongoing transaction
    batches: deque[BatchMetadata] = field(default_factory=_batch_deque)

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    @property
    def last_data_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    @property
    def last_offset_delta(self) -> int:
        return self.batches[-1].offset_delta if self.batches else 0

    def maybe_update_producer_epoch(self, producer_epoch: int) -> None:
        # The retained batches belong to the old epoch; a new epoch restarts at sequence 0.
        if self.producer_epoch != producer_epoch:
            self.batches.clear()
            self.producer_epoch = producer_epoch

    def add_batch(
        self, producer_epoch: int, last_seq: int, last_offset: int, offset_delta: int,
        timestamp: int,
    ) -> None:
        self.maybe_update_producer_epoch(producer_epoch)
        self.batches.append(BatchMetadata(last_seq, last_offset, offset_delta, timestamp))
        self.last_timestamp = timestamp

    def next_batch(self, header: BatchHeader, base_offset: int) -> BatchMetadata | None:
        """The metadata of `header`, written at `base_offset`, if it is the common idempotent
        append: a data batch of the current epoch whose first sequence follows the last one,
        inside a transaction exactly when one is ongoing. Such a batch passes every check and
        cannot be a duplicate (the retained batches start at or before last_seq), so it needs
        no search and no ProducerAppendInfo. None: take the general path."""
        batches = self.batches
        if (
            not batches
            or header.producer_epoch != self.producer_epoch
            or header.is_control
            or header.is_transactional != (self.current_txn_first_offset >= 0)
        ):
            return None
        last_seq, first_seq = batches[-1].last_seq, header.base_sequence
        if first_seq != last_seq + 1 and not (first_seq == 0 and last_seq == INT32_MAX):
            return None
        delta = header.last_offset_delta
        return BatchMetadata(header.last_sequence, base_offset + delta, delta, header.max_timestamp)

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.producer_epoch:
            return None
        first_seq, last_seq = header.base_sequence, header.last_sequence
        for batch in self.batches:
            if batch.last_seq == last_seq and batch.first_seq == first_seq:
                return batch
        return None

    def pending_copy(self) -> ProducerStateEntry:
        """The start of an update: everything but the retained batches."""
        return ProducerStateEntry(
            self.producer_id, self.producer_epoch, self.coordinator_epoch,
            self.last_timestamp, self.current_txn_first_offset,
        )

    def merge(self, update: ProducerStateEntry) -> None:
        self.maybe_update_producer_epoch(update.producer_epoch)
        self.last_timestamp = update.last_timestamp
        self.coordinator_epoch = update.coordinator_epoch
        self.current_txn_first_offset = update.current_txn_first_offset
        self.batches.extend(update.batches)


class ProducerAppendInfo:
    """The pending changes of one append for one producer id (Kafka's ProducerAppendInfo)."""

    __slots__ = ("current", "origin", "producer_id", "started_txn_first_offsets", "updated")

    def __init__(
        self, producer_id: int, current: ProducerStateEntry | None, origin: AppendOrigin
    ) -> None:
        self.producer_id = producer_id
        self.current = current if current is not None else ProducerStateEntry(producer_id)
        self.origin = origin
        self.updated = self.current.pending_copy()
        self.started_txn_first_offsets: list[int] = []

    def _check_epoch(self, producer_epoch: int) -> AppendCheck | None:
        # Kafka 2.7+ answers an old epoch with INVALID_PRODUCER_EPOCH (not PRODUCER_FENCED),
        # which lets the client abort its transaction and continue.
        if producer_epoch < self.updated.producer_epoch:
            return AppendCheck(
                AppendOutcome.ERROR, ErrorCode.INVALID_PRODUCER_EPOCH,
                f"epoch {producer_epoch} of producer {self.producer_id} is older than the "
                f"current epoch {self.updated.producer_epoch}",
            )
        return None

    def _check_sequence(
        self, producer_epoch: int, first_seq: int, offset: int
    ) -> AppendCheck | None:
        updated = self.updated
        if producer_epoch != updated.producer_epoch:
            # A new epoch starts at sequence 0; an unknown producer may start anywhere.
            if first_seq != 0 and updated.producer_epoch != NO_PRODUCER_EPOCH:
                return AppendCheck(
                    AppendOutcome.ERROR, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"new epoch {producer_epoch} of producer {self.producer_id} must start at "
                    f"sequence 0, not {first_seq} (offset {offset})",
                )
            return None
        if updated.batches:
            last_seq = updated.last_seq
        elif producer_epoch == self.current.producer_epoch:
            last_seq = self.current.last_seq
        else:
            last_seq = NO_SEQUENCE
        # No known epoch (state removed by retention or DeleteRecords): accept any sequence.
        if self.current.producer_epoch == NO_PRODUCER_EPOCH or in_sequence(last_seq, first_seq):
            return None
        return AppendCheck(
            AppendOutcome.ERROR, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
            f"out of order sequence {first_seq} of producer {self.producer_id} at offset "
            f"{offset}: expected {0 if last_seq == INT32_MAX else last_seq + 1}",
        )

    def append_data(self, header: BatchHeader) -> AppendCheck:
        epoch, first_offset = header.producer_epoch, header.base_offset
        if self.origin is not AppendOrigin.REPLICATION:
            error = self._check_epoch(epoch)
            if error is None and self.origin is AppendOrigin.CLIENT:
                error = self._check_sequence(epoch, header.base_sequence, first_offset)
            if error is not None:
                return error
            in_txn = self.updated.current_txn_first_offset >= 0
            if in_txn and not header.is_transactional:
                return AppendCheck(
                    AppendOutcome.ERROR, ErrorCode.INVALID_TXN_STATE,
                    f"non-transactional batch from producer {self.producer_id} at offset "
                    f"{first_offset} while its transaction is ongoing",
                )
        last_offset = header.last_offset
        self.updated.add_batch(
            epoch, header.last_sequence, last_offset, last_offset - first_offset,
            header.max_timestamp,
        )
        if header.is_transactional and self.updated.current_txn_first_offset < 0:
            self.updated.current_txn_first_offset = first_offset
            self.started_txn_first_offsets.append(first_offset)
        return APPEND

    def append_marker(
        self, header: BatchHeader, marker: EndTransactionMarker
    ) -> tuple[AppendCheck, CompletedTxn | None]:
        if self.origin is not AppendOrigin.REPLICATION:
            error = self._check_epoch(header.producer_epoch)
            if error is None and self.updated.coordinator_epoch > marker.coordinator_epoch:
                error = AppendCheck(
                    AppendOutcome.ERROR, ErrorCode.TRANSACTION_COORDINATOR_FENCED,
                    f"marker for producer {self.producer_id} from coordinator epoch "
                    f"{marker.coordinator_epoch}, older than {self.updated.coordinator_epoch}",
                )
            if error is not None:
                return error, None
        updated = self.updated
        # Only a transaction with data completes; a marker for an empty one changes epochs only.
        completed = None
        if updated.current_txn_first_offset >= 0:
            completed = CompletedTxn(
                self.producer_id, updated.current_txn_first_offset, header.base_offset,
                marker.control_type == ControlRecordType.ABORT,
            )
        updated.maybe_update_producer_epoch(header.producer_epoch)
        updated.current_txn_first_offset = -1
        updated.coordinator_epoch = marker.coordinator_epoch
        updated.last_timestamp = header.max_timestamp
        return APPEND, completed


class ProducerStateUpdate:
    """All producer-state changes of one append; applied by `commit_update` only."""

    __slots__ = ("_manager", "completed", "failed", "infos", "next_batches", "origin")

    def __init__(self, manager: ProducerStateManager, origin: AppendOrigin) -> None:
        self._manager = manager
        self.origin = origin
        # The fast path (`ProducerStateEntry.next_batch`): one batch per producer id, to be
        # appended to its entry. A second batch of that producer moves it to `infos`.
        self.next_batches: dict[int, BatchMetadata] = {}
        self.infos: dict[int, ProducerAppendInfo] = {}
        self.completed: list[CompletedTxn] = []
        self.failed = False

    def append(
        self, header: BatchHeader, marker: EndTransactionMarker | None = None
    ) -> AppendCheck:
        """Validate one batch (offsets already assigned) and stage its effect.

        `marker` is required for a control batch with records; an empty control batch
        (its marker removed by compaction) changes nothing, as in Kafka. After an ERROR or
        DUPLICATE the update must be dropped, not committed.
        """
        pid = header.producer_id
        if pid == NO_PRODUCER_ID:
            return APPEND
        manager = self._manager
        current = manager.producers.get(pid)
        if current is not None and pid not in self.infos and pid not in self.next_batches:
            batch = current.next_batch(header, header.base_offset)
            if batch is not None:
                self.next_batches[pid] = batch
                return APPEND
        if self.origin is AppendOrigin.CLIENT and current is not None:
            duplicate = current.find_duplicate(header)
            if duplicate is not None:
                self.failed = True
                return AppendCheck(
                    AppendOutcome.DUPLICATE, first_offset=duplicate.first_offset,
                    last_offset=duplicate.last_offset,
                )
        info = self.infos.get(pid)
        if info is None:
            if current is None and self.origin is not AppendOrigin.REPLICATION:
                new = sum(1 for p in self.infos if p not in manager.producers)
                full = manager.check_capacity(new)
                if full is not None:
                    self.failed = True
                    return full
            info = self.infos[pid] = ProducerAppendInfo(pid, current, self.origin)
            staged = self.next_batches.pop(pid, None)
            if staged is not None:
                info.updated.batches.append(staged)
                info.updated.last_timestamp = staged.timestamp
        if header.is_control:
            if header.record_count == 0:
                return APPEND
            assert marker is not None, "a control batch with records needs its decoded marker"
            check, completed = info.append_marker(header, marker)
            if completed is not None:
                self.completed.append(completed)
        else:
            check = info.append_data(header)
        if check.outcome is not AppendOutcome.APPEND:
            self.failed = True
        return check


@dataclass(frozen=True, slots=True)
class ProducerSnapshot:
    """Encoded producer state as of `offset` (everything before it is reflected)."""

    offset: int
    data: bytes


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def encode_snapshot(entries: list[ProducerStateEntry]) -> bytes:
    """Kafka's ProducerSnapshot v1; only the last batch of each producer is kept."""
    buf = bytearray(_SNAPSHOT_HEADER.size + _SNAPSHOT_ENTRY.size * len(entries))
    _SNAPSHOT_HEADER.pack_into(buf, 0, SNAPSHOT_VERSION, 0, len(entries))
    pos = _SNAPSHOT_HEADER.size
    for e in entries:
        _SNAPSHOT_ENTRY.pack_into(
            buf, pos, e.producer_id, e.producer_epoch, e.last_seq, e.last_data_offset,
            e.last_offset_delta, e.last_timestamp, e.coordinator_epoch,
            e.current_txn_first_offset,
        )
        pos += _SNAPSHOT_ENTRY.size
    struct.pack_into(">I", buf, _CRC_OFFSET, crc32c(memoryview(buf)[_ENTRIES_OFFSET:]))
    return bytes(buf)


class CorruptSnapshotError(Exception):
    """A snapshot file that fails its size, version or CRC check; it is deleted and an
    older snapshot or a replay of the log is used instead."""


def decode_snapshot(data: bytes) -> list[ProducerStateEntry]:
    if len(data) < _SNAPSHOT_HEADER.size:
        raise CorruptSnapshotError(f"snapshot of {len(data)} bytes is truncated")
    version, crc, count = _SNAPSHOT_HEADER.unpack_from(data, 0)
    if version != SNAPSHOT_VERSION:
        raise CorruptSnapshotError(f"snapshot version {version}, expected {SNAPSHOT_VERSION}")
    if crc != crc32c(memoryview(data)[_ENTRIES_OFFSET:]):
        raise CorruptSnapshotError("snapshot CRC mismatch")
    if count < 0 or len(data) != _SNAPSHOT_HEADER.size + count * _SNAPSHOT_ENTRY.size:
        raise CorruptSnapshotError(f"snapshot of {len(data)} bytes cannot hold {count} entries")
    entries = []
    for pid, epoch, last_seq, last_offset, delta, ts, coord_epoch, txn_first in (
        _SNAPSHOT_ENTRY.iter_unpack(memoryview(data)[_SNAPSHOT_HEADER.size :])
    ):
        entry = ProducerStateEntry(pid, epoch, coord_epoch, ts, max(txn_first, -1))
        if last_offset >= 0:
            entry.batches.append(BatchMetadata(last_seq, last_offset, delta, ts))
        entries.append(entry)
    return entries


def write_snapshot(directory: Path, snapshot: ProducerSnapshot) -> Path:
    """Atomically write `snapshot` (temp file, fsync, rename, fsync directory). Blocking:
    may run on a worker thread, since it touches no live state."""
    path = snapshot_path(directory, snapshot.offset)
    write_atomically(path, snapshot.data)
    return path


class ProducerStateManager:
    """The producer table of one partition log, its transactions and its snapshot files."""

    def __init__(
        self,
        directory: Path | None,
        *,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        max_producers: int = DEFAULT_MAX_PRODUCERS,
    ) -> None:
        # None: kept in memory only (the memory engine), no snapshot files.
        self.directory = Path(directory) if directory is not None else None
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self.max_producers = max_producers
        # Least recently appending first (order drives eviction of a full table).
        self.producers: dict[int, ProducerStateEntry] = {}
        # first_offset -> producer_id, ascending (transactions start at increasing offsets).
        self._ongoing: dict[int, int] = {}
        # Completed but the marker not yet below the high watermark: first_offset -> last_offset.
        self._unreplicated: dict[int, int] = {}
        self.map_end_offset = 0  # the next offset whose batch has not been applied
        self._snapshots: list[int] = []
        if self.directory is None:
            return
        for stale in self.directory.glob("*" + SNAPSHOT_SUFFIX + ".tmp"):
            stale.unlink()  # a snapshot write interrupted by a crash
        self._snapshots = sorted(
            int(p.name[: -len(SNAPSHOT_SUFFIX)])
            for p in self.directory.glob("*" + SNAPSHOT_SUFFIX)
            if p.name[: -len(SNAPSHOT_SUFFIX)].isdigit()
        )

    # --- appends -------------------------------------------------------------------------------
    def prepare_update(self, origin: AppendOrigin) -> ProducerStateUpdate:
        return ProducerStateUpdate(self, origin)

    def check_capacity(self, pending_new: int) -> AppendCheck | None:
        """None when one more producer fits (possibly after evicting an idle one)."""
        if len(self.producers) + pending_new < self.max_producers:
            return None
        evictable = sum(1 for e in self.producers.values() if e.current_txn_first_offset < 0)
        if evictable > pending_new:
            return None
        # Retriable for clients; every producer of this partition is inside a transaction.
        return AppendCheck(
            AppendOutcome.ERROR, ErrorCode.CONCURRENT_TRANSACTIONS,
            f"partition has {len(self.producers)} producers with ongoing transactions "
            f"(max {self.max_producers})",
        )

    def commit_update(self, update: ProducerStateUpdate, log_end_offset: int) -> list[CompletedTxn]:
        """Apply a validated update after its bytes were written; `log_end_offset` is the
        offset after the append. Returns the completed transactions with their
        last_stable_offset, in marker order."""
        assert not update.failed, "an update that returned ERROR or DUPLICATE was committed"
        assert update._manager is self
        producers = self.producers
        # Before `infos`: a new producer there may evict an idle one, never one appended to.
        for pid, batch in update.next_batches.items():
            self._append_next(pid, batch)
        for pid, info in update.infos.items():
            current = producers.pop(pid, None)
            if current is None:
                current = info.updated
                if len(producers) >= self.max_producers:
                    self._evict_one()
            else:
                current.merge(info.updated)
            producers[pid] = current  # most recently appending last
            for first_offset in info.started_txn_first_offsets:
                self._ongoing[first_offset] = pid
        completed = []
        for txn in update.completed:
            done = CompletedTxn(
                txn.producer_id, txn.first_offset, txn.last_offset, txn.is_aborted,
                self._last_stable_offset(txn),
            )
            self._ongoing.pop(txn.first_offset, None)
            self._unreplicated[txn.first_offset] = txn.last_offset
            completed.append(done)
        self.map_end_offset = log_end_offset
        return completed

    def next_batch(self, header: BatchHeader, base_offset: int) -> BatchMetadata | None:
        """The shortcut for an append of a single batch with a producer id, written at
        `base_offset` (the header may not hold it yet): its metadata when it directly follows
        its producer's last batch (`ProducerStateEntry.next_batch`), to pass to
        `commit_next_batch` after the write; None: use `prepare_update`. Never changes the
        state; the result is that of an update with this one batch, any origin."""
        entry = self.producers.get(header.producer_id)
        return None if entry is None else entry.next_batch(header, base_offset)

    def commit_next_batch(
        self, producer_id: int, batch: BatchMetadata, log_end_offset: int
    ) -> None:
        """Apply a `next_batch` result once its bytes are written, nothing else having
        changed the state in between (single writer)."""
        self._append_next(producer_id, batch)
        self.map_end_offset = log_end_offset

    def _append_next(self, producer_id: int, batch: BatchMetadata) -> None:
        entry = self.producers.pop(producer_id)
        entry.batches.append(batch)
        entry.last_timestamp = batch.timestamp
        self.producers[producer_id] = entry  # most recently appending last

    def update_from_batch(
        self, header: BatchHeader, marker: EndTransactionMarker | None = None
    ) -> list[CompletedTxn]:
        """Recovery replay of one batch, trusted as written (no checks)."""
        batch = self.next_batch(header, header.base_offset)
        if batch is not None:
            self.commit_next_batch(header.producer_id, batch, header.last_offset + 1)
            return []
        update = ProducerStateUpdate(self, AppendOrigin.REPLICATION)
        update.append(header, marker)
        return self.commit_update(update, header.last_offset + 1)

    def _evict_one(self) -> None:
        for pid, entry in self.producers.items():
            if entry.current_txn_first_offset < 0:
                del self.producers[pid]
                return
        # Only reachable by trusted appends (replication/recovery) mirroring a leader.

    def _last_stable_offset(self, txn: CompletedTxn) -> int:
        # Kafka's lastStableOffset(completedTxn): the first transaction still open by another
        # producer bounds what a read_committed consumer can see past this marker.
        for first_offset, pid in self._ongoing.items():
            if pid != txn.producer_id:
                return first_offset
        return txn.last_offset + 1

    # --- queries -------------------------------------------------------------------------------
    def last_entry(self, producer_id: int) -> ProducerStateEntry | None:
        return self.producers.get(producer_id)

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest transaction that is undecided, or decided with its
        marker not yet below the high watermark. The log's last_stable_offset is
        min(this, high_watermark), or the high watermark when None."""
        candidates = [next(iter(d)) for d in (self._ongoing, self._unreplicated) if d]
        return min(candidates) if candidates else None

    def ongoing_transactions(self) -> list[tuple[int, int]]:
        """(producer_id, first_offset) of every undecided transaction, oldest first."""
        return [(pid, first) for first, pid in self._ongoing.items()]

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        self._remove_unreplicated(high_watermark)

    def _remove_unreplicated(self, offset: int) -> None:
        for first_offset, last_offset in list(self._unreplicated.items()):
            if last_offset < offset:
                del self._unreplicated[first_offset]

    # --- expiration ----------------------------------------------------------------------------
    def is_expired(self, entry: ProducerStateEntry, now_ms: int) -> bool:
        # As Kafka: by the batch max timestamp; a producer inside a transaction never expires.
        return (
            entry.current_txn_first_offset < 0
            and now_ms - entry.last_timestamp >= self.producer_id_expiration_ms
        )

    def remove_expired_producers(self, now_ms: int) -> int:
        """Drop producers idle for producer.id.expiration.ms; returns how many."""
        expired = [pid for pid, e in self.producers.items() if self.is_expired(e, now_ms)]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    # --- snapshots -----------------------------------------------------------------------------
    def snapshot_offsets(self) -> list[int]:
        """The offsets of the snapshot files in the directory, ascending."""
        return list(self._snapshots)

    @property
    def latest_snapshot_offset(self) -> int | None:
        return self._snapshots[-1] if self._snapshots else None

    @property
    def oldest_snapshot_offset(self) -> int | None:
        return self._snapshots[0] if self._snapshots else None

    def snapshot(self) -> ProducerSnapshot:
        """The state as of map_end_offset, encoded (no I/O)."""
        return ProducerSnapshot(self.map_end_offset, encode_snapshot(list(self.producers.values())))

    def take_snapshot(self) -> Path | None:
        """Encode and write a snapshot at map_end_offset unless one exists (Kafka does this on
        segment roll and clean shutdown). Blocks on fsync; see `write_snapshot`."""
        assert self.directory is not None, "an in-memory producer state has no snapshot files"
        if self.map_end_offset in self._snapshots:
            return None
        path = write_snapshot(self.directory, self.snapshot())
        self.snapshot_written(self.map_end_offset)
        return path

    def snapshot_written(self, offset: int) -> None:
        """Record a snapshot written by `write_snapshot` elsewhere (e.g. a worker thread)."""
        if offset not in self._snapshots:
            self._snapshots.append(offset)
            self._snapshots.sort()

    def delete_snapshots_before(self, offset: int) -> None:
        for snap in [s for s in self._snapshots if s < offset]:
            self._delete_snapshot(snap)

    def _delete_snapshot(self, offset: int) -> None:
        self._snapshots.remove(offset)
        if self.directory is not None:
            snapshot_path(self.directory, offset).unlink(missing_ok=True)

    def truncate_and_reload(self, log_start_offset: int, log_end_offset: int, now_ms: int) -> int:
        """Kafka's truncateAndReload: drop snapshots outside [log_start_offset, log_end_offset],
        and unless the state is already at log_end_offset, reload from the newest valid
        snapshot. Returns map_end_offset: replay batches from there to log_end_offset."""
        for snap in [s for s in self._snapshots if s > log_end_offset or s < log_start_offset]:
            self._delete_snapshot(snap)
        if log_end_offset != self.map_end_offset:
            self.producers.clear()
            self._ongoing.clear()
            # Truncation is never below the high watermark, so these markers are replicated.
            self._unreplicated.clear()
            self._load_latest_snapshot(log_start_offset, now_ms)
        else:
            self.on_log_start_offset_incremented(log_start_offset)
        return self.map_end_offset

    def on_log_start_offset_incremented(self, log_start_offset: int) -> None:
        self._remove_unreplicated(log_start_offset)
        self.map_end_offset = max(self.map_end_offset, log_start_offset)

    def _load_latest_snapshot(self, log_start_offset: int, now_ms: int) -> None:
        while self._snapshots:
            offset = self._snapshots[-1]
            assert self.directory is not None  # only files are listed in _snapshots
            try:
                entries = decode_snapshot(snapshot_path(self.directory, offset).read_bytes())
            except (CorruptSnapshotError, FileNotFoundError):
                self._delete_snapshot(offset)
                continue
            live = [e for e in entries if not self.is_expired(e, now_ms)]
            live.sort(key=lambda e: e.last_data_offset)
            for entry in live:
                self.producers[entry.producer_id] = entry
            for entry in sorted(live, key=lambda e: e.current_txn_first_offset):
                if entry.current_txn_first_offset >= 0:
                    self._ongoing[entry.current_txn_first_offset] = entry.producer_id
            self.map_end_offset = offset
            return
        self.map_end_offset = log_start_offset
