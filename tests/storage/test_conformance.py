"""The storage conformance suite: every engine (fixture `engine`) gives Kafka's answers.

Each test opens a fresh log through `engine.open(config)`; `engine.reopen()` checks that what
the disk engine stored comes back the same (skipped for memory).
"""

from __future__ import annotations

import struct
import time

import pytest

from josef.protocol.errors import ErrorCode
from josef.records.batch import (
    CRC_OFFSET,
    MAGIC_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET,
    RECORD_COUNT_OFFSET,
    BatchHeader,
    Compression,
    TimestampType,
    iter_batches,
)
from josef.records.builder import BatchBuilder
from josef.records.control import ControlRecordType, EndTransactionMarker, build_marker_batch
from josef.storage.api import LogConfig, PartitionLog
from josef.storage.errors import (
    CorruptRecord,
    InvalidRecord,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
    UnexpectedAppendOffset,
)
from josef.storage.producer_state import AppendOrigin
from tests.storage.conftest import LogFactory, build_batch

NOW = 1_700_000_000_000
EPOCH = 7


def batch_of(n: int, size: int = 10, first_ts: int = 1_000) -> bytes:
    values = [bytes([65 + i % 26]) * size for i in range(n)]
    return build_batch(values, [first_ts + i for i in range(n)])


SIZE = len(batch_of(2, size=40))  # fill_segments' batches
THREE_PER_SEGMENT = 3 * SIZE + SIZE // 2  # segment_bytes for three of them per segment


def headers(data: list[bytes | memoryview]) -> list[BatchHeader]:
    return [h for chunk in data for h in iter_batches(bytes(chunk))]


def read_all(log: PartitionLog) -> list[bytes]:
    """Every stored batch from log_start_offset to log_end_offset, by repeated reads (a read
    past the last batch is empty when truncation inside a batch left a gap at the end)."""
    out: list[bytes] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        if not data.records:
            break
        for header in headers(data.records):
            out.append(bytes(header.view()))
            offset = header.next_offset
    return out


def state(log: PartitionLog) -> tuple[int, int, int, list[bytes]]:
    return log.log_start_offset, log.log_end_offset, log.size_bytes, read_all(log)


def full_state(log: PartitionLog) -> tuple[object, ...]:
    return (
        state(log),
        log.high_watermark,
        log.offset_of_max_timestamp(),
        log.offset_for_timestamp(3_000),
    )


def set_hw_to_end(log: PartitionLog) -> None:
    log.set_high_watermark(log.log_end_offset)


# --- appends and reads ------------------------------------------------------------------------
def test_empty_log(engine: LogFactory) -> None:
    log = engine.open()
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (0, 0, 0)
    assert log.size_bytes == 0
    data = log.read(0, 1 << 20)
    assert data.records == [] and data.size == 0
    assert (data.log_start_offset, data.log_end_offset, data.high_watermark) == (0, 0, 0)
    assert log.offset_for_timestamp(0) is None
    assert log.offset_of_max_timestamp() is None


def test_offsets_are_assigned_contiguously(engine: LogFactory) -> None:
    log = engine.open()
    infos = [log.append_as_leader(batch_of(n), EPOCH, NOW) for n in (3, 1, 5)]
    assert [(i.first_offset, i.last_offset, i.record_count) for i in infos] == [
        (0, 2, 3),
        (3, 3, 1),
        (4, 8, 5),
    ]
    assert all(i.log_start_offset == 0 and i.log_append_time == -1 for i in infos)
    assert log.log_end_offset == 9
    stored = [BatchHeader(b) for b in read_all(log)]
    assert [(h.base_offset, h.last_offset) for h in stored] == [(0, 2), (3, 3), (4, 8)]
    assert all(h.partition_leader_epoch == EPOCH and h.crc_valid() for h in stored)


def test_round_trip_keeps_the_batch_bytes(engine: LogFactory) -> None:
    log = engine.open()
    produced = [batch_of(n, size=50 * n) for n in (1, 2, 4)]
    for batch in produced:
        log.append_as_leader(batch, EPOCH, NOW)
    stored = read_all(log)
    assert len(stored) == len(produced)
    assert log.size_bytes == sum(map(len, produced))
    for original, kept in zip(produced, stored, strict=True):
        # Only base_offset and partition_leader_epoch (outside the CRC) may differ.
        after_epoch = PARTITION_LEADER_EPOCH_OFFSET + 4
        assert kept[after_epoch:] == original[after_epoch:]
        assert kept[8:PARTITION_LEADER_EPOCH_OFFSET] == original[8:PARTITION_LEADER_EPOCH_OFFSET]


