"""Engine-independent log compaction: what Kafka's LogCleaner decides, without any I/O.

`run_round` is one cleaning round for either engine: the engine supplies its segments'
summaries and batches (in offset order) and a `GroupSink` that writes each group's output;
the memory engine's `clean` and the disk engine's `josef.storage.disk.cleaner` both use it.
The steps, in order:

1. `LogScan.observe(header)` over every batch of the log (headers only; control batches are
   decoded): aborted transactions, the first offset of a transaction still open at the log
   end (first unstable offset), and each producer's last batch.
2. `plan_cleaning(...)`: the cleanable range [first_dirty_offset, first_uncleanable_offset)
   (Kafka's LogCleanerManager.cleanableOffsets) and whether the log is due
   (dirty ratio > min.cleanable.dirty.ratio, or a record older than max.compaction.lag.ms).
3. `build_offset_map(...)` over the dirty range: key -> latest offset (`OffsetMap`, bounded by
   an entry count; when it fills, cleaning stops at the offset reached, as Kafka's does).
4. `group_segments(...)`: the segments below the map's end offset, grouped so that each group
   fits one segment.
5. `BatchFilter.filter(header)` on every batch of those groups: KEEP (the stored bytes, copied
   byte for byte), REWRITE (a rebuilt batch: same base offset, last offset delta, producer
   id/epoch/base sequence, offsets deltas and timestamps of the survivors, compression codec,
   KIP-534 delete horizon) or DROP.

Retention rule for a record at offset o with key k (Kafka's Cleaner.shouldRetainRecord):
kept when o >= the map's end offset (not examined this round), or k is null (a compacted topic
refuses such records at produce time; the cleaner keeps what got in), or o >= map[k] and it is
not a tombstone whose batch's delete horizon (delete.retention.ms after the round that first
kept it) has passed. Aborted transactional data is dropped; a transaction marker goes once no
batch of its transaction remains and its own delete horizon has passed. A producer's last
batch is kept, emptied if need be, to preserve its sequence/epoch (Kafka's RETAIN_EMPTY).
Safety: a record is only removed when a later record of its key is in the map, or it is a
tombstone at its key's latest offset below the map's end, whose older values go in the same
round; so every key's latest value survives whatever the checkpoint says.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from josef.protocol.exceptions import ProtocolError
from josef.protocol.varint import read_varint, read_varlong
from josef.records.batch import (
    COMPRESSION_MASK,
    DELETE_HORIZON_FLAG,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
    TimestampType,
)
from josef.records.compression import compress
from josef.records.control import ControlRecordType, parse_control_type
from josef.records.errors import InvalidRecordError, RecordsError
from josef.records.records import Record, encode_records, iter_records, records_section
from josef.storage.api import LogConfig

INT32_MAX = 2**31 - 1
# Kafka's SkimpyOffsetMap holds an MD5 digest (16 bytes) and an offset (8 bytes) per key in
# log.cleaner.dedupe.buffer.size (128 MiB), filled to log.cleaner.io.buffer.load.factor (0.9).
# Here an entry is a dict slot with a 16-byte digest and an int, 133 bytes in CPython
# (tracemalloc, Python 3.11): the same 128 MiB at the same load factor holds 908,240 entries.
DEDUPE_BUFFER_BYTES = 128 * 1024 * 1024
OFFSET_MAP_ENTRY_BYTES = 133
OFFSET_MAP_LOAD_FACTOR = 0.9
DEFAULT_MAX_MAP_ENTRIES = int(DEDUPE_BUFFER_BYTES / OFFSET_MAP_ENTRY_BYTES * OFFSET_MAP_LOAD_FACTOR)

NO_OFFSET = -1
_CONTROL_SECTION_BYTES = 64 * 1024  # a marker batch is one tiny record; bounds its inflation
_EMPTY_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD


class OffsetMap:
    """Key -> latest offset, holding at most `max_entries` keys (a count bound; see
    DEFAULT_MAX_MAP_ENTRIES). Keys are stored as MD5 digests, as Kafka does: a collision
    (2**-128 per pair) would make the older key's records look superseded."""

    __slots__ = ("_map", "latest_offset", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_MAX_MAP_ENTRIES) -> None:
        assert max_entries >= 1, "the offset map needs room for one key"
        self.max_entries = max_entries
        self._map: dict[bytes, int] = {}
        self.latest_offset = NO_OFFSET  # the last offset put

    def __len__(self) -> int:
        return len(self._map)

    @staticmethod
    def _digest(key: bytes) -> bytes:
        return hashlib.md5(key, usedforsecurity=False).digest()

    def put(self, key: bytes, offset: int) -> bool:
        """Record `offset` as the latest for `key`; False (and nothing changes) when the key
        is new and the map is full."""
        digest = self._digest(key)
        if digest not in self._map and len(self._map) >= self.max_entries:
            return False
        self._map[digest] = offset
        self.latest_offset = offset
        return True

    def get(self, key: bytes) -> int:
        """The latest offset put for `key`, NO_OFFSET when absent."""
        return self._map.get(self._digest(key), NO_OFFSET)


