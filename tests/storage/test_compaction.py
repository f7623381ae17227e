"""Log compaction over both engines (fixture `engine`), the disk cleaner's crash safety, and
the engine-independent rules of josef.storage.compaction."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from josef.records.batch import BatchHeader, Compression, iter_batches
from josef.records.builder import BatchBuilder
from josef.records.control import ControlRecordType, EndTransactionMarker, build_marker_batch
from josef.records.records import iter_records, record_timestamp
from josef.storage.api import LogConfig, PartitionLog
from josef.storage.compaction import (
    CleanStats,
    OffsetMap,
    SegmentSummary,
    group_segments,
    iter_record_keys,
    plan_cleaning,
)
from josef.storage.disk.cleaner import CLEANER_OFFSET_CHECKPOINT, LogCleaner
from josef.storage.disk.log import DiskPartitionLog
from josef.storage.disk.manager import DiskPartitionLogs
from josef.storage.memory import MemoryPartitionLog
from tests.storage.conftest import PARTITION, TOPIC, LogFactory

NOW = 1_700_000_000_000
HOUR = 3_600_000
EPOCH = 3
COMPACT = frozenset({"compact"})

Entry = tuple[bytes | None, bytes | None]  # (key, value); value None is a tombstone


def keyed_batch(
    entries: Sequence[Entry], timestamp: int = NOW, base_offset: int = 0,
    compression: Compression = Compression.NONE, producer_id: int = -1,
    transactional: bool = False, base_sequence: int = -1,
) -> bytes:
    builder = BatchBuilder(
        base_offset, compression=compression, producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1, base_sequence=base_sequence,
        is_transactional=transactional,
    )
    for key, value in entries:
        builder.append(timestamp, key, value)
    return builder.build()


def config(**overrides: object) -> LogConfig:
    values: dict[str, object] = {"cleanup_policy": COMPACT, "segment_bytes": 400}
    values.update(overrides)
    return LogConfig(**values)  # type: ignore[arg-type]


_cleaners: dict[int, tuple[DiskPartitionLogs, LogCleaner]] = {}


def clean(
    engine: LogFactory, log: PartitionLog, now_ms: int, *, force: bool = False,
    max_map_entries: int | None = None,
) -> CleanStats | None:
    """One cleaning round with the engine's cleaner (one LogCleaner per open disk manager,
    so that its state lasts as long as the log)."""
    kwargs = {} if max_map_entries is None else {"max_map_entries": max_map_entries}
    if isinstance(log, MemoryPartitionLog):
        return log.clean(now_ms, force=force, **kwargs)
    assert isinstance(log, DiskPartitionLog)
    logs = engine.logs
    assert isinstance(logs, DiskPartitionLogs)
    cached = _cleaners.get(id(logs))
    if cached is None or cached[0] is not logs or kwargs:
        cached = _cleaners[id(logs)] = (logs, LogCleaner(logs, **kwargs))  # type: ignore[arg-type]
    return cached[1].clean(log, now_ms, force=force)


def append(log: PartitionLog, batch: bytes) -> None:
    log.append_as_leader(batch, EPOCH, NOW)
    log.set_high_watermark(log.log_end_offset)


def stored_batches(log: PartitionLog) -> list[BatchHeader]:
    out: list[BatchHeader] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        if not data.records:
            break
        for chunk in data.records:
            for header in iter_batches(bytes(chunk)):
                out.append(header)
                offset = header.next_offset
    return out


def stored_records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every stored data record; checks CRCs and offset order."""
    out: list[tuple[int, bytes | None, bytes | None]] = []
    previous = -1
    for header in stored_batches(log):
        assert header.crc_valid(), header
        assert header.base_offset > previous or header.record_count == 0
        previous = header.last_offset
        if header.is_control:
            continue
        last = -1
        for record in iter_records(header):
            offset = header.base_offset + record.offset_delta
            assert offset > last and header.base_offset <= offset <= header.last_offset
            last = offset
            out.append((offset, record.key, record.value))
    offsets = [o for o, _, _ in out]
    assert offsets == sorted(set(offsets)), "offsets must increase without duplicates"
    return out


def latest(records: Sequence[tuple[int, bytes | None, bytes | None]]) -> dict[bytes, bytes | None]:
    result: dict[bytes, bytes | None] = {}
    for _offset, key, value in records:
        if key is not None:
            result[key] = value
    return result