def test_several_batches_in_one_append(engine: LogFactory) -> None:
    log = engine.open()
    info = log.append_as_leader(batch_of(2) + batch_of(3) + batch_of(1), EPOCH, NOW)
    assert (info.first_offset, info.last_offset, info.record_count) == (0, 5, 6)
    stored = [BatchHeader(b) for b in read_all(log)]
    assert [(h.base_offset, h.last_offset) for h in stored] == [(0, 1), (2, 4), (5, 5)]


def test_read_from_the_middle_of_a_batch_returns_the_whole_batch(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(3), EPOCH, NOW)
    log.append_as_leader(batch_of(4), EPOCH, NOW)
    for offset in (3, 4, 5, 6):
        first = headers(log.read(offset, 1 << 20).records)[0]
        assert (first.base_offset, first.last_offset) == (3, 6)
    assert log.read(7, 1 << 20).records == []


def test_max_bytes_returns_whole_batches_only(engine: LogFactory) -> None:
    log = engine.open()
    sizes = []
    for _ in range(4):
        batch = batch_of(2, size=100)
        sizes.append(len(batch))
        log.append_as_leader(batch, EPOCH, NOW)
    data = log.read(0, sizes[0] + sizes[1] + sizes[2] // 2)
    assert [h.base_offset for h in headers(data.records)] == [0, 2]
    assert data.size == sizes[0] + sizes[1] == sum(map(len, data.records))
    data = log.read(0, sum(sizes))
    assert [h.base_offset for h in headers(data.records)] == [0, 2, 4, 6]


def test_kip74_first_batch_whole_even_if_larger_than_max_bytes(engine: LogFactory) -> None:
    log = engine.open()
    big = batch_of(5, size=300)
    log.append_as_leader(big, EPOCH, NOW)
    log.append_as_leader(batch_of(1), EPOCH, NOW)
    data = log.read(2, 10)
    assert [h.base_offset for h in headers(data.records)] == [0]
    assert data.size == len(big)
    assert log.read(2, 10, min_one_batch=False).records == []
    assert log.read(0, 0, min_one_batch=False).records == []
    assert [h.base_offset for h in headers(log.read(0, 0).records)] == [0]


def test_max_offset_is_exclusive_and_never_splits_a_batch(engine: LogFactory) -> None:
    log = engine.open()
    for n in (2, 3, 2):  # offsets [0,1] [2,4] [5,6]
        log.append_as_leader(batch_of(n), EPOCH, NOW)
    assert [h.base_offset for h in headers(log.read(0, 1 << 20, max_offset=5).records)] == [0, 2]
    # A batch holding max_offset is not returned, even partly.
    assert [h.base_offset for h in headers(log.read(0, 1 << 20, max_offset=4).records)] == [0]
    assert log.read(2, 1 << 20, max_offset=3).records == []
    assert log.read(5, 1 << 20, max_offset=5).records == []
    log.set_high_watermark(5)
    data = log.read(0, 1 << 20, max_offset=log.high_watermark)
    assert data.high_watermark == 5 and data.log_end_offset == 7
    assert [h.base_offset for h in headers(data.records)] == [0, 2]


def test_offset_out_of_range(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(4), EPOCH, NOW)
    log.append_as_leader(batch_of(4), EPOCH, NOW)
    assert log.read(8, 1 << 20).records == []  # at log_end_offset: empty, no error
    for offset in (-1, 9, 100):
        with pytest.raises(OffsetOutOfRange) as info:
            log.read(offset, 1 << 20)
        assert info.value.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    set_hw_to_end(log)
    assert log.delete_records_before(6) == 6
    with pytest.raises(OffsetOutOfRange):
        log.read(5, 1 << 20)
    first = headers(log.read(6, 1 << 20).records)[0]
    assert first.base_offset == 4  # the batch holding log_start_offset is served whole


@pytest.mark.parametrize("codec", list(Compression), ids=lambda c: c.name)
def test_compressed_batches_round_trip(engine: LogFactory, codec: Compression) -> None:
    log = engine.open()
    values = [b"compressible " * 20, b"x", None]
    produced = build_batch(values, [10, 30, 20], compression=codec)
    info = log.append_as_leader(produced, EPOCH, NOW)
    log.append_as_leader(build_batch(values, [40, 50, 60], compression=codec), EPOCH, NOW)
    assert (info.first_offset, info.last_offset, info.max_timestamp) == (0, 2, 30)
    first, second = (BatchHeader(b) for b in read_all(log))
    assert first.compression == codec and first.crc_valid()
    assert bytes(first.view())[16:] == produced[16:]
    assert (second.base_offset, second.last_offset) == (3, 5)
    found = log.offset_for_timestamp(25)
    assert found is not None and (found.timestamp, found.offset) == (30, 1)
    found = log.offset_of_max_timestamp()
    assert found is not None and (found.timestamp, found.offset) == (60, 5)


# --- high watermark, flush ------------------------------------------------------------------
def test_high_watermark_is_clamped_to_the_log(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(5), EPOCH, NOW)
    log.set_high_watermark(3)
    assert log.high_watermark == 3
    log.set_high_watermark(99)
    assert log.high_watermark == 5
    log.delete_records_before(2)
    log.set_high_watermark(0)
    assert log.high_watermark == 2


def test_flush_advances_the_recovery_point(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(3), EPOCH, NOW)
    assert log.recovery_point <= 3
    log.flush()
    assert log.recovery_point == 3


# --- timestamps -------------------------------------------------------------------------------
def test_offset_for_timestamp_finds_the_first_record_at_or_after(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(build_batch([b"a", b"b", b"c"], [100, 200, 300]), EPOCH, NOW)
    log.append_as_leader(build_batch([b"d", b"e"], [250, 400]), EPOCH + 1, NOW)
    found = log.offset_for_timestamp(0)
    assert found is not None and (found.timestamp, found.offset, found.leader_epoch) == (
        100,
        0,
        EPOCH,
    )
    found = log.offset_for_timestamp(150)
    assert found is not None and (found.timestamp, found.offset) == (200, 1)
    found = log.offset_for_timestamp(301)
    assert found is not None and (found.timestamp, found.offset, found.leader_epoch) == (
        400,
        4,
        EPOCH + 1,
    )
    assert log.offset_for_timestamp(401) is None


def test_offset_for_timestamp_skips_records_below_log_start(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(build_batch([b"a", b"b", b"c"], [100, 200, 300]), EPOCH, NOW)
    set_hw_to_end(log)
    log.delete_records_before(2)
    found = log.offset_for_timestamp(0)
    assert found is not None and (found.timestamp, found.offset) == (300, 2)


def test_offset_of_max_timestamp(engine: LogFactory) -> None:
    log = engine.open()
    info = log.append_as_leader(build_batch([b"a", b"b", b"c"], [100, 900, 300]), EPOCH, NOW)
    # AppendInfo is header-only (Kafka's shallowOffsetOfMaxTimestamp): the batch's last offset.
    assert (info.max_timestamp, info.offset_of_max_timestamp) == (900, 2)
    log.append_as_leader(build_batch([b"d", b"e"], [250, 900]), EPOCH + 1, NOW)
    found = log.offset_of_max_timestamp()
    assert found is not None and (found.timestamp, found.offset, found.leader_epoch) == (
        900,
        1,
        EPOCH,
    )
    log.append_as_leader(build_batch([b"f"], [901]), EPOCH + 2, NOW)
    found = log.offset_of_max_timestamp()
    assert found is not None and (found.timestamp, found.offset) == (901, 5)


def test_log_append_time(engine: LogFactory) -> None:
    log = engine.open(LogConfig(message_timestamp_type="LogAppendTime"))
    info = log.append_as_leader(build_batch([b"a", b"b"], [1, 2]), EPOCH, NOW)
    assert (info.log_append_time, info.max_timestamp, info.offset_of_max_timestamp) == (NOW, NOW, 0)
    (stored,) = [BatchHeader(b) for b in read_all(log)]
    assert stored.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert stored.max_timestamp == NOW and stored.crc_valid()
    found = log.offset_for_timestamp(NOW)
    assert found is not None and (found.timestamp, found.offset) == (NOW, 0)
    assert log.offset_for_timestamp(NOW + 1) is None


# --- truncation, DeleteRecords ----------------------------------------------------------------
def test_truncate_then_append_continues_at_the_offset(engine: LogFactory) -> None:
    log = engine.open()
    for n in (2, 3, 2):  # [0,1] [2,4] [5,6]
        log.append_as_leader(batch_of(n), EPOCH, NOW)
    set_hw_to_end(log)
    log.truncate_to(5)
    assert log.log_end_offset == 5 and log.high_watermark == 5
    assert [BatchHeader(b).base_offset for b in read_all(log)] == [0, 2]
    info = log.append_as_leader(batch_of(1), EPOCH + 1, NOW)
    assert info.first_offset == 5 and log.log_end_offset == 6
    log.truncate_to(100)  # at or past the end: nothing happens
    assert log.log_end_offset == 6


def test_truncate_inside_a_batch_removes_the_whole_batch(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(2), EPOCH, NOW)
    log.append_as_leader(batch_of(3), EPOCH, NOW)  # [2,4]
    log.truncate_to(3)
    assert log.log_end_offset == 3  # Kafka's LocalLog.truncateTo
    assert [BatchHeader(b).base_offset for b in read_all(log)] == [0]
    assert log.append_as_leader(batch_of(1), EPOCH, NOW).first_offset == 3


def test_truncate_to_zero_empties_the_log(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=300))
    for _ in range(6):
        log.append_as_leader(batch_of(2, size=40), EPOCH, NOW)
    log.truncate_to(0)
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (0, 0, 0)
    assert log.read(0, 1 << 20).records == []
    assert log.append_as_leader(batch_of(1), EPOCH, NOW).first_offset == 0


def test_delete_records_before_moves_log_start(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=300))
    for _ in range(8):
        log.append_as_leader(batch_of(2, size=40), EPOCH, NOW)
    with pytest.raises(OffsetOutOfRange):
        log.delete_records_before(1)  # above the high watermark (still 0)
    size_before = log.size_bytes
    log.set_high_watermark(16)
    assert log.delete_records_before(9) == 9
    assert log.log_start_offset == 9 and log.log_end_offset == 16
    assert log.size_bytes < size_before  # whole segments below log_start_offset went
    assert log.delete_records_before(4) == 9  # never moves back
    assert BatchHeader(read_all(log)[0]).base_offset == 8
    info = log.append_as_leader(batch_of(1), EPOCH, NOW)
    assert info.log_start_offset == 9


def test_delete_all_records_keeps_the_log_usable(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(3), EPOCH, NOW)
    set_hw_to_end(log)
    assert log.delete_records_before(3) == 3
    assert log.read(3, 1 << 20).records == []
    assert log.append_as_leader(batch_of(2), EPOCH, NOW).first_offset == 3
    assert [BatchHeader(b).base_offset for b in read_all(log)] == [3]


# --- segments and retention -------------------------------------------------------------------
def fill_segments(log: PartitionLog, batches: int, now_ms: int = NOW) -> int:
    """Append equal batches; returns the size of one."""
    batch = batch_of(2, size=40)
    for _ in range(batches):
        log.append_as_leader(batch, EPOCH, now_ms)
    return len(batch)


def by_bytes(retention_bytes: int) -> LogConfig:
    """Three batches per segment, retention by bytes only."""
    return LogConfig(
        segment_bytes=THREE_PER_SEGMENT, retention_bytes=retention_bytes, retention_ms=-1
    )


def test_retention_bytes_keeps_the_active_segment(engine: LogFactory) -> None:
    # Segments of three batches of two records start at offsets 0, 6, 12, 18.
    log = engine.open(by_bytes(0))
    size = fill_segments(log, 10)
    set_hw_to_end(log)
    assert log.apply_retention(NOW) == 3
    assert log.log_start_offset == 18 and log.log_end_offset == 20
    assert log.size_bytes == size
    assert log.apply_retention(NOW) == 0  # the active segment is never deleted
    with pytest.raises(OffsetOutOfRange):
        log.read(17, 1 << 20)


def test_retention_bytes_deletes_only_the_excess(engine: LogFactory) -> None:
    log = engine.open(by_bytes(SIZE * 5))
    fill_segments(log, 10)  # segments of 3, 3, 3, 1 batches
    set_hw_to_end(log)
    # 10 batches, 5 allowed: the first segment (3) goes, the second would leave only 4.
    assert log.apply_retention(NOW) == 1
    assert log.log_start_offset == 6
    assert log.size_bytes == SIZE * 7


def test_retention_ms_by_record_timestamps(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=THREE_PER_SEGMENT, retention_ms=1_000))
    for i in range(7):  # segments [0..5] ts 1000..1005, [6..11] ts 1006.., [12,13]
        log.append_as_leader(batch_of(2, size=40, first_ts=1_000 + i), EPOCH, NOW)
    set_hw_to_end(log)
    assert log.apply_retention(2_003) == 0  # newest of segment 0 is 1003: 1000 ms old
    assert log.apply_retention(2_004) == 1
    assert log.log_start_offset == 6
    assert log.apply_retention(10_000_000) == 1  # the active segment stays
    assert log.log_start_offset == 12
    assert log.log_end_offset == 14