# --- reading keys -------------------------------------------------------------------------------
class RecordKey(NamedTuple):
    offset_delta: int
    key: bytes | None
    is_tombstone: bool


def iter_record_keys(header: BatchHeader) -> Iterator[RecordKey]:
    """Offset delta, key and tombstone flag of each record, without copying values or
    decoding headers (the map and the keep/drop decision need no more). Malformed records
    raise InvalidRecordError, as `iter_records` does."""
    section = records_section(header)
    end = len(section)
    pos = 0
    try:
        for _ in range(header.record_count):
            length, pos = _varint(section, pos, end)
            record_end = pos + length
            if length < 1 or record_end > end:
                raise InvalidRecordError(f"record length {length} out of bounds at {pos}")
            _timestamp_delta, at = read_varlong(section, pos + 1, record_end)
            offset_delta, at = _varint(section, at, record_end)
            key_length, at = _varint(section, at, record_end)
            key: bytes | None = None
            if key_length >= 0:
                if at + key_length > record_end:
                    raise InvalidRecordError(f"record key length {key_length} out of bounds")
                key = bytes(section[at : at + key_length])
                at += key_length
            elif key_length != -1:
                raise InvalidRecordError(f"record key length {key_length} out of bounds")
            value_length, at = _varint(section, at, record_end)
            yield RecordKey(offset_delta, key, value_length == -1)
            pos = record_end
    except ProtocolError as err:
        raise InvalidRecordError(f"malformed record at position {pos}: {err}") from None
    if pos != end:
        raise InvalidRecordError(f"{end - pos} bytes left after the batch's records")


def _varint(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int]:
    """read_varint with the one-byte case inline: most record fields are small numbers."""
    if pos < end:
        b = buf[pos]
        if b < 0x80:
            return (b >> 1) ^ -(b & 1), pos + 1
    return read_varint(buf, pos, end)


# --- the scan: transactions and producers -------------------------------------------------------
class AbortedTxn(NamedTuple):
    """An aborted transaction: its producer, first data offset and ABORT marker offset."""

    producer_id: int
    first_offset: int
    last_offset: int


def marker_type(header: BatchHeader) -> int | None:
    """The control record type of a control batch; None when it holds no record (emptied by
    an earlier cleaning) or cannot be read."""
    try:
        for record in iter_records(header, _CONTROL_SECTION_BYTES):
            return parse_control_type(record.key)
    except RecordsError:
        return None
    return None


@dataclass(slots=True)
class _ProducerLast:
    last_data_offset: int = NO_OFFSET  # last offset of its last data batch
    last_control_offset: int = NO_OFFSET


