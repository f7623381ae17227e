"""The in-memory storage engine: the reference semantics every engine must match.

Contract: `MemoryPartitionLog` implements `josef.storage.api.PartitionLog` with Kafka's rules
(UnifiedLog / LocalLog / LogSegment) and nothing else: batches are validated like the disk
engine does it, stored whole as immutable `bytes` with offsets, leader epoch and LogAppendTime
written into their headers, and grouped into "segments" that roll at segment.bytes, segment.ms
and relative-offset overflow exactly where the disk engine rolls, so that retention and
DeleteRecords delete the same whole segments. Simple and obviously right beats fast here.

Deliberate differences from a disk log, all invisible through the interface:
- no index, hence no index-full roll (only reachable with a tiny segment.index.bytes);
- a segment's age for segment.ms without record timestamps counts from its first append
  (Kafka counts from file creation), and segment.jitter.ms is not applied (no randomness);
- flush() only advances recovery_point; close() releases nothing;
- the producer state and the leader-epoch cache live in memory only (no snapshot, no
  checkpoint file), so after a truncation the producer state is replayed from the log start
  (the disk engine starts from its newest snapshot, which may remember producers whose
  batches retention removed); aborted transactions are not indexed (nothing reads them yet).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from josef.protocol.errors import ErrorCode
from josef.records.batch import BatchHeader, TimestampType, validate_batches
from josef.records.control import EndTransactionMarker, parse_marker
from josef.records.errors import RecordsError
from josef.records.records import iter_records, record_offset, record_timestamp
from josef.storage.api import AppendInfo, FetchData, LogConfig, TimestampAndOffset
from josef.storage.compaction import (
    DEFAULT_MAX_MAP_ENTRIES,
    CleanStats,
    SegmentSummary,
    run_round,
)
from josef.storage.errors import (
    InvalidRecord,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
    UnexpectedAppendOffset,
    from_records_error,
)
from josef.storage.leader_epoch import LeaderEpochCache
from josef.storage.producer_state import (
    DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    AppendOrigin,
    AppendOutcome,
    ProducerStateManager,
    ProducerStateUpdate,
)

_INT32_MAX = 2**31 - 1  # a segment's offsets must fit in a relative int32 (Kafka's index entry)
_NO_TIMESTAMP = -1


@dataclass(slots=True)
class _Segment:
    """Whole batches starting at base_offset, in offset order."""

    base_offset: int
    batches: list[BatchHeader] = field(default_factory=list)
    size: int = 0
    first_append_ms: int = -1  # -1 while empty
    last_append_ms: int = -1  # stands in for the file's mtime (Kafka's lastModified)

    @property
    def max_timestamp(self) -> int:
        return max((b.max_timestamp for b in self.batches), default=_NO_TIMESTAMP)

    @property
    def largest_timestamp(self) -> int:
        """Kafka's LogSegment.largestTimestamp: max record timestamp, else last-modified time."""
        max_timestamp = self.max_timestamp
        return max_timestamp if max_timestamp >= 0 else self.last_append_ms

    def time_waited_for_roll(self, now_ms: int, incoming_max_timestamp: int) -> int:
        """Kafka's LogSegment.timeWaitedForRoll: by record timestamps when the first batch has
        one, else by the clock."""
        first_timestamp = self.batches[0].max_timestamp if self.batches else _NO_TIMESTAMP
        if first_timestamp >= 0:
            return incoming_max_timestamp - first_timestamp
        return now_ms - self.first_append_ms


# Decides whether to delete a segment, given it and the base offset of the segment after it.
_SegmentPredicate = Callable[[_Segment, int], bool]