def test_retention_stops_at_the_high_watermark(engine: LogFactory) -> None:
    log = engine.open(by_bytes(0))
    fill_segments(log, 10)
    log.set_high_watermark(11)  # only the segment [0, 6) lies wholly below it
    assert log.apply_retention(NOW) == 1
    assert log.log_start_offset == 6


def test_retention_off_with_minus_one(engine: LogFactory) -> None:
    config = LogConfig(segment_bytes=THREE_PER_SEGMENT, retention_bytes=-1, retention_ms=-1)
    log = engine.open(config)
    fill_segments(log, 10)
    set_hw_to_end(log)
    assert log.apply_retention(NOW * 2) == 0
    assert log.log_start_offset == 0


def test_roll_starts_a_new_segment(engine: LogFactory) -> None:
    log = engine.open(LogConfig(retention_bytes=0))
    fill_segments(log, 2)
    log.roll(NOW)
    log.roll(NOW)  # rolling an empty active segment does not make another one
    fill_segments(log, 1)
    set_hw_to_end(log)
    assert log.apply_retention(NOW) == 1
    assert log.log_start_offset == 4


def test_segment_ms_rolls_by_record_timestamps(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_ms=1_000, retention_bytes=0))
    log.append_as_leader(build_batch([b"a"], [5_000]), EPOCH, 5_000)
    log.append_as_leader(build_batch([b"b"], [6_000]), EPOCH, 6_000)  # not more than 1000
    log.append_as_leader(build_batch([b"c"], [6_001]), EPOCH, 6_001)  # rolls
    set_hw_to_end(log)
    assert log.apply_retention(6_001) == 1
    assert log.log_start_offset == 2