@dataclass(slots=True)
class LogScan:
    """What one pass over every batch header of a log tells the cleaner (step 1).

    Deviation: Kafka keeps the last batch of *active* producers (those in its producer state,
    which expire after producer.id.expiration.ms); here every producer seen in the log counts
    as active, so a producer's last batch is kept (possibly empty) until retention removes it.
    """

    aborted: list[AbortedTxn] = field(default_factory=list)
    producers: dict[int, _ProducerLast] = field(default_factory=dict)
    _open: dict[int, int] = field(default_factory=dict)  # producer id -> first data offset

    def observe(self, header: BatchHeader) -> None:
        if not header.has_producer_id:
            return
        pid = header.producer_id
        last = self.producers.setdefault(pid, _ProducerLast())
        if not header.is_control:
            last.last_data_offset = header.last_offset
            if header.is_transactional:
                self._open.setdefault(pid, header.base_offset)
            return
        last.last_control_offset = header.last_offset
        first = self._open.pop(pid, None)
        if first is not None and marker_type(header) == ControlRecordType.ABORT:
            self.aborted.append(AbortedTxn(pid, first, header.last_offset))

    @property
    def first_unstable_offset(self) -> int | None:
        """First offset of the oldest transaction without a marker yet (Kafka's LSO bound)."""
        return min(self._open.values(), default=None)

    def is_last_batch_of_producer(self, header: BatchHeader) -> bool:
        """Kafka's isBatchLastRecordOfProducer: its last data batch, or (no data batch at all)
        its last control batch."""
        last = self.producers.get(header.producer_id)
        if last is None or not header.has_producer_id:
            return False
        if last.last_data_offset != NO_OFFSET:
            return not header.is_control and header.last_offset == last.last_data_offset
        return header.is_control and header.last_offset == last.last_control_offset

    def aborted_from(self, offset: int) -> list[AbortedTxn]:
        """Aborted transactions whose marker is at or after `offset`, by first offset."""
        return sorted(
            (t for t in self.aborted if t.last_offset >= offset), key=lambda t: t.first_offset
        )


class TransactionTracker:
    """Kafka's CleanedTransactionMetadata: fed the batches of one pass in offset order, says
    which may be discarded (aborted data; markers whose transaction has no batch left)."""

    def __init__(self, aborted: Sequence[AbortedTxn]) -> None:
        self._aborted = aborted  # by first offset
        self._next = 0
        self._ongoing_aborted: dict[int, bool] = {}  # producer id -> saw one of its batches
        self._ongoing_committed: set[int] = set()

    def _consume_up_to(self, offset: int) -> None:
        while self._next < len(self._aborted) and self._aborted[self._next].first_offset <= offset:
            self._ongoing_aborted[self._aborted[self._next].producer_id] = False
            self._next += 1

    def on_batch(self, header: BatchHeader) -> bool:
        """A data batch: True when it belongs to an aborted transaction."""
        self._consume_up_to(header.last_offset)
        if not header.is_transactional:
            return False
        if header.producer_id in self._ongoing_aborted:
            self._ongoing_aborted[header.producer_id] = True
            return True
        self._ongoing_committed.add(header.producer_id)
        return False

    def on_control_batch(self, header: BatchHeader) -> bool:
        """A control batch: True when no batch of its transaction was seen in this pass."""
        self._consume_up_to(header.last_offset)
        kind = marker_type(header)
        if kind is None:
            return header.record_count == 0  # emptied by an earlier round: nothing to keep
        pid = header.producer_id
        if kind == ControlRecordType.ABORT:
            saw_batches = self._ongoing_aborted.pop(pid, False)
            return not saw_batches
        if kind == ControlRecordType.COMMIT:
            saw = pid in self._ongoing_committed
            self._ongoing_committed.discard(pid)
            return not saw
        return False


# --- planning -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """What planning needs of one segment (the log's last segment is the active one)."""

    base_offset: int
    size: int
    largest_timestamp: int  # max record timestamp, else last modification time
    first_batch_timestamp: int  # max timestamp of its first batch, -1 when none