class MemoryPartitionLog:
    """One partition's log held in memory (see the module docstring for the contract)."""

    def __init__(
        self, config: LogConfig, log_start_offset: int = 0, *,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> None:
        self._config = config
        self._segments: list[_Segment] = [_Segment(log_start_offset)]
        self._log_start_offset = log_start_offset
        self._log_end_offset = log_start_offset
        self._high_watermark = log_start_offset
        self._recovery_point = log_start_offset
        self._cleaner_checkpoint: int | None = None  # Kafka's cleaner-offset-checkpoint entry
        self._delete_horizon_ms: int | None = None  # when kept tombstones may go (compaction)
        self.producer_state = ProducerStateManager(
            None, producer_id_expiration_ms=producer_id_expiration_ms
        )
        self._epoch_cache = LeaderEpochCache(None)
        self._now_ms = 0  # the latest clock reading seen (producer expiry on a reload)

    # --- state --------------------------------------------------------------------------------
    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def update_config(self, config: LogConfig) -> None:
        self._config = config

    # --- appends ------------------------------------------------------------------------------
    def append_as_leader(
        self, records: bytes | memoryview, leader_epoch: int, now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        self._now_ms = now_ms
        try:
            validated = validate_batches(
                records, self._config.max_message_bytes,
                from_client=origin is AppendOrigin.CLIENT,
            )
        except RecordsError as err:
            raise from_records_error(err) from err
        buf = bytearray(records)  # one copy: offsets are assigned in the stored headers
        headers = [BatchHeader(buf, h.pos) for h in validated]
        self._check_fits_a_segment(len(buf))
        log_append_time = self._config.message_timestamp_type == "LogAppendTime"
        next_offset = self._log_end_offset
        for header in headers:
            header.set_base_offset(next_offset)
            header.set_partition_leader_epoch(leader_epoch)
            if log_append_time:
                header.set_max_timestamp_and_type(now_ms, TimestampType.LOG_APPEND_TIME)
                header.update_crc()
            next_offset = header.next_offset
        # Producer state before anything is stored: a duplicate or a refusal changes nothing.
        update = self._check_producers(headers, origin)
        if isinstance(update, AppendInfo):
            return update
        stored = [BatchHeader(bytes(buf[h.pos : h.end])) for h in headers]
        info = self._append(stored, now_ms, now_ms if log_append_time else _NO_TIMESTAMP)
        if update is not None:
            self.producer_state.commit_update(update, self._log_end_offset)
        if leader_epoch >= 0 and self._epoch_cache.latest_epoch != leader_epoch:
            self._epoch_cache.assign(leader_epoch, info.first_offset)
        return info

    def _check_producers(
        self, headers: list[BatchHeader], origin: AppendOrigin
    ) -> ProducerStateUpdate | AppendInfo | None:
        """Stage the batches that have a producer id (offsets assigned): the update to commit
        after the append (None when no batch has one), or the original append of a
        duplicate; raises StorageError with Kafka's code for a refused batch."""
        update = None
        for header in headers:
            if header.producer_id < 0:
                continue
            if update is None:
                update = self.producer_state.prepare_update(origin)
            marker: EndTransactionMarker | None = None
            if header.is_control and header.record_count:
                try:
                    marker = parse_marker(header)
                except RecordsError as err:
                    raise from_records_error(err) from err
            check = update.append(header, marker)
            if check.outcome is AppendOutcome.ERROR:
                raise StorageError(check.message, check.error_code)
            if check.outcome is AppendOutcome.DUPLICATE:
                original = next(
                    b for b in self._batches_from(check.first_offset)
                    if b.last_offset == check.last_offset
                )
                log_append_time = original.timestamp_type == TimestampType.LOG_APPEND_TIME
                return AppendInfo(
                    first_offset=check.first_offset,
                    last_offset=check.last_offset,
                    max_timestamp=original.max_timestamp,
                    offset_of_max_timestamp=check.last_offset,
                    log_append_time=original.max_timestamp if log_append_time else _NO_TIMESTAMP,
                    log_start_offset=self._log_start_offset,
                    record_count=0,
                    duplicate=True,
                )
        return update

    def append_as_follower(self, records: bytes | memoryview, now_ms: int) -> AppendInfo:
        self._now_ms = now_ms
        try:
            headers = validate_batches(records, self._config.max_message_bytes, from_client=False)
        except RecordsError as err:
            raise from_records_error(err) from err
        if headers[0].base_offset < self._log_end_offset:
            raise UnexpectedAppendOffset(
                f"first offset {headers[0].base_offset} is below the log end offset "
                f"{self._log_end_offset}"
            )
        previous_last = self._log_end_offset - 1
        for header in headers:
            if header.last_offset_delta < 0 or header.base_offset <= previous_last:
                raise InvalidRecord(
                    f"offsets out of order: batch [{header.base_offset}, {header.last_offset}] "
                    f"after offset {previous_last}"
                )
            previous_last = header.last_offset
        self._check_fits_a_segment(sum(h.size for h in headers))
        update = self._check_producers(headers, AppendOrigin.REPLICATION)
        assert not isinstance(update, AppendInfo), "replicated batches are never duplicates"
        stored = [BatchHeader(bytes(h.view())) for h in headers]
        info = self._append(stored, now_ms, _NO_TIMESTAMP)
        if update is not None:
            self.producer_state.commit_update(update, self._log_end_offset)
        for header in headers:  # the epochs of the leaders that wrote the batches
            epoch, latest = header.partition_leader_epoch, self._epoch_cache.latest_epoch
            if epoch >= 0 and (latest is None or epoch > latest):
                self._epoch_cache.assign(epoch, header.base_offset)
        return info

    def _check_fits_a_segment(self, size: int) -> None:
        # Kafka's RecordBatchTooLargeException: an append must fit in one segment.
        if size > self._config.segment_bytes:
            raise RecordTooLarge(
                f"{size} bytes of records exceed segment.bytes {self._config.segment_bytes}",
                ErrorCode.RECORD_LIST_TOO_LARGE,
            )

    def _append(self, batches: list[BatchHeader], now_ms: int, log_append_time: int) -> AppendInfo:
        size = sum(b.size for b in batches)
        max_timestamp = max(b.max_timestamp for b in batches)
        self._maybe_roll(
            size, max_timestamp, batches[0].base_offset, batches[-1].last_offset, now_ms
        )
        segment = self._segments[-1]
        if not segment.batches:
            segment.first_append_ms = now_ms
        segment.batches.extend(batches)
        segment.size += size
        segment.last_append_ms = now_ms
        self._log_end_offset = batches[-1].next_offset
        # Kafka's LogAppendInfo.shallowOffsetOfMaxTimestamp (KAFKA-16310), from headers only:
        # the last offset of the first batch holding max_timestamp; with LogAppendTime every
        # record holds it, so the first offset.
        offset_of_max_timestamp = -1
        if log_append_time >= 0:
            offset_of_max_timestamp = batches[0].base_offset
        elif max_timestamp >= 0:
            holder = next(b for b in batches if b.max_timestamp == max_timestamp)
            offset_of_max_timestamp = holder.last_offset
        return AppendInfo(
            first_offset=batches[0].base_offset,
            last_offset=batches[-1].last_offset,
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max_timestamp,
            log_append_time=log_append_time,
            log_start_offset=self._log_start_offset,
            record_count=sum(b.record_count for b in batches),
        )

    def _maybe_roll(
        self, size: int, max_timestamp: int, first_offset: int, last_offset: int, now_ms: int
    ) -> None:
        """Kafka's UnifiedLog.maybeRoll: a non-empty active segment is rolled before an append
        that would overflow segment.bytes, that comes segment.ms after its first batch, or
        whose offsets do not fit relative to its base offset."""
        segment = self._segments[-1]
        if segment.batches and (
            segment.size > self._config.segment_bytes - size
            or segment.time_waited_for_roll(now_ms, max_timestamp) > self._config.segment_ms
            or last_offset - segment.base_offset > _INT32_MAX
        ):
            self._segments.append(_Segment(max(first_offset, self._log_end_offset)))

    # --- reads --------------------------------------------------------------------------------
    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> FetchData:
        if not self._log_start_offset <= fetch_offset <= self._log_end_offset:
            raise OffsetOutOfRange(
                f"offset {fetch_offset} is outside [{self._log_start_offset}, "
                f"{self._log_end_offset}]"
            )
        limit = self._log_end_offset if max_offset is None else max_offset
        data = FetchData(
            high_watermark=self._high_watermark,
            log_start_offset=self._log_start_offset,
            log_end_offset=self._log_end_offset,
        )
        for batch in self._batches_from(fetch_offset):
            if batch.next_offset > limit:
                break  # the batch holding max_offset is not returned (Kafka's maxPosition)
            if data.size + batch.size > max_bytes and not (min_one_batch and not data.records):
                break
            data.records.append(batch.buf)
            data.size += batch.size
        return data

    def _batches_from(self, offset: int) -> Iterable[BatchHeader]:
        """Every batch whose last offset is at or after `offset`, in order."""
        bases = [s.base_offset for s in self._segments]
        first = max(bisect.bisect_right(bases, offset) - 1, 0)
        for segment in self._segments[first:]:
            for batch in segment.batches:
                if batch.last_offset >= offset:
                    yield batch

    def offset_for_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """Kafka's fetchOffsetByTimestamp: the first batch with max_timestamp >= timestamp,
        then its first record at or after log_start_offset with a timestamp >= timestamp."""
        for batch in self._batches_from(self._log_start_offset):
            if batch.max_timestamp < timestamp:
                continue
            for offset, found in _record_timestamps(batch):
                if offset >= self._log_start_offset and found >= timestamp:
                    return TimestampAndOffset(found, offset, batch.partition_leader_epoch)
        return None

    def offset_of_max_timestamp(self) -> TimestampAndOffset | None:
        """KIP-734: the first record holding the largest timestamp in the log."""
        best: BatchHeader | None = None
        for segment in self._segments:
            for batch in segment.batches:
                if batch.max_timestamp >= 0 and (
                    best is None or batch.max_timestamp > best.max_timestamp
                ):
                    best = batch
        if best is None:
            return None
        return TimestampAndOffset(
            best.max_timestamp, _offset_of_max_timestamp(best), best.partition_leader_epoch
        )

    # --- offsets moving -----------------------------------------------------------------------
    def set_high_watermark(self, offset: int) -> None:
        # Kafka's UnifiedLog.updateHighWatermark clamps into [log_start_offset, log_end_offset].
        self._high_watermark = min(max(offset, self._log_start_offset), self._log_end_offset)
        self.producer_state.on_high_watermark_updated(self._high_watermark)

    def truncate_to(self, offset: int) -> None:
        """Kafka's UnifiedLog.truncateTo: the batch holding `offset` goes whole, and
        log_end_offset becomes `offset`."""
        assert offset >= 0, f"truncate_to({offset})"
        if offset >= self._log_end_offset:
            return
        if offset < self._segments[0].base_offset:
            self._segments = [_Segment(offset)]
            self._log_start_offset = offset
        else:
            self._segments = [s for s in self._segments if s.base_offset <= offset]
            active = self._segments[-1]
            active.batches = [b for b in active.batches if b.last_offset < offset]
            active.size = sum(b.size for b in active.batches)
            if not active.batches:
                active.first_append_ms = active.last_append_ms = -1
            self._log_start_offset = min(self._log_start_offset, offset)
        self._log_end_offset = offset
        self._high_watermark = min(self._high_watermark, offset)
        self._recovery_point = min(self._recovery_point, offset)
        if self._cleaner_checkpoint is not None:  # Kafka's maybeTruncateCheckpoint
            self._cleaner_checkpoint = min(self._cleaner_checkpoint, offset)
        self._epoch_cache.truncate_from_end(offset)
        state = self.producer_state
        map_end_offset = state.truncate_and_reload(self._log_start_offset, offset, self._now_ms)
        for batch in self._batches_from(map_end_offset):
            if batch.producer_id >= 0:
                state.update_from_batch(
                    batch, parse_marker(batch) if batch.is_control and batch.record_count else None
                )
        state.map_end_offset = offset

    def delete_records_before(self, offset: int) -> int:
        # Kafka's maybeIncrementLogStartOffset refuses to go past the high watermark.
        if offset > self._high_watermark:
            raise OffsetOutOfRange(
                f"cannot move log_start_offset to {offset}, above the high watermark "
                f"{self._high_watermark}"
            )
        self._log_start_offset = max(self._log_start_offset, offset)
        self._delete_segments(lambda segment, next_base: next_base <= self._log_start_offset)
        return self._log_start_offset

    def roll(self, now_ms: int) -> None:
        if self._segments[-1].batches:
            self._segments.append(_Segment(self._log_end_offset))
        else:
            self._segments[-1].base_offset = self._log_end_offset

    def flush(self) -> None:
        self._recovery_point = self._log_end_offset

    def apply_retention(self, now_ms: int) -> int:
        """Kafka's deleteOldSegments: retention.ms, then retention.bytes, then segments wholly
        below log_start_offset; only segments wholly below the high watermark, never the
        active segment."""
        deleted = 0
        if self._config.delete:
            retention_ms = self._config.retention_ms
            if retention_ms >= 0:
                deleted += self._delete_segments(
                    lambda segment, _next: now_ms - segment.largest_timestamp > retention_ms
                )
            retention_bytes = self._config.retention_bytes
            if retention_bytes >= 0 and self.size_bytes >= retention_bytes:
                excess = self.size_bytes - retention_bytes

                def over_size(segment: _Segment, _next: int) -> bool:
                    nonlocal excess
                    if excess - segment.size < 0:
                        return False
                    excess -= segment.size
                    return True

                deleted += self._delete_segments(over_size)
        deleted += self._delete_segments(
            lambda segment, next_base: next_base <= self._log_start_offset
        )
        return deleted

    def _delete_segments(self, predicate: _SegmentPredicate) -> int:
        """Delete the oldest segments while `predicate(segment, next segment's base_offset)`
        holds, stopping at the active segment and at the high watermark."""
        count = 0
        while len(self._segments) > 1:
            segment, next_base = self._segments[0], self._segments[1].base_offset
            if next_base > self._high_watermark or not predicate(segment, next_base):
                break
            del self._segments[0]
            count += 1
        self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        earliest = self._epoch_cache.earliest_entry
        if earliest is not None and earliest.start_offset < self._log_start_offset:
            self._epoch_cache.truncate_from_start(self._log_start_offset)
        self.producer_state.on_log_start_offset_incremented(self._log_start_offset)
        return count

    # --- producer state, leader epochs --------------------------------------------------------
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

    # --- compaction ---------------------------------------------------------------------------
    def clean(
        self, now_ms: int, *, max_map_entries: int = DEFAULT_MAX_MAP_ENTRIES, force: bool = False
    ) -> CleanStats | None:
        """One log-cleaner round when cleanup.policy has compact and the log is due (or
        `force`): the rules of josef.storage.compaction, the same segment groups as the disk
        engine. None when nothing was cleaned."""
        if not self._config.compact:
            return None
        summaries = [
            SegmentSummary(
                s.base_offset, s.size, s.largest_timestamp,
                s.batches[0].max_timestamp if s.batches else _NO_TIMESTAMP,
            )
            for s in self._segments
        ]
        sink = _CleanedGroups()
        stats = run_round(
            summaries, lambda i: self._segments[i].batches,
            log_start_offset=self._log_start_offset, log_end_offset=self._log_end_offset,
            high_watermark=self._high_watermark, checkpoint=self._cleaner_checkpoint,
            config=self._config, now_ms=now_ms, sink=sink, max_map_entries=max_map_entries,
            delete_horizon_ms=self._delete_horizon_ms, force=force,
        )
        if stats is None:
            return None
        for group, batches in reversed(sink.groups):  # from the end, so indices stay valid
            old = self._segments[group[0] : group[-1] + 1]
            self._segments[group[0] : group[-1] + 1] = [
                _Segment(
                    old[0].base_offset, batches, sum(b.size for b in batches),
                    first_append_ms=old[0].first_append_ms,
                    last_append_ms=max(s.last_append_ms for s in old),
                )
            ]
        self._cleaner_checkpoint = stats.end_offset
        self._delete_horizon_ms = stats.next_delete_horizon_ms
        return stats

    def close(self) -> None:
        """Nothing to release: the batches live as long as this object."""


class _CleanedGroups:
    """The compaction sink of the memory engine: each changed group's surviving batches."""

    def __init__(self) -> None:
        self.groups: list[tuple[list[int], list[BatchHeader]]] = []
        self._current: tuple[list[int], list[BatchHeader]] = ([], [])

    def begin_group(self, group: list[int]) -> None:
        self._current = (group, [])

    def write(self, batch: bytes | memoryview) -> None:
        self._current[1].append(BatchHeader(bytes(batch)))

    def end_group(self, changed: bool) -> None:
        if changed:
            self.groups.append(self._current)


class MemoryPartitionLogs:
    """A set of in-memory partition logs (Kafka's LogManager without log dirs).
    `producer_id_expiration_ms` is the broker's producer.id.expiration.ms."""

    def __init__(
        self, *, producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS
    ) -> None:
        self._producer_id_expiration_ms = producer_id_expiration_ms
        self._logs: dict[tuple[str, int], MemoryPartitionLog] = {}
        self._topic_ids: dict[tuple[str, int], bytes] = {}

    def get(self, topic: str, partition: int) -> MemoryPartitionLog | None:
        return self._logs.get((topic, partition))

    def create(
        self, topic: str, partition: int, config: LogConfig, topic_id: bytes
    ) -> MemoryPartitionLog:
        """The existing log of (topic, partition), or a new empty one."""
        key = (topic, partition)
        existing = self._logs.get(key)
        if existing is not None:
            if self._topic_ids[key] != topic_id:
                raise StorageError(
                    f"{topic}-{partition} exists with another topic id",
                    ErrorCode.INCONSISTENT_TOPIC_ID,
                )
            return existing
        log = MemoryPartitionLog(
            config, producer_id_expiration_ms=self._producer_id_expiration_ms
        )
        self._logs[key] = log
        self._topic_ids[key] = topic_id
        return log

    def delete(self, topic: str, partition: int) -> None:
        log = self._logs.pop((topic, partition), None)
        self._topic_ids.pop((topic, partition), None)
        if log is not None:
            log.close()

    def partitions(self) -> Sequence[tuple[str, int]]:
        return sorted(self._logs)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()


def _record_timestamps(batch: BatchHeader) -> Iterable[tuple[int, int]]:
    """(offset, timestamp) of each record of a stored batch."""
    for record in iter_records(batch):
        yield record_offset(batch, record), record_timestamp(batch, record)


def _offset_of_max_timestamp(batch: BatchHeader) -> int:
    """Kafka's RecordBatch.offsetOfMaxTimestamp: the first record holding max_timestamp (the
    last offset if no record does, which only a careless producer's header can cause)."""
    return next(
        (o for o, ts in _record_timestamps(batch) if ts == batch.max_timestamp), batch.last_offset
    )