def test_without_timestamps_segment_age_and_retention_go_by_the_clock(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_ms=1_000, retention_ms=10_000, retention_bytes=-1))
    no_timestamp = build_batch([b"a", b"b"], [-1, -1])
    log.append_as_leader(no_timestamp, EPOCH, 4_000)
    log.roll(5_000)
    for now_ms in (5_000, 5_500, 6_000):  # within segment.ms of the segment's start
        log.append_as_leader(no_timestamp, EPOCH, now_ms)
    log.append_as_leader(no_timestamp, EPOCH, 6_001)  # rolls: segments at 0, 2, 8
    set_hw_to_end(log)
    assert log.offset_of_max_timestamp() is None
    assert log.offset_for_timestamp(0) is None
    # A segment without timestamps is as old as its last append.
    assert log.apply_retention(14_000) == 0
    assert log.apply_retention(14_001) == 1 and log.log_start_offset == 2
    assert log.apply_retention(16_000) == 0
    assert log.apply_retention(16_001) == 1 and log.log_start_offset == 8


def test_an_append_larger_than_a_segment_is_refused(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=200))
    with pytest.raises(RecordTooLarge) as info:
        log.append_as_leader(batch_of(3, size=80), EPOCH, NOW)
    assert info.value.error_code == ErrorCode.RECORD_LIST_TOO_LARGE
    assert log.log_end_offset == 0 and log.size_bytes == 0