@dataclass(frozen=True, slots=True)
class CleanablePlan:
    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    dirty_bytes: int
    max_compaction_delay_ms: int  # > 0: some dirty record is older than max.compaction.lag.ms

    @property
    def dirty_ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0

    def is_due(self, config: LogConfig) -> bool:
        """Kafka's grabFilthiestCompactedLog filter (note: ratio strictly above the config)."""
        if self.dirty_bytes <= 0:
            return False
        return (
            self.max_compaction_delay_ms > 0
            or self.dirty_ratio > config.min_cleanable_dirty_ratio
        )


def plan_cleaning(
    segments: Sequence[SegmentSummary], log_start_offset: int, log_end_offset: int,
    checkpoint: int | None, last_stable_offset: int, config: LogConfig, now_ms: int,
) -> CleanablePlan:
    """Kafka's LogCleanerManager.cleanableOffsets plus the dirty ratio and compaction delay.

    `checkpoint` is the cleaner checkpoint (first offset not yet cleaned), reset to the log
    start when missing or outside the log; `last_stable_offset` is
    min(first unstable offset, high watermark): nothing at or past it is cleaned.
    """
    assert segments, "a log has at least its active segment"
    first_dirty = checkpoint if checkpoint is not None else log_start_offset
    if not log_start_offset <= first_dirty <= log_end_offset:
        first_dirty = log_start_offset
    active_base = segments[-1].base_offset
    dirty_non_active = [
        (s, nxt.base_offset) for s, nxt in itertools.pairwise(segments)
        if nxt.base_offset > first_dirty
    ]
    first_uncleanable = min(last_stable_offset, active_base)
    lag = max(config.min_compaction_lag_ms, 0)
    if lag > 0:
        for segment, _next in dirty_non_active:
            if segment.largest_timestamp > now_ms - lag:
                first_uncleanable = min(first_uncleanable, segment.base_offset)
                break
    first_dirty = min(first_dirty, first_uncleanable)
    firsts = [s.first_batch_timestamp for s, _ in dirty_non_active if s.first_batch_timestamp > 0]
    clean_until = now_ms - max(config.max_compaction_lag_ms, 0)
    earliest = min(firsts, default=None)
    delay = clean_until - earliest if earliest is not None and earliest < clean_until else 0
    clean_bytes = sum(s.size for s in segments[:-1] if s.base_offset < first_dirty)
    dirty_bytes = sum(
        s.size for s, next_base in dirty_non_active
        if s.base_offset < first_uncleanable and next_base > first_dirty
    )
    return CleanablePlan(first_dirty, first_uncleanable, clean_bytes, dirty_bytes, delay)


def group_segments(
    segments: Sequence[SegmentSummary], end_offset: int, segment_bytes: int
) -> list[list[int]]:
    """Kafka's groupSegmentsBySize: indices of the consecutive segments below `end_offset`
    (never the active one), grouped so a group's bytes fit segment.bytes and its offsets fit
    an int32 relative to the group's base offset."""
    candidates = [
        i for i in range(len(segments) - 1) if segments[i].base_offset < end_offset
    ]
    groups: list[list[int]] = []
    for i in candidates:
        last_offset = segments[i + 1].base_offset - 1
        if groups:
            group = groups[-1]
            size = sum(segments[j].size for j in group)
            if (
                size + segments[i].size <= segment_bytes
                and last_offset - segments[group[0]].base_offset <= INT32_MAX
            ):
                group.append(i)
                continue
        groups.append([i])
    return groups