def fill(log: PartitionLog, rounds: int, keys: int, tombstone_every: int = 0) -> list[
    tuple[int, bytes | None, bytes | None]
]:
    """Append `rounds` x `keys` single-record batches; returns what was appended."""
    written: list[tuple[int, bytes | None, bytes | None]] = []
    for r in range(rounds):
        for k in range(keys):
            key = b"key-%d" % k
            value: bytes | None = b"value-%d-%d" % (k, r)
            if tombstone_every and (r * keys + k) % tombstone_every == tombstone_every - 1:
                value = None
            offset = log.log_end_offset
            append(log, keyed_batch([(key, value)]))
            written.append((offset, key, value))
    return written


def check_compacted(
    log: PartitionLog, written: Sequence[tuple[int, bytes | None, bytes | None]]
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every remaining record was written at its offset; every key's latest value is there."""
    remaining = stored_records(log)
    assert set(remaining) <= set(written)
    present = {(o, k, v) for o, k, v in remaining}
    last_of: dict[bytes | None, tuple[int, bytes | None, bytes | None]] = {}
    for entry in written:
        last_of[entry[1]] = entry
    for key, entry in last_of.items():
        if key is not None and entry[2] is not None:
            assert entry in present, f"latest value of {key!r} lost"
    readable = latest(remaining)
    for key, value in readable.items():  # nothing older shows through (no resurrection)
        assert value == last_of[key][2], f"{key!r} reads {value!r}, not its latest"
    return remaining


# --- both engines -------------------------------------------------------------------------------
def test_latest_value_per_key_with_offsets_kept(engine: LogFactory) -> None:
    log = engine.open(config())
    written = fill(log, rounds=6, keys=4)
    before_active = [(o, k, v) for o, k, v in stored_records(log)]
    stats = clean(engine, log, NOW)
    assert stats is not None and stats.records_removed > 0
    remaining = check_compacted(log, written)
    assert len(remaining) < len(before_active)
    offsets = [o for o, _, _ in remaining]
    assert offsets != list(range(len(written))) and log.log_start_offset == 0, "gaps expected"
    assert log.log_end_offset == len(written)
    # Below the cleaned end every key appears once.
    cleaned = [k for o, k, _ in remaining if o < stats.end_offset]
    assert len(cleaned) == len(set(cleaned))


def test_active_segment_untouched(engine: LogFactory) -> None:
    log = engine.open(config(segment_bytes=1 << 20))  # everything in the active segment
    written = fill(log, rounds=3, keys=2)
    assert clean(engine, log, NOW, force=True) is None
    assert stored_records(log) == written


def test_nothing_happens_below_the_dirty_ratio(engine: LogFactory) -> None:
    log = engine.open(config(min_cleanable_dirty_ratio=0.99))
    written = fill(log, rounds=4, keys=3)
    assert clean(engine, log, NOW) is not None  # never cleaned: everything is dirty (1.0)
    after_first = stored_records(log)
    fill_more = fill(log, rounds=1, keys=1)
    assert clean(engine, log, NOW) is None  # little new dirt: ratio below 0.99
    assert stored_records(log) == after_first + fill_more
    check_compacted(log, written + fill_more)


def test_tombstones_go_only_after_delete_retention(engine: LogFactory) -> None:
    retention = HOUR
    log = engine.open(config(delete_retention_ms=retention))
    append(log, keyed_batch([(b"a", b"1"), (b"b", b"1")]))
    append(log, keyed_batch([(b"a", None)]))  # tombstone for a
    append(log, keyed_batch([(b"c", b"1")]))
    fill(log, rounds=4, keys=2)  # other keys, several segments
    log.roll(NOW)
    first = clean(engine, log, NOW)
    assert first is not None
    records = stored_records(log)
    assert (2, b"a", None) in records and not any(k == b"a" and v for _, k, v in records)
    horizon_batch = next(h for h in stored_batches(log) if h.base_offset <= 2 <= h.last_offset)
    assert horizon_batch.has_delete_horizon and horizon_batch.base_timestamp == NOW + retention
    # Record timestamps survive the horizon in base_timestamp.
    assert all(record_timestamp(horizon_batch, r) == NOW for r in iter_records(horizon_batch))
    clean(engine, log, NOW + retention - 1, force=True)
    assert (2, b"a", None) in stored_records(log)
    assert clean(engine, log, NOW + retention) is not None  # due: the horizon has passed
    assert not any(k == b"a" for _, k, _ in stored_records(log))


def test_truncation_below_the_checkpoint_is_cleaned_again(engine: LogFactory) -> None:
    retention = HOUR
    log = engine.open(config(delete_retention_ms=retention))
    written = fill(log, rounds=4, keys=2)  # key-0 at even offsets, key-1 at odd ones
    log.roll(NOW)
    first = clean(engine, log, NOW)
    assert first is not None and first.end_offset == len(written)
    log.truncate_to(7)  # below the checkpoint: key-1's latest (7) is replaced
    written = written[:7]
    for value in (None, b"again"):  # a tombstone for key-0, then a value for key-1
        key = b"key-0" if value is None else b"key-1"
        written.append((log.log_end_offset, key, value))
        append(log, keyed_batch([(key, value)]))
    log.roll(NOW)
    clean(engine, log, NOW, force=True)
    clean(engine, log, NOW + retention, force=True)  # the tombstone's horizon has passed
    remaining = check_compacted(log, written)
    assert not any(k == b"key-0" for _, k, _ in remaining), "no older key-0 shows through"


def test_min_compaction_lag(engine: LogFactory) -> None:
    lag = HOUR
    log = engine.open(config(min_compaction_lag_ms=lag))
    old = fill(log, rounds=3, keys=2)  # timestamps NOW
    log.roll(NOW)
    young: list[tuple[int, bytes | None, bytes | None]] = []
    for r in range(3):
        offset = log.log_end_offset
        append(log, keyed_batch([(b"key-0", b"young-%d" % r)], timestamp=NOW + lag))
        young.append((offset, b"key-0", b"young-%d" % r))
    log.roll(NOW)
    stats = clean(engine, log, NOW + lag + lag // 2)  # old are past the lag, young are not
    assert stats is not None and stats.end_offset == len(old)
    records = stored_records(log)
    assert all(entry in records for entry in young), "segments within the lag are untouched"
    assert [e for e in records if e[0] < len(old)] == [e for e in old[-2:]]


def test_max_compaction_lag_makes_a_log_due(engine: LogFactory) -> None:
    log = engine.open(config(min_cleanable_dirty_ratio=0.99, max_compaction_lag_ms=HOUR))
    written = fill(log, rounds=2, keys=2)
    log.roll(NOW)
    assert clean(engine, log, NOW) is not None  # first round: ratio 1.0 > 0.99
    more = fill(log, rounds=1, keys=1)
    log.roll(NOW)
    assert clean(engine, log, NOW + HOUR // 2) is None
    assert clean(engine, log, NOW + 2 * HOUR) is not None  # dirty data older than the lag
    check_compacted(log, written + more)


def test_compact_and_delete_applies_retention_too(engine: LogFactory) -> None:
    log = engine.open(
        config(cleanup_policy=frozenset({"compact", "delete"}), retention_ms=HOUR)
    )
    fill(log, rounds=3, keys=2)  # timestamps NOW
    log.roll(NOW)
    later = []
    for r in range(3):
        offset = log.log_end_offset
        append(log, keyed_batch([(b"key-0", b"late-%d" % r)], timestamp=NOW + 2 * HOUR))
        later.append((offset, b"key-0", b"late-%d" % r))
    log.roll(NOW)
    assert log.apply_retention(NOW + 2 * HOUR) > 0
    assert log.log_start_offset >= 6
    clean(engine, log, NOW + 2 * HOUR, force=True)
    assert stored_records(log) == [later[-1]]


def test_compressed_batches_are_rebuilt_with_their_codec(engine: LogFactory) -> None:
    log = engine.open(config(segment_bytes=2000))
    for n, codec in enumerate((Compression.GZIP, Compression.ZSTD, Compression.NONE)):
        entries: list[Entry] = [(b"k%d" % (5 * n + i), b"v") for i in range(5)]
        append(log, keyed_batch(entries, compression=codec))
    untouched = keyed_batch([(b"solo", b"x")], compression=Compression.LZ4)
    append(log, untouched)
    append(log, keyed_batch([(b"k1", b"new"), (b"k3", b"new")], compression=Compression.SNAPPY))
    log.roll(NOW)
    assert clean(engine, log, NOW, force=True) is not None
    batches = stored_batches(log)
    assert [h.compression for h in batches] == [
        Compression.GZIP, Compression.ZSTD, Compression.NONE, Compression.LZ4, Compression.SNAPPY
    ]
    first = batches[0]  # k1 and k3 removed; the batch keeps its offsets and last delta
    assert (first.base_offset, first.last_offset, first.record_count) == (0, 4, 3)
    assert [r.offset_delta for r in iter_records(first)] == [0, 2, 4]
    assert batches[1].record_count == 5 and batches[2].record_count == 5
    assert bytes(batches[3].view())[16:] == untouched[16:], "a kept batch is copied as is"
    assert {k: v for k, v in latest(stored_records(log)).items() if v != b"v"} == {
        b"k1": b"new", b"k3": b"new", b"solo": b"x"
    }
    assert len(latest(stored_records(log))) == 16


def test_records_without_key_are_kept(engine: LogFactory) -> None:
    log = engine.open(config())
    append(log, keyed_batch([(None, b"loose"), (b"k", b"1")]))
    append(log, keyed_batch([(b"k", b"2")]))
    fill(log, rounds=3, keys=2)
    log.roll(NOW)
    clean(engine, log, NOW, force=True)
    records = stored_records(log)
    assert (0, None, b"loose") in records and (1, b"k", b"1") not in records


def test_a_small_offset_map_cleans_in_several_rounds(engine: LogFactory) -> None:
    log = engine.open(config(segment_bytes=1 << 20))
    written = fill(log, rounds=3, keys=6)  # 6 keys, 18 records, one segment
    log.roll(NOW)
    first = clean(engine, log, NOW, max_map_entries=2)
    assert first is not None and first.map_entries == 2
    assert 0 < first.end_offset < len(written)  # stopped where the map filled
    check_compacted(log, written)
    end = first.end_offset
    for _ in range(20):
        if end == len(written):
            break
        stats = clean(engine, log, NOW, force=True, max_map_entries=2)
        assert stats is not None and stats.end_offset > end
        end = stats.end_offset
    assert end == len(written)
    remaining = check_compacted(log, written)
    assert sorted(k for _, k, _ in remaining if k is not None) == sorted(
        {k for _, k, _ in written if k is not None}
    )


def test_transactions_aborted_data_removed_markers_kept_until_horizon(
    engine: LogFactory,
) -> None:
    retention = HOUR
    log = engine.open(config(segment_bytes=1 << 20, delete_retention_ms=retention))
    pid_commit, pid_abort = 1000, 2000

    def follower(batch: bytes) -> None:
        log.append_as_follower(batch, NOW)
        log.set_high_watermark(log.log_end_offset)

    def marker(offset: int, pid: int, kind: ControlRecordType) -> bytes:
        return build_marker_batch(offset, pid, 0, EndTransactionMarker(kind, 5), NOW)

    follower(keyed_batch([(b"t", b"committed")], base_offset=0, producer_id=pid_commit,
                         transactional=True, base_sequence=0))
    follower(keyed_batch([(b"t", b"aborted"), (b"u", b"aborted")], base_offset=1,
                         producer_id=pid_abort, transactional=True, base_sequence=0))
    follower(marker(3, pid_commit, ControlRecordType.COMMIT))
    follower(marker(4, pid_abort, ControlRecordType.ABORT))
    follower(keyed_batch([(b"t", b"plain")], base_offset=5))
    follower(keyed_batch([(b"t", b"later")], base_offset=6, producer_id=pid_commit,
                         transactional=True, base_sequence=1))
    follower(marker(7, pid_commit, ControlRecordType.COMMIT))
    follower(keyed_batch([(b"t", b"plain-2")], base_offset=8))
    log.roll(NOW)
    assert clean(engine, log, NOW, force=True) is not None
    batches = {h.base_offset: h for h in stored_batches(log)}
    records = stored_records(log)
    assert not any(v == b"aborted" for _, _, v in records), "aborted data is removed"
    assert latest(records)[b"t"] == b"plain-2"
    # pid_abort's only data batch is its last one: kept empty, offsets intact.
    assert batches[1].record_count == 0 and batches[1].last_offset == 2
    # pid_commit's last data batch (offset 6) is kept empty; its first one (0) goes.
    assert 0 not in batches and batches[6].record_count == 0
    # Markers stay while a batch of their transaction was seen in the round (Kafka).
    assert all(batches[o].is_control and not batches[o].has_delete_horizon for o in (3, 4, 7))
    assert clean(engine, log, NOW, force=True) is not None
    batches = {h.base_offset: h for h in stored_batches(log)}
    assert batches[3].has_delete_horizon, "its transaction has no batch left: horizon set"
    assert batches[3].base_timestamp == NOW + retention
    assert not batches[4].has_delete_horizon, "the producer's emptied last batch is its txn's"
    clean(engine, log, NOW + retention - 1, force=True)
    assert 3 in {h.base_offset for h in stored_batches(log)}
    assert clean(engine, log, NOW + retention, force=True) is not None
    after = {h.base_offset for h in stored_batches(log)}
    assert 3 not in after, "a marker goes after its delete horizon"
    assert {1, 4, 6, 7} <= after
    assert latest(stored_records(log))[b"t"] == b"plain-2"


def test_producer_last_batch_is_kept_empty_until_it_writes_again(engine: LogFactory) -> None:
    log = engine.open(config(segment_bytes=1 << 20))
    log.append_as_follower(
        keyed_batch([(b"a", b"1")], base_offset=0, producer_id=5, base_sequence=0), NOW
    )
    log.append_as_follower(keyed_batch([(b"a", b"2")], base_offset=1), NOW)
    log.roll(NOW)
    log.set_high_watermark(log.log_end_offset)
    clean(engine, log, NOW, force=True)
    first = stored_batches(log)[0]
    assert (first.base_offset, first.record_count, first.producer_id) == (0, 0, 5)
    assert first.base_sequence == 0 and first.crc_valid()
    log.append_as_follower(
        keyed_batch([(b"b", b"1")], base_offset=2, producer_id=5, base_sequence=1), NOW
    )
    log.roll(NOW)
    log.set_high_watermark(log.log_end_offset)
    clean(engine, log, NOW, force=True)
    assert [h.base_offset for h in stored_batches(log)] == [1, 2], "the empty batch went"


def test_abort_marker_in_the_active_segment_still_aborts(engine: LogFactory) -> None:
    log = engine.open(config(segment_bytes=1 << 20))
    log.append_as_follower(keyed_batch([(b"k", b"1")], base_offset=0), NOW)
    log.append_as_follower(
        keyed_batch([(b"k", b"aborted")], base_offset=1, producer_id=7, transactional=True,
                    base_sequence=0), NOW,
    )
    log.roll(NOW)
    marker = EndTransactionMarker(ControlRecordType.ABORT, 1)
    log.append_as_follower(build_marker_batch(2, 7, 0, marker, NOW), NOW)
    log.set_high_watermark(log.log_end_offset)
    assert clean(engine, log, NOW, force=True) is not None
    assert stored_records(log) == [(0, b"k", b"1")]


def test_open_transaction_bounds_the_cleanable_range(engine: LogFactory) -> None:
    log = engine.open(config(segment_bytes=1 << 20))
    log.append_as_follower(keyed_batch([(b"k", b"1")], base_offset=0), NOW)
    log.append_as_follower(
        keyed_batch([(b"k", b"open")], base_offset=1, producer_id=7, transactional=True,
                    base_sequence=0), NOW,
    )
    log.append_as_follower(keyed_batch([(b"k", b"2")], base_offset=2), NOW)
    log.roll(NOW)
    log.set_high_watermark(log.log_end_offset)
    stats = clean(engine, log, NOW, force=True)
    assert stats is None or stats.end_offset <= 1
    assert [v for _, _, v in stored_records(log)] == [b"1", b"open", b"2"]


@settings(max_examples=30, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(0, 4), st.booleans()),
            st.tuples(st.just("roll"), st.just(0), st.just(False)),
            st.tuples(st.just("clean"), st.just(0), st.just(False)),
        ),
        max_size=30,
    )
)
def test_engines_agree(ops: list[tuple[str, int, bool]]) -> None:
    """The same appends, rounds and retention give the same bytes on disk as in memory."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("memory", "disk"):
            factory = LogFactory(kind, Path(tmp) / kind)
            log = factory.open(config(
                cleanup_policy=frozenset({"compact", "delete"}), delete_retention_ms=3 * 60_000,
                retention_ms=20 * 60_000, segment_bytes=250,
            ))
            now = NOW
            for op, key, tombstone in ops:
                now += 60_000
                if op == "append":
                    value = None if tombstone else b"v%d" % now
                    append(log, keyed_batch([(b"k%d" % key, value)], timestamp=now))
                elif op == "roll":
                    log.roll(now)
                else:
                    clean(factory, log, now)
                    log.apply_retention(now)
            results.append(
                ([bytes(h.view()) for h in stored_batches(log)], log.size_bytes,
                 log.log_start_offset, log.log_end_offset)
            )
            factory.close()
    assert results[0] == results[1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.lists(
                st.tuples(st.integers(0, 5), st.one_of(st.none(), st.binary(max_size=8))),
                min_size=1, max_size=4,
            ), st.sampled_from([Compression.NONE, Compression.GZIP, Compression.LZ4])),
            st.tuples(st.just("roll"), st.just([]), st.just(Compression.NONE)),
            st.tuples(st.just("clean"), st.just([]), st.just(Compression.NONE)),
        ),
        max_size=40,
    ),
    map_entries=st.integers(1, 8),
)
def test_compaction_keeps_latest_values(
    engine: LogFactory, ops: list[tuple[str, list[tuple[int, bytes | None]], Compression]],
    map_entries: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        factory = LogFactory(engine.kind, Path(tmp))
        log = factory.open(config(segment_bytes=300, delete_retention_ms=5 * 60_000))
        written: list[tuple[int, bytes | None, bytes | None]] = []
        now = NOW
        for op, entries, codec in ops:
            now += 60_000
            if op == "append":
                offset = log.log_end_offset
                batch_entries: list[Entry] = [(b"k%d" % k, v) for k, v in entries]
                append(log, keyed_batch(batch_entries, timestamp=now, compression=codec))
                written += [(offset + i, k, v) for i, (k, v) in enumerate(batch_entries)]
            elif op == "roll":
                log.roll(now)
            else:
                clean(factory, log, now, force=True, max_map_entries=map_entries)
        clean(factory, log, now, force=True, max_map_entries=map_entries)
        check_compacted(log, written)
        if factory.kind == "disk":
            reopened = factory.reopen()
            check_compacted(reopened, written)
        factory.close()


# --- disk only: crash safety --------------------------------------------------------------------
def _prepare_swap(
    tmp_path: Path,
) -> tuple[list[tuple[int, bytes | None, bytes | None]], Path, list[list[int]]]:
    """A closed disk log whose cleaning round stopped after writing its `.swap` files; also
    the base offsets of the old segments of each swapped group."""
    logs = DiskPartitionLogs([tmp_path])
    log = logs.create(TOPIC, PARTITION, config(segment_bytes=1000), bytes(16))
    written: list[tuple[int, bytes | None, bytes | None]] = []
    for i in range(6):  # keys written once: the cleaned segments are not empty
        written.append((log.log_end_offset, b"once-%d" % i, b"x"))
        append(log, keyed_batch([(b"once-%d" % i, b"x")]))
        if i % 2:
            log.roll(NOW)
    for _ in range(4):
        written += fill(log, rounds=1, keys=3)
        log.roll(NOW)
    cleaner = LogCleaner(logs)
    job = cleaner.begin(log, NOW, force=True)
    job.run()
    assert job.error is None and job.groups, "the round has something to swap"
    groups = [[s.base_offset for s in g.old] for g in job.groups]
    assert any(len(g) > 1 for g in groups)
    logs.close()  # the crash: finish() never runs
    return written, tmp_path / f"{TOPIC}-{PARTITION}", groups


def _reopen(tmp_path: Path) -> tuple[DiskPartitionLogs, DiskPartitionLog]:
    logs = DiskPartitionLogs([tmp_path], config_for=lambda _topic: config(segment_bytes=250))
    log = logs.get(TOPIC, PARTITION)
    assert isinstance(log, DiskPartitionLog)
    return logs, log


@pytest.mark.parametrize(
    "state", ["cleaned", "swap", "swap-some-old-deleted", "swap-all-old-deleted"]
)
def test_crash_during_swap_loses_nothing(tmp_path: Path, state: str) -> None:
    written, directory, groups = _prepare_swap(tmp_path)
    swaps = sorted(p for p in directory.iterdir() if p.name.endswith(".log.swap"))
    assert len(swaps) == len(groups)
    if state == "cleaned":
        for swap in swaps:
            swap.rename(str(swap)[: -len(".swap")] + ".cleaned")
    elif state != "swap":
        for group in groups:  # the loop deletes a group's old segments newest first
            doomed = group[-1:] if state == "swap-some-old-deleted" else group
            for base in doomed:
                for suffix in (".index", ".timeindex", ".log"):
                    (directory / f"{base:020d}{suffix}").unlink(missing_ok=True)
    logs, log = _reopen(tmp_path)
    try:
        remaining = check_compacted(log, written)
        assert log.log_end_offset == len(written)
        leftovers = [p.name for p in directory.iterdir() if p.name.endswith((".swap", ".cleaned"))]
        assert leftovers == []
        if state == "cleaned":
            assert remaining == written, "rolled back: the old segments are all there"
        else:
            assert len(remaining) < len(written)
        assert LogCleaner(logs).clean(log, NOW, force=True) is not None
        check_compacted(log, written)
    finally:
        logs.close()


def test_disk_cleaner_checkpoint_file_and_reopen(tmp_path: Path) -> None:
    logs = DiskPartitionLogs([tmp_path])
    log = logs.create(TOPIC, PARTITION, config(), bytes(16))
    written = fill(log, rounds=5, keys=3)
    cleaner = LogCleaner(logs)
    stats = cleaner.clean(log, NOW)
    assert stats is not None
    text = (tmp_path / CLEANER_OFFSET_CHECKPOINT).read_text().split("\n")
    assert text[:3] == ["0", "1", f"{TOPIC} {PARTITION} {stats.end_offset}"]
    before = stored_records(log)
    logs.close()
    logs, log = _reopen(tmp_path)
    try:
        assert stored_records(log) == before
        assert LogCleaner(logs).checkpoint_of(log) == stats.end_offset
        check_compacted(log, written)
        assert not any(p.suffix == ".swap" for p in (tmp_path / f"{TOPIC}-{PARTITION}").iterdir())
    finally:
        logs.close()


def test_round_is_dropped_when_retention_deletes_its_segments(tmp_path: Path) -> None:
    logs = DiskPartitionLogs([tmp_path])
    log = logs.create(
        TOPIC, PARTITION, config(cleanup_policy=frozenset({"compact", "delete"}),
                                 retention_ms=HOUR), bytes(16),
    )
    written = fill(log, rounds=4, keys=3)
    log.roll(NOW)
    cleaner = LogCleaner(logs)
    job = cleaner.begin(log, NOW, force=True)
    job.run()  # meanwhile, on the loop: retention deletes the oldest segment
    assert log.apply_retention(NOW + 2 * HOUR) > 0
    assert cleaner.finish(job) is None
    directory = tmp_path / f"{TOPIC}-{PARTITION}"
    assert not any(p.name.endswith((".swap", ".cleaned")) for p in directory.iterdir())
    assert stored_records(log) == [w for w in written if w[0] >= log.log_start_offset]
    logs.close()


def test_clean_once_runs_on_a_worker_while_appends_continue(tmp_path: Path) -> None:
    logs = DiskPartitionLogs([tmp_path])
    log = logs.create(TOPIC, PARTITION, config(), bytes(16))
    written = fill(log, rounds=5, keys=3)
    cleaner = LogCleaner(logs)
    assert cleaner.filthiest(NOW) is log
    more: list[tuple[int, bytes | None, bytes | None]] = []

    async def main() -> CleanStats | None:
        task = asyncio.ensure_future(cleaner.clean_once(NOW))
        while not task.done():  # the loop stays free: append while the worker cleans
            more.extend(fill(log, rounds=1, keys=1))
            await asyncio.sleep(0)
        return await task

    stats = asyncio.run(main())
    assert stats is not None and more
    check_compacted(log, written + more)
    logs.close()


# --- engine-independent rules -------------------------------------------------------------------
def test_offset_map_is_bounded() -> None:
    offset_map = OffsetMap(max_entries=2)
    assert offset_map.put(b"a", 1) and offset_map.put(b"b", 2)
    assert offset_map.put(b"a", 3), "an existing key is updated when full"
    assert not offset_map.put(b"c", 4)
    assert (offset_map.get(b"a"), offset_map.get(b"b"), offset_map.get(b"c")) == (3, 2, -1)
    assert len(offset_map) == 2 and offset_map.latest_offset == 3


def summary(base: int, size: int = 100, largest: int = NOW, first: int = NOW) -> SegmentSummary:
    return SegmentSummary(base, size, largest, first)


def test_plan_dirty_ratio_and_lags() -> None:
    segments = [summary(0), summary(10), summary(20), summary(30, size=0)]
    plan = plan_cleaning(segments, 0, 30, 10, 30, config(), NOW)
    assert (plan.first_dirty_offset, plan.first_uncleanable_offset) == (10, 30)
    assert (plan.clean_bytes, plan.dirty_bytes) == (100, 200)
    assert plan.dirty_ratio == pytest.approx(2 / 3) and plan.is_due(config())
    assert not plan.is_due(config(min_cleanable_dirty_ratio=0.7))
    # Bad checkpoints restart from the log start.
    assert plan_cleaning(segments, 0, 30, 99, 30, config(), NOW).first_dirty_offset == 0
    # The last stable offset (open transaction or high watermark) bounds the range.
    assert plan_cleaning(segments, 0, 30, 0, 15, config(), NOW).first_uncleanable_offset == 15
    # min.compaction.lag.ms: the first segment with a record younger than the lag stops it.
    young = [summary(0), summary(10, largest=NOW + 5), summary(20), summary(30)]
    lagged = plan_cleaning(young, 0, 30, 0, 30, config(min_compaction_lag_ms=10), NOW + 10)
    assert lagged.first_uncleanable_offset == 10
    # max.compaction.lag.ms: dirty data older than the lag makes the log due at any ratio.
    overdue = plan_cleaning(
        segments, 0, 30, 10, 30, config(max_compaction_lag_ms=100, min_cleanable_dirty_ratio=0.9),
        NOW + 150,
    )
    assert overdue.max_compaction_delay_ms == 50 and overdue.is_due(config())


def test_group_segments_fit_one_segment() -> None:
    segments = [summary(0, 150), summary(10, 150), summary(20, 150), summary(30, 50), summary(40)]
    assert group_segments(segments, 40, 300) == [[0, 1], [2, 3]]
    assert group_segments(segments, 15, 300) == [[0, 1]]
    assert group_segments(segments, 40, 100) == [[0], [1], [2], [3]]


@given(
    records=st.lists(
        st.tuples(
            st.one_of(st.none(), st.binary(max_size=20)),
            st.one_of(st.none(), st.binary(max_size=300)),
            st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))),
                     max_size=2),
        ),
        min_size=1, max_size=10,
    ),
    codec=st.sampled_from(list(Compression)),
)
def test_record_keys_match_full_decoding(
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    codec: Compression,
) -> None:
    builder = BatchBuilder(compression=codec)
    for key, value, headers in records:
        builder.append(NOW, key, value, headers)
    header = BatchHeader(builder.build())
    expected = [(r.offset_delta, r.key, r.value is None) for r in iter_records(header)]
    assert [tuple(k) for k in iter_record_keys(header)] == expected


def test_read_carries_min_one_batch_over_a_segment_emptied_by_cleaning(tmp_path: Path) -> None:
    """Found by the stateful model test: the first segment loses every record to a later
    one's, the cleaner leaves it empty, and a fetch at its offsets with no byte budget
    (max_bytes 0, min_one_batch, as a Fetch of max.partition.fetch.bytes too small for the
    next batch) must still get the first batch after it, as Kafka's read moves on to the
    next segment with minOneMessage."""
    logs = DiskPartitionLogs([tmp_path])
    # Two one-batch segments do not fit one: each is a cleaning group of its own.
    log = logs.create(TOPIC, PARTITION, config(segment_bytes=120), bytes(16))
    try:
        append(log, keyed_batch([(b"a", b"old")]))
        log.roll(NOW)
        append(log, keyed_batch([(b"a", b"new")]))
        log.roll(NOW)
        assert LogCleaner(logs).clean(log, NOW, force=True) is not None
        first = log.segments[0]
        assert (first.base_offset, first.size) == (0, 0)
        data = log.read(0, 0, None, min_one_batch=True)
        (kept,) = [BatchHeader(bytes(chunk)) for chunk in data.records]
        assert (kept.base_offset, data.size) == (1, kept.size)
    finally:
        logs.close()