# --- bad input --------------------------------------------------------------------------------
def corrupt_crc(batch: bytes) -> bytes:
    out = bytearray(batch)
    out[-1] ^= 0xFF
    return bytes(out)


def magic_1(batch: bytes) -> bytes:
    out = bytearray(batch)
    out[MAGIC_OFFSET] = 1
    return bytes(out)


def wrong_crc_field(batch: bytes) -> bytes:
    out = bytearray(batch)
    struct.pack_into(">I", out, CRC_OFFSET, 0)
    return bytes(out)


def base_offset_5(batch: bytes) -> bytes:
    out = bytearray(batch)
    struct.pack_into(">q", out, 0, 5)
    return bytes(out)


def one_more_record_declared(batch: bytes) -> bytes:
    """record_count no longer matches last_offset_delta + 1 (CRC recomputed: well formed)."""
    header = BatchHeader(bytearray(batch))
    struct.pack_into(">i", header.buf, RECORD_COUNT_OFFSET, header.record_count + 1)
    header.update_crc()
    return bytes(header.buf)


BAD_BATCHES = {
    "producer base_offset not 0": (base_offset_5, InvalidRecord, ErrorCode.INVALID_RECORD),
    "record_count mismatch": (one_more_record_declared, InvalidRecord, ErrorCode.INVALID_RECORD),
    "payload flipped": (corrupt_crc, CorruptRecord, ErrorCode.CORRUPT_MESSAGE),
    "crc zeroed": (wrong_crc_field, CorruptRecord, ErrorCode.CORRUPT_MESSAGE),
    "truncated": (lambda b: b[:-3], CorruptRecord, ErrorCode.CORRUPT_MESSAGE),
    "header only": (lambda b: b[:30], CorruptRecord, ErrorCode.CORRUPT_MESSAGE),
    "magic 1": (magic_1, InvalidRecord, ErrorCode.INVALID_RECORD),
    "empty": (lambda b: b"", InvalidRecord, ErrorCode.INVALID_RECORD),
}