# --- the offset map -----------------------------------------------------------------------------
def build_offset_map(
    batches: Iterable[BatchHeader], scan: LogScan, start_offset: int, stop_offset: int,
    offset_map: OffsetMap,
) -> int:
    """Put the keys of the records in [start_offset, stop_offset) into `offset_map` (Kafka's
    buildOffsetMap: control batches and aborted data skipped). Returns the end offset the map
    covers: stop_offset, or the offset after the last record put when the map filled."""
    tracker = TransactionTracker(scan.aborted_from(start_offset))
    for header in batches:
        if header.last_offset < start_offset:
            continue
        if header.base_offset >= stop_offset:
            break
        if header.is_control:
            tracker.on_control_batch(header)
            continue
        if tracker.on_batch(header):
            continue
        for record in iter_record_keys(header):
            offset = header.base_offset + record.offset_delta
            if offset < start_offset or record.key is None:
                continue
            if offset >= stop_offset:
                return stop_offset
            if not offset_map.put(record.key, offset):
                return max(offset_map.latest_offset + 1, start_offset)
    return stop_offset


# --- filtering ----------------------------------------------------------------------------------
class Action(enum.Enum):
    KEEP = "keep"  # the stored bytes, unchanged
    REWRITE = "rewrite"  # rebuilt from the surviving records
    DROP = "drop"


class FilterResult(NamedTuple):
    action: Action
    data: bytes | memoryview | None  # the batch to write (None for DROP)


@dataclass(slots=True)
class CleanStats:
    """What one cleaning round did."""

    first_dirty_offset: int = 0
    end_offset: int = 0  # the new cleaner checkpoint
    map_entries: int = 0
    batches_read: int = 0
    batches_kept: int = 0
    batches_rewritten: int = 0
    batches_dropped: int = 0
    records_removed: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    segments_replaced: int = 0
    # The earliest delete horizon of a kept batch still holding tombstones: a round is due at
    # that time even with no dirty bytes (Kafka's latestDeleteHorizon, KIP-534).
    next_delete_horizon_ms: int | None = None

    def note_delete_horizon(self, horizon_ms: int) -> None:
        if self.next_delete_horizon_ms is None or horizon_ms < self.next_delete_horizon_ms:
            self.next_delete_horizon_ms = horizon_ms


class BatchFilter:
    """Kafka's LogCleaner filter (checkBatchRetention + shouldRetainRecord) for one round.
    Feed every batch of the cleaned groups in offset order."""

    def __init__(
        self, offset_map: OffsetMap, scan: LogScan, start_offset: int, end_offset: int,
        now_ms: int, delete_retention_ms: int, stats: CleanStats,
    ) -> None:
        self._map = offset_map
        self._scan = scan
        self._tracker = TransactionTracker(scan.aborted_from(start_offset))
        self._end_offset = end_offset
        self._now_ms = now_ms
        self._delete_retention_ms = delete_retention_ms
        self._stats = stats

    def filter(self, header: BatchHeader) -> FilterResult:
        stats = self._stats
        stats.batches_read += 1
        stats.bytes_read += header.size
        result = self._filter(header)
        if result.action is Action.KEEP:
            stats.batches_kept += 1
        elif result.action is Action.REWRITE:
            stats.batches_rewritten += 1
        else:
            stats.batches_dropped += 1
        if result.data is not None:
            stats.bytes_written += len(result.data)
        return result

    def _filter(self, header: BatchHeader) -> FilterResult:
        if header.base_offset >= self._end_offset:  # not examined this round
            return FilterResult(Action.KEEP, header.view())
        now = self._now_ms
        horizon_passed = header.has_delete_horizon and header.base_timestamp <= now
        if header.is_control:
            can_discard = self._tracker.on_control_batch(header)
            discard_records = can_discard and horizon_passed
        else:
            can_discard = self._tracker.on_batch(header)
            discard_records = can_discard
        retain_empty = self._scan.is_last_batch_of_producer(header)
        if discard_records and not retain_empty:
            self._stats.records_removed += header.record_count
            return FilterResult(Action.DROP, None)
        records = list(iter_record_keys(header))
        if discard_records:
            kept: list[RecordKey] = []
        elif header.is_control:
            kept = records
        else:
            kept = [r for r in records if self._retain(header, r, horizon_passed)]
        self._stats.records_removed += len(records) - len(kept)
        has_tombstone = not header.is_control and any(r.is_tombstone for r in kept)
        marker_for_empty_txn = header.is_control and can_discard
        set_horizon = (has_tombstone or marker_for_empty_txn) and not header.has_delete_horizon
        horizon: int | None = None
        if set_horizon:
            horizon = now + self._delete_retention_ms
        elif header.has_delete_horizon:
            horizon = header.base_timestamp
        if has_tombstone and horizon is not None:
            self._stats.note_delete_horizon(horizon)
        if not kept:  # Kafka's RETAIN_EMPTY, else DELETE_EMPTY (an emptied batch goes too)
            if not retain_empty:
                return FilterResult(Action.DROP, None)
            if not records:
                return FilterResult(Action.KEEP, header.view())
            return FilterResult(Action.REWRITE, build_empty_batch(header))
        if len(kept) == len(records) and not set_horizon:
            return FilterResult(Action.KEEP, header.view())
        deltas = {r.offset_delta for r in kept}
        survivors = [r for r in iter_records(header) if r.offset_delta in deltas]
        return FilterResult(Action.REWRITE, build_retained_batch(header, survivors, horizon))

    def _retain(self, header: BatchHeader, record: RecordKey, horizon_passed: bool) -> bool:
        offset = header.base_offset + record.offset_delta
        if offset >= self._end_offset or record.key is None:
            return True
        if offset < self._map.get(record.key):
            return False
        return not record.is_tombstone or not horizon_passed


