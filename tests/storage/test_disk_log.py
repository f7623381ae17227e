"""Disk-engine specifics: rolling, segment files, indexes, reads across segments, checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from josef.records.batch import BatchHeader, Compression, TimestampType, iter_batches
from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog, DiskPartitionLogs
from josef.storage.disk.checkpoint import (
    CLEAN_SHUTDOWN_MARKER,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_CHECKPOINT,
    read_offsets,
    write_offsets,
)
from josef.storage.disk.manager import decode_topic_id, encode_topic_id
from josef.storage.errors import (
    CorruptRecord,
    InvalidRecord,
    OffsetOutOfRange,
    RecordTooLarge,
    UnexpectedAppendOffset,
)

NOW = 1_700_000_000_000
TOPIC_ID = bytes(range(16))


def batch(
    n: int = 1, size: int = 100, ts: int = NOW, base_offset: int = 0,
    compression: Compression = Compression.NONE,
) -> bytes:
    builder = BatchBuilder(base_offset=base_offset, compression=compression)
    for i in range(n):
        builder.append(ts + i, None, bytes([i % 256]) * size, [])
    return builder.build()


def open_log(path: Path, config: LogConfig | None = None, **kw: object) -> DiskPartitionLog:
    return DiskPartitionLog.open(str(path), config or LogConfig(), now_ms=NOW, **kw)  # type: ignore[arg-type]


def read_all(log: DiskPartitionLog, offset: int | None = None) -> list[BatchHeader]:
    data = log.read(log.log_start_offset if offset is None else offset, 1 << 30)
    return [h for r in data.records for h in iter_batches(bytes(r))]


def files(path: Path, suffix: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(suffix))


def test_segment_files_named_by_base_offset(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=1000))
    for _ in range(10):
        log.append_as_leader(batch(3, 100), 0, NOW)
    log.flush()
    assert log.segment_base_offsets[0] == 0
    names = files(tmp_path, ".log")
    assert names == [f"{b:020d}.log" for b in log.segment_base_offsets]
    assert len(names) > 3
    for name in names:  # every segment except possibly the last stays under segment.bytes
        assert os.path.getsize(tmp_path / name) <= 1000
    log.close()


def test_roll_by_size_puts_overflowing_batch_in_new_segment(tmp_path: Path) -> None:
    one = len(batch(1, 200))
    log = open_log(tmp_path, LogConfig(segment_bytes=2 * one + 10))
    for _ in range(3):
        log.append_as_leader(batch(1, 200), 0, NOW)
    assert log.segment_base_offsets == [0, 2]
    log.close()


def test_roll_by_time_uses_first_batch_timestamp(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_ms=1000))
    log.append_as_leader(batch(ts=NOW), 0, NOW)
    log.append_as_leader(batch(ts=NOW + 1000), 0, NOW + 1000)
    assert log.segment_base_offsets == [0]
    log.append_as_leader(batch(ts=NOW + 1001), 0, NOW + 1001)
    assert log.segment_base_offsets == [0, 2]
    log.close()


def test_roll_by_time_with_jitter_rolls_no_later(tmp_path: Path) -> None:
    import random

    log = open_log(
        tmp_path, LogConfig(segment_ms=1000, segment_jitter_ms=500), rng=random.Random(7)
    )
    log.append_as_leader(batch(ts=NOW), 0, NOW)
    log.append_as_leader(batch(ts=NOW + 1001), 0, NOW + 1001)
    assert log.segment_base_offsets == [0, 1]
    log.close()


def test_roll_when_index_full(tmp_path: Path) -> None:
    # Two 8-byte entries fit; entries come every index_interval_bytes.
    config = LogConfig(segment_index_bytes=24, index_interval_bytes=1)
    log = open_log(tmp_path, config)
    for _ in range(8):
        log.append_as_leader(batch(1, 50), 0, NOW)
    assert len(log.segment_base_offsets) > 1
    assert [h.base_offset for h in read_all(log)] == list(range(8))
    log.close()


def test_read_across_segments_and_from_middle_of_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=600, index_interval_bytes=100))
    for _ in range(20):
        log.append_as_leader(batch(3, 40), 0, NOW)
    assert len(log.segment_base_offsets) > 3
    headers = read_all(log)
    assert [h.base_offset for h in headers] == list(range(0, 60, 3))
    assert all(h.crc_valid() for h in headers)
    for offset in range(60):
        first = read_all(log, offset)[0]
        assert first.base_offset <= offset <= first.last_offset
    log.close()


def test_max_bytes_and_min_one_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=2000))
    for _ in range(6):
        log.append_as_leader(batch(1, 500), 0, NOW)
    size = len(batch(1, 500))
    assert log.read(0, size - 1).size == size  # KIP-74: first batch whole
    assert log.read(0, size - 1, min_one_batch=False).records == []
    assert log.read(0, 2 * size + 5).size == 2 * size
    assert log.read(0, 10 * size).size == 6 * size  # crosses segments
    assert log.read(0, 10 * size, max_offset=4).size == 4 * size
    assert log.read(6, 100).records == []
    with pytest.raises(OffsetOutOfRange):
        log.read(7, 100)
    log.close()


def test_index_rebuilt_after_deleting_index_files(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4000, index_interval_bytes=200)
    log = open_log(tmp_path, config)
    for i in range(40):
        log.append_as_leader(batch(2, 60, ts=NOW + i), 0, NOW)
    before = [bytes(h.view()) for h in read_all(log)]
    lookup = log.offset_for_timestamp(NOW + 20)
    log.close()
    for name in files(tmp_path, ".index") + files(tmp_path, ".timeindex"):
        os.unlink(tmp_path / name)
    log = open_log(tmp_path, config, recovery_point=80, clean_shutdown=True)
    assert log.log_end_offset == 80
    assert [bytes(h.view()) for h in read_all(log)] == before
    assert log.offset_for_timestamp(NOW + 20) == lookup
    log.flush()
    assert files(tmp_path, ".index")  # rewritten at flush
    log.close()


def test_corrupt_index_detected_and_rebuilt(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=4000, index_interval_bytes=200)
    log = open_log(tmp_path, config)
    for _ in range(30):
        log.append_as_leader(batch(2, 60), 0, NOW)
    log.close()
    index = tmp_path / files(tmp_path, ".index")[0]
    assert index.stat().st_size >= 16
    with open(index, "r+b") as f:  # last entry points far past the file
        f.seek(-4, os.SEEK_END)
        f.write(b"\x7f\xff\xff\xff")
    log = open_log(tmp_path, config, recovery_point=60, clean_shutdown=True)
    assert [h.base_offset for h in read_all(log)] == list(range(0, 60, 2))
    for offset in range(60):
        assert read_all(log, offset)[0].last_offset >= offset
    log.close()


def test_timestamp_lookups(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=1500, index_interval_bytes=100))
    for i in range(30):
        log.append_as_leader(batch(3, 30, ts=NOW + 10 * i), 5, NOW)
    found = log.offset_for_timestamp(NOW + 101)
    assert found is not None
    assert (found.timestamp, found.offset, found.leader_epoch) == (NOW + 101, 31, 5)
    assert log.offset_for_timestamp(NOW + 10_000) is None
    first = log.offset_for_timestamp(0)
    assert first is not None and first.offset == 0
    top = log.offset_of_max_timestamp()
    assert top is not None and (top.timestamp, top.offset) == (NOW + 292, 89)
    log.close()


def test_log_append_time_rewrites_header_and_crc(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(message_timestamp_type="LogAppendTime"))
    info = log.append_as_leader(batch(3, 10, ts=5), 2, NOW + 7)
    assert info.log_append_time == NOW + 7
    (h,) = read_all(log)
    assert h.crc_valid()
    assert h.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert h.max_timestamp == NOW + 7
    assert h.partition_leader_epoch == 2
    log.close()


def test_many_batches_in_one_append(tmp_path: Path) -> None:
    """More batches than IOV_MAX/2 take the single-copy path."""
    log = open_log(tmp_path)
    records = b"".join(batch(1, 5) for _ in range(700))
    info = log.append_as_leader(records, 1, NOW)
    assert (info.first_offset, info.last_offset) == (0, 699)
    headers = read_all(log)
    assert [h.base_offset for h in headers] == list(range(700))
    assert all(h.crc_valid() and h.partition_leader_epoch == 1 for h in headers)
    log.close()


def test_compressed_batch_stored_as_is(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    produced = batch(5, 100, compression=Compression.ZSTD)
    log.append_as_leader(produced, 0, NOW)
    log.append_as_leader(produced, 0, NOW)
    stored = read_all(log)
    assert [bytes(h.view())[61:] for h in stored] == [produced[61:]] * 2
    assert stored[1].base_offset == 5
    log.close()


def test_bad_appends_leave_log_unchanged(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(max_message_bytes=2000, segment_bytes=5000))
    log.append_as_leader(batch(), 0, NOW)
    size_before = log.size_bytes
    corrupt = bytearray(batch())
    corrupt[-1] ^= 1
    with pytest.raises(CorruptRecord):
        log.append_as_leader(bytes(batch()) + bytes(corrupt), 0, NOW)
    with pytest.raises(RecordTooLarge):
        log.append_as_leader(batch(1, 3000), 0, NOW)
    with pytest.raises(RecordTooLarge):  # the whole append must fit a segment
        log.append_as_leader(b"".join(batch(1, 1500) for _ in range(4)), 0, NOW)
    legacy = bytearray(batch())
    legacy[16] = 1
    with pytest.raises(InvalidRecord):
        log.append_as_leader(bytes(legacy), 0, NOW)
    with pytest.raises(CorruptRecord):
        log.append_as_leader(batch()[:-3], 0, NOW)
    assert (log.log_end_offset, log.size_bytes) == (1, size_before)
    log.close()


def test_follower_append_offsets(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_as_follower(batch(2, base_offset=0), NOW)
    with pytest.raises(UnexpectedAppendOffset):
        log.append_as_follower(batch(1, base_offset=1), NOW)
    with pytest.raises(InvalidRecord):
        log.append_as_follower(batch(2, base_offset=5) + batch(1, base_offset=6), NOW)
    info = log.append_as_follower(batch(2, base_offset=10) + batch(1, base_offset=12), NOW)
    assert (info.first_offset, info.last_offset, log.log_end_offset) == (10, 12, 13)
    log.close()


def test_follower_append_far_ahead_starts_new_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_as_follower(batch(1), NOW)
    log.append_as_follower(batch(1, base_offset=2**31 + 5), NOW)
    assert log.segment_base_offsets == [0, 2**31 + 5]
    log.close()
    log = open_log(tmp_path)  # recovery scans it all again
    assert [h.base_offset for h in read_all(log)] == [0, 2**31 + 5]
    log.close()


def test_truncate_then_reopen_keeps_log_end_offset(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=1000))
    for _ in range(10):
        log.append_as_leader(batch(3, 50), 0, NOW)
    log.truncate_to(16)  # inside the batch [15, 17]
    assert log.log_end_offset == 16
    assert read_all(log)[-1].last_offset == 14
    log.close()
    log = open_log(tmp_path, LogConfig(segment_bytes=1000))
    assert log.log_end_offset == 16
    assert log.append_as_leader(batch(1), 0, NOW).first_offset == 16
    log.close()


def test_delete_records_and_retention_delete_segment_files(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=600))
    for i in range(20):
        log.append_as_leader(batch(1, 200, ts=NOW + i), 0, NOW)
    log.set_high_watermark(20)
    segments = len(log.segment_base_offsets)
    assert log.delete_records_before(5) == 5
    assert log.segment_base_offsets[0] <= 5
    assert len(files(tmp_path, ".log")) == len(log.segment_base_offsets) < segments
    log.update_config(LogConfig(segment_bytes=600, retention_bytes=700))
    assert log.apply_retention(NOW) > 0
    assert len(log.segment_base_offsets) == len(files(tmp_path, ".log"))
    assert log.size_bytes <= 700 + 600
    log.update_config(LogConfig(segment_bytes=600, retention_ms=1))
    log.apply_retention(NOW + 10_000)
    assert len(log.segment_base_offsets) == 1  # never the active segment
    log.close()


def test_checkpoint_files_round_trip_and_atomic(tmp_path: Path) -> None:
    path = str(tmp_path / "cp")
    write_offsets(path, {("a-b", 0): 5, ("t", 12): 2**40})
    assert read_offsets(path) == {("a-b", 0): 5, ("t", 12): 2**40}
    assert (tmp_path / "cp").read_text() == "0\n2\na-b 0 5\nt 12 1099511627776\n"
    assert not (tmp_path / "cp.tmp").exists()
    assert encode_topic_id(TOPIC_ID) == "AAECAwQFBgcICQoLDA0ODw"
    assert decode_topic_id(encode_topic_id(TOPIC_ID)) == TOPIC_ID


def test_manager_reload_clean_and_unclean(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=800)
    logs = DiskPartitionLogs([tmp_path], config_for=lambda _t: config)
    log = logs.create("orders-eu", 3, config, TOPIC_ID)
    for _ in range(12):
        log.append_as_leader(batch(2, 100), 0, NOW)
    log.set_high_watermark(20)
    log.flush()
    logs.checkpoint()
    log.append_as_leader(batch(2, 100), 0, NOW)  # unflushed tail
    logs.close()
    assert (tmp_path / CLEAN_SHUTDOWN_MARKER).exists()
    assert read_offsets(str(tmp_path / RECOVERY_POINT_CHECKPOINT)) == {("orders-eu", 3): 26}
    assert read_offsets(str(tmp_path / REPLICATION_CHECKPOINT)) == {("orders-eu", 3): 20}
    text = (tmp_path / "orders-eu-3" / "partition.metadata").read_text()
    assert text == f"version: 0\ntopic_id: {encode_topic_id(TOPIC_ID)}\n"

    logs = DiskPartitionLogs([tmp_path], config_for=lambda _t: config)
    assert not (tmp_path / CLEAN_SHUTDOWN_MARKER).exists()
    assert logs.partitions() == [("orders-eu", 3)]
    log = logs.get("orders-eu", 3)
    assert log is not None
    assert (log.log_end_offset, log.high_watermark, log.recovery_point) == (26, 20, 26)
    log.append_as_leader(batch(2, 100), 0, NOW)
    del logs  # crash: no close, no marker; recovery from the checkpointed point
    logs = DiskPartitionLogs([tmp_path], config_for=lambda _t: config)
    log = logs.get("orders-eu", 3)
    assert log is not None and log.log_end_offset == 28
    assert [h.base_offset for h in read_all(log)] == list(range(0, 28, 2))
    logs.delete("orders-eu", 3)
    assert logs.partitions() == []
    assert not (tmp_path / "orders-eu-3").exists()
    logs.close()


def test_recovery_starts_at_recovery_point_segment(tmp_path: Path) -> None:
    """Segments below the recovery point are not rescanned: a corrupt byte there is not
    noticed (Kafka's behaviour; they were fsynced), one above it truncates."""
    config = LogConfig(segment_bytes=700)
    log = open_log(tmp_path, config)
    for _ in range(12):
        log.append_as_leader(batch(1, 200), 0, NOW)
    log.flush()
    rp = log.recovery_point
    bases = log.segment_base_offsets
    log.close()
    first, last = (tmp_path / f"{bases[0]:020d}.log"), (tmp_path / f"{bases[-1]:020d}.log")
    for path in (first, last):
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    log = open_log(tmp_path, config, recovery_point=bases[-1])
    assert log.log_start_offset == 0
    assert log.log_end_offset == rp - 1  # the last batch was cut, the first segment kept
    assert len(read_all(log)) == rp - 1
    log.close()


def test_batches_iterates_whole_stored_batches(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(segment_bytes=700, index_interval_bytes=100))
    for _ in range(15):
        log.append_as_leader(batch(2, 60), 3, NOW)
    everything = [h.base_offset for h in log.batches()]
    assert everything == list(range(0, 30, 2))
    assert [h.base_offset for h in log.batches(5, 11)] == [4, 6, 8, 10]
    assert all(h.crc_valid() and h.partition_leader_epoch == 3 for h in log.batches(7))
    assert list(log.batches(30)) == []
    log.close()


def test_recovery_keeps_the_segment_file_time(tmp_path: Path) -> None:
    """A rescanned segment keeps its file's modification time (Kafka's lastModified): an
    empty segment left by a truncation or the cleaner is not taken for infinitely old by
    retention.ms, nor rolled at once by segment.ms when batches carry no timestamp."""
    log = open_log(tmp_path)
    log.append_as_leader(batch(2), 0, NOW)
    log.truncate_to(0)  # empty again, through a rescan
    log.close_without_flush()  # no clean-shutdown marker: reopening recovers (rescans)
    path = tmp_path / f"{0:020d}.log"
    mtime_ms = os.stat(path).st_mtime_ns // 1_000_000
    reopened = open_log(tmp_path)
    try:
        (segment,) = reopened.segments
        assert segment.size == 0 and segment.last_append_ms == mtime_ms
    finally:
        reopened.close()