@pytest.mark.parametrize("name", sorted(BAD_BATCHES))
def test_bad_batches_are_refused_and_the_log_is_unchanged(engine: LogFactory, name: str) -> None:
    mutate, error, code = BAD_BATCHES[name]
    log = engine.open()
    log.append_as_leader(batch_of(2), EPOCH, NOW)
    before = state(log)
    good = batch_of(3)
    bad = mutate(good)
    # Alone, and after a good batch in the same append: nothing of it may be stored.
    for records in (bad, good + bad) if bad else (bad,):
        with pytest.raises(error) as info:
            log.append_as_leader(records, EPOCH, NOW)
        assert info.value.error_code == code
        assert state(log) == before
    assert log.append_as_leader(good, EPOCH, NOW).first_offset == 2


def test_a_batch_above_max_message_bytes_is_refused(engine: LogFactory) -> None:
    log = engine.open(LogConfig(max_message_bytes=200))
    log.append_as_leader(batch_of(1), EPOCH, NOW)
    before = state(log)
    with pytest.raises(RecordTooLarge) as info:
        log.append_as_leader(batch_of(3, size=80), EPOCH, NOW)
    assert info.value.error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert state(log) == before


def test_the_caller_may_reuse_its_buffer(engine: LogFactory) -> None:
    log = engine.open()
    buf = bytearray(batch_of(2))
    log.append_as_leader(buf, EPOCH, NOW)
    before = read_all(log)
    buf[-5:] = b"XXXXX"
    struct.pack_into(">q", buf, 0, 77)
    assert read_all(log) == before
    assert log.append_as_leader(memoryview(bytes(batch_of(1))), EPOCH, NOW).first_offset == 2


def test_every_error_is_a_storage_error(engine: LogFactory) -> None:
    log = engine.open()
    for records in (b"\x00" * 70, b"junk", batch_of(1)[:-1]):
        with pytest.raises(StorageError):
            log.append_as_leader(records, EPOCH, NOW)
    assert log.log_end_offset == 0


# --- follower appends -------------------------------------------------------------------------
def test_follower_append_keeps_offsets_and_epochs(engine: LogFactory) -> None:
    leader = engine.open()
    leader.append_as_leader(batch_of(3), EPOCH, NOW)
    leader.append_as_leader(batch_of(2), EPOCH + 1, NOW)
    replicated = b"".join(read_all(leader))
    follower_log = engine.open_partition(1)
    info = follower_log.append_as_follower(replicated, NOW)
    assert (info.first_offset, info.last_offset, info.record_count) == (0, 4, 5)
    assert read_all(follower_log) == read_all(leader)
    with pytest.raises(UnexpectedAppendOffset):
        follower_log.append_as_follower(read_all(leader)[1], NOW)
    assert follower_log.log_end_offset == 5


def test_follower_append_accepts_gaps_and_refuses_disorder(engine: LogFactory) -> None:
    log = engine.open()
    gap = build_batch([b"x", b"y"], base_offset=10)
    info = log.append_as_follower(gap, NOW)
    assert (info.first_offset, info.last_offset, log.log_end_offset) == (10, 11, 12)
    assert headers(log.read(0, 1 << 20).records)[0].base_offset == 10
    disorder = build_batch([b"a"], base_offset=20) + build_batch([b"b"], base_offset=15)
    with pytest.raises(InvalidRecord):
        log.append_as_follower(disorder, NOW)
    assert log.log_end_offset == 12