# --- batch building -----------------------------------------------------------------------------
def build_retained_batch(
    original: BatchHeader, kept: Sequence[Record], delete_horizon_ms: int | None
) -> bytes:
    """The batch `original` with only `kept` (Kafka's buildRetainedRecordsInto): same base
    offset and last offset delta (so the producer's last sequence survives), producer id,
    epoch, base sequence, leader epoch, codec and timestamp type; each survivor keeps its
    offset delta and absolute timestamp. With a delete horizon (KIP-534) base_timestamp
    holds it and the attribute bit is set; else it is the first survivor's timestamp."""
    assert kept, "an emptied batch is built by build_empty_batch"
    absolute = [original.base_timestamp + r.timestamp_delta for r in kept]
    base_timestamp = delete_horizon_ms if delete_horizon_ms is not None else absolute[0]
    rebuilt = [
        Record(r.offset_delta, ts - base_timestamp, r.key, r.value, r.headers, r.attributes)
        for r, ts in zip(kept, absolute, strict=True)
    ]
    section: bytes | bytearray = encode_records(rebuilt)
    codec = original.compression
    section = compress(codec, section)
    attributes = original.attributes & ~DELETE_HORIZON_FLAG
    if delete_horizon_ms is not None:
        attributes |= DELETE_HORIZON_FLAG
    if original.timestamp_type == TimestampType.LOG_APPEND_TIME:
        max_timestamp = original.max_timestamp  # the log-append time, every record's
    else:
        max_timestamp = max(absolute)
    return _pack(original, attributes, base_timestamp, max_timestamp, len(kept), section)


def build_empty_batch(original: BatchHeader) -> bytes:
    """A record-less batch keeping `original`'s offsets and producer fields (Kafka's
    writeEmptyHeader): what remains of a producer's last batch so its state survives."""
    attributes = original.attributes & ~(COMPRESSION_MASK | DELETE_HORIZON_FLAG)
    timestamp = original.max_timestamp
    return _pack(original, attributes, timestamp, timestamp, 0, b"")