def test_offsets_beyond_a_relative_int32_roll_the_segment(engine: LogFactory) -> None:
    log = engine.open(by_bytes(0))
    log.append_as_follower(build_batch([b"a"], base_offset=0), NOW)
    far = 2**31 + 5  # relative to base offset 0 this does not fit an int32 index entry
    log.append_as_follower(build_batch([b"b", b"c"], base_offset=far), NOW)
    set_hw_to_end(log)
    assert log.apply_retention(NOW) == 1
    assert log.log_start_offset == far and log.log_end_offset == far + 2


def test_log_append_time_from_a_config_update(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(build_batch([b"a"], [5]), EPOCH, NOW)
    log.update_config(LogConfig(message_timestamp_type="LogAppendTime"))
    info = log.append_as_leader(build_batch([b"b"], [6]), EPOCH, NOW + 1)
    assert (info.log_append_time, info.max_timestamp) == (NOW + 1, NOW + 1)
    first, second = (BatchHeader(b) for b in read_all(log))
    assert (first.timestamp_type, first.max_timestamp) == (TimestampType.CREATE_TIME, 5)
    assert (second.timestamp_type, second.max_timestamp) == (TimestampType.LOG_APPEND_TIME, NOW + 1)
    found = log.offset_for_timestamp(6)
    assert found is not None and (found.timestamp, found.offset) == (NOW + 1, 1)


# --- the set of partition logs ----------------------------------------------------------------
def test_partition_logs_create_get_delete(engine: LogFactory) -> None:
    log = engine.open()
    logs = engine.logs
    assert logs.get("conformance", 0) is log
    assert logs.create("conformance", 0, LogConfig(), bytes(range(16))) is log  # idempotent
    with pytest.raises(StorageError) as info:
        logs.create("conformance", 0, LogConfig(), bytes(16))
    assert info.value.error_code == ErrorCode.INCONSISTENT_TOPIC_ID
    other = logs.create("other.topic", 3, LogConfig(), bytes(16))
    other.append_as_leader(batch_of(2), EPOCH, NOW)
    assert sorted(logs.partitions()) == [("conformance", 0), ("other.topic", 3)]
    logs.delete("other.topic", 3)
    assert logs.get("other.topic", 3) is None
    assert list(logs.partitions()) == [("conformance", 0)]
    fresh = logs.create("other.topic", 3, LogConfig(), bytes(16))
    assert fresh.log_end_offset == 0


# --- reopen (disk) ----------------------------------------------------------------------------
def test_reopen_gives_the_same_state(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=THREE_PER_SEGMENT))
    for i in range(10):
        log.append_as_leader(batch_of(1 + i % 3, size=30, first_ts=1_000 * i), EPOCH + i // 4, NOW)
    log.set_high_watermark(12)
    log.delete_records_before(5)
    log.truncate_to(18)
    log.flush()
    before = full_state(log)
    log = engine.reopen()
    assert full_state(log) == before
    assert log.append_as_leader(batch_of(1), EPOCH, NOW).first_offset == 18


# --- producer state (idempotence, KIP-98) and leader epochs ---------------------------------
PID = 4_000


def now_ms() -> int:
    """Producer state expires by batch timestamps against the clock on a reopen: use now."""
    return time.time_ns() // 1_000_000


def idempotent(seq: int, n: int = 2, *, epoch: int = 0, pid: int = PID, txn: bool = False) -> bytes:
    builder = BatchBuilder(
        producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=txn
    )
    for i in range(n):
        builder.append(now_ms() + i, b"k", b"v%d" % (seq + i), [])
    return builder.build()


def test_a_retried_batch_returns_the_original_offsets_and_writes_nothing(
    engine: LogFactory,
) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(1), EPOCH, NOW)
    first = log.append_as_leader(idempotent(0), EPOCH, NOW)
    assert (first.first_offset, first.last_offset, first.duplicate) == (1, 2, False)
    log.append_as_leader(idempotent(2), EPOCH, NOW)
    before = state(log)
    retry = log.append_as_leader(idempotent(0), EPOCH, NOW)
    assert (retry.first_offset, retry.last_offset, retry.duplicate) == (1, 2, True)
    assert state(log) == before
    assert log.append_as_leader(idempotent(4), EPOCH, NOW).first_offset == 5


def test_a_sequence_gap_is_refused_and_the_log_is_unchanged(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(idempotent(0), EPOCH, NOW)
    before = state(log)
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent(5), EPOCH, NOW)
    assert raised.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state(log) == before
    assert log.append_as_leader(idempotent(2), EPOCH, NOW).first_offset == 2


def test_an_old_producer_epoch_is_fenced(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(idempotent(0, epoch=3), EPOCH, NOW)
    log.append_as_leader(idempotent(0, epoch=4), EPOCH, NOW)  # a new epoch restarts at 0
    before = state(log)
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent(2, epoch=3), EPOCH, NOW)
    assert raised.value.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent(7, epoch=5), EPOCH, NOW)  # a new epoch not at 0
    assert raised.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state(log) == before


def test_batches_without_a_producer_id_are_never_deduplicated(engine: LogFactory) -> None:
    log = engine.open()
    assert log.append_as_leader(batch_of(2), EPOCH, NOW).first_offset == 0
    assert log.append_as_leader(batch_of(2), EPOCH, NOW).first_offset == 2


def test_producer_state_survives_truncation(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=THREE_PER_SEGMENT))
    for seq in range(0, 12, 2):
        log.append_as_leader(idempotent(seq), EPOCH, NOW)
    log.truncate_to(8)  # keeps sequences 0..7
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent(10), EPOCH, NOW)
    assert raised.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append_as_leader(idempotent(6), EPOCH, NOW).duplicate
    assert log.append_as_leader(idempotent(8), EPOCH, NOW).first_offset == 8


@pytest.mark.parametrize("roll", [False, True])
def test_producer_state_survives_a_reopen(engine: LogFactory, roll: bool) -> None:
    log = engine.open(LogConfig(segment_bytes=THREE_PER_SEGMENT))
    for seq in range(0, 8, 2):
        log.append_as_leader(idempotent(seq), EPOCH, NOW)
    if roll:
        log.roll(NOW)
        log.append_as_leader(batch_of(1), EPOCH, NOW)
    log = engine.reopen()
    assert log.append_as_leader(idempotent(6), EPOCH, NOW).duplicate
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent(12), EPOCH, NOW)
    assert raised.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert not log.append_as_leader(idempotent(8), EPOCH, NOW).duplicate


def test_expired_producers_are_forgotten(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(idempotent(0), EPOCH, NOW)
    assert log.remove_expired_producers(now_ms()) == 0
    assert log.remove_expired_producers(now_ms() + 2 * 86_400_000) == 1
    # Unknown again: any sequence is accepted (KIP-360), no duplicate detection.
    assert not log.append_as_leader(idempotent(0), EPOCH, NOW).duplicate


def test_last_stable_offset_stops_at_an_open_transaction(engine: LogFactory) -> None:
    log = engine.open()
    log.append_as_leader(batch_of(2), EPOCH, NOW)
    log.set_high_watermark(2)
    assert log.last_stable_offset == 2
    log.append_as_leader(idempotent(0, txn=True), EPOCH, NOW)
    log.set_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == 2
    marker = build_marker_batch(
        0, PID, 0, EndTransactionMarker(ControlRecordType.ABORT, 0), now_ms()
    )
    log.append_as_leader(marker, EPOCH, NOW, AppendOrigin.COORDINATOR)
    assert log.last_stable_offset == 2  # the marker is not below the high watermark yet
    log.set_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == log.log_end_offset == 5


def test_leader_epochs_are_recorded(engine: LogFactory) -> None:
    log = engine.open(LogConfig(segment_bytes=THREE_PER_SEGMENT))
    log.append_as_leader(batch_of(2), 3, NOW)
    log.append_as_leader(batch_of(2), 3, NOW)
    log.append_as_leader(batch_of(2), 5, NOW)
    follower = bytearray(build_batch([b"x"], base_offset=6))
    struct.pack_into(">i", follower, PARTITION_LEADER_EPOCH_OFFSET, 8)
    follower[CRC_OFFSET : CRC_OFFSET + 4] = struct.pack(">I", BatchHeader(follower).compute_crc())
    log.append_as_follower(bytes(follower), NOW)
    cache = log.leader_epoch_cache
    assert [tuple(e) for e in cache.entries] == [(3, 0), (5, 4), (8, 6)]
    assert cache.end_offset_for(3, log.log_end_offset) == (3, 4)
    assert cache.end_offset_for(8, log.log_end_offset) == (8, 7)
    log.truncate_to(5)
    assert [tuple(e) for e in cache.entries] == [(3, 0), (5, 4)]
    log.set_high_watermark(5)
    log.delete_records_before(2)
    assert [tuple(e) for e in log.leader_epoch_cache.entries] == [(3, 2), (5, 4)]
    log = engine.reopen()
    assert [tuple(e) for e in log.leader_epoch_cache.entries] == [(3, 2), (5, 4)]