def _pack(
    original: BatchHeader, attributes: int, base_timestamp: int, max_timestamp: int,
    count: int, section: bytes | bytearray,
) -> bytes:
    out = bytearray(HEADER_SIZE)
    out += section
    HEADER_STRUCT.pack_into(
        out, 0, original.base_offset, _EMPTY_BATCH_LENGTH + len(section),
        original.partition_leader_epoch, MAGIC, 0, attributes, original.last_offset_delta,
        base_timestamp, max_timestamp, original.producer_id, original.producer_epoch,
        original.base_sequence, count,
    )
    BatchHeader(out).update_crc()
    return bytes(out)



# --- one round, for either engine ---------------------------------------------------------------
class GroupSink(Protocol):
    """Where a round writes each group's surviving batches (the engine's segment writer)."""

    def begin_group(self, group: list[int]) -> None: ...

    def write(self, batch: bytes | memoryview) -> None: ...

    def end_group(self, changed: bool) -> None:
        """`changed` is False when the group is one segment whose batches are all kept: the
        engine may leave that segment as it is."""
        ...


def run_round(
    segments: Sequence[SegmentSummary], batches_of: Callable[[int], Iterable[BatchHeader]],
    *, log_start_offset: int, log_end_offset: int, high_watermark: int, checkpoint: int | None,
    config: LogConfig, now_ms: int, sink: GroupSink, max_map_entries: int = DEFAULT_MAX_MAP_ENTRIES,
    delete_horizon_ms: int | None = None, force: bool = False,
) -> CleanStats | None:
    """One cleaning round over a log whose segments are `segments` (the last one active) and
    whose batches `batches_of(i)` yields in offset order. The log is due when its plan says
    so, when `delete_horizon_ms` (the previous round's `next_delete_horizon_ms`) has passed,
    or when `force`. Returns None when not due or without a non-active segment; else the
    stats, whose `end_offset` is the new cleaner checkpoint."""
    if len(segments) < 2:
        return None
    scan = LogScan()
    for i in range(len(segments)):
        for header in batches_of(i):
            scan.observe(header)
    unstable = scan.first_unstable_offset
    last_stable = high_watermark if unstable is None else min(unstable, high_watermark)
    plan = plan_cleaning(
        segments, log_start_offset, log_end_offset, checkpoint, last_stable, config, now_ms
    )
    horizon_due = delete_horizon_ms is not None and delete_horizon_ms <= now_ms
    if not (force or horizon_due or plan.is_due(config)):
        return None
    offset_map = OffsetMap(max_map_entries)
    end_offset = build_offset_map(
        _batches_in(segments, batches_of, plan.first_dirty_offset, plan.first_uncleanable_offset),
        scan, plan.first_dirty_offset, plan.first_uncleanable_offset, offset_map,
    )
    stats = CleanStats(
        first_dirty_offset=plan.first_dirty_offset, end_offset=end_offset,
        map_entries=len(offset_map),
    )
    start = segments[0].base_offset
    batch_filter = BatchFilter(
        offset_map, scan, start, end_offset, now_ms, config.delete_retention_ms, stats
    )
    for group in group_segments(segments, end_offset, config.segment_bytes):
        sink.begin_group(group)
        changed = len(group) > 1
        for i in group:
            for header in batches_of(i):
                result = batch_filter.filter(header)
                changed = changed or result.action is not Action.KEEP
                if result.data is not None:
                    sink.write(result.data)
        sink.end_group(changed)
        stats.segments_replaced += len(group) if changed else 0
    return stats


def _batches_in(
    segments: Sequence[SegmentSummary], batches_of: Callable[[int], Iterable[BatchHeader]],
    start_offset: int, stop_offset: int,
) -> Iterator[BatchHeader]:
    """The batches of the segments overlapping [start_offset, stop_offset), in order."""
    for i, segment in enumerate(segments):
        next_base = segments[i + 1].base_offset if i + 1 < len(segments) else None
        if next_base is not None and next_base <= start_offset:
            continue
        if segment.base_offset >= stop_offset:
            return
        yield from batches_of(i)
