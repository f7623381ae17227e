"""Index files are written at every flush but fsynced only when their segment is sealed (roll,
close): a power loss may leave the active segment's `.index` / `.timeindex` stale, cut
anywhere, the two files cut at different points. Recovery must still find every acked batch
and exact per-segment max timestamps, and reads and time lookups must stay exact."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from josef.records.batch import BatchHeader, Compression, TimestampType, iter_batches
from josef.records.builder import BatchBuilder
from josef.records.records import iter_records, record_offset, record_timestamp
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.disk.segment import first_record_at
from josef.storage.flusher import GroupCommit

NOW = 1_700_000_000_000
CONFIG = LogConfig(segment_bytes=4000, index_interval_bytes=150, flush_messages=1)


def batch(i: int, rng: random.Random) -> bytes:
    """Mostly increasing timestamps, with jumps back and ahead (the max is not the last)."""
    builder = BatchBuilder()
    timestamp = NOW + i * 10 + rng.choice([0, 0, 0, -500, 2000])
    builder.append(timestamp, None, bytes([i % 256]) * rng.randint(1, 300), [])
    return builder.build()


def stored_batches(log: DiskPartitionLog) -> list[BatchHeader]:
    data = log.read(log.log_start_offset, 1 << 30)
    return [h for r in data.records for h in iter_batches(bytes(r))]


@pytest.mark.parametrize("seed", range(12))
def test_stale_index_files_after_power_loss(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    directory = tmp_path / "t-0"
    log = DiskPartitionLog.open(str(directory), CONFIG, now_ms=NOW)
    commit = GroupCommit()
    acked: list[bytes] = []

    async def produce() -> None:
        for i in range(rng.randint(20, 60)):
            produced = batch(i, rng)
            log.append_as_leader(produced, 0, NOW)
            await commit.after_append(log, NOW)  # flush.messages=1: durable when it returns
            acked.append(produced[61:])

    asyncio.run(produce())
    recovery_point = log.recovery_point
    assert recovery_point == log.log_end_offset
    log.close_without_flush()
    active_base = max(int(p.stem) for p in directory.glob("*.log"))
    keep_offset_index = rng.random() < 0.5  # then only the time index lags
    for path in directory.iterdir():  # the active segment's index files were never fsynced
        if path.suffix == ".index" and keep_offset_index:
            continue
        if path.suffix in (".index", ".timeindex") and int(path.stem) == active_base:
            os.truncate(path, rng.randint(0, path.stat().st_size))

    log = DiskPartitionLog.open(str(directory), CONFIG, now_ms=NOW, recovery_point=recovery_point)
    assert log.log_end_offset == recovery_point
    headers = stored_batches(log)
    assert [bytes(h.view())[61:] for h in headers] == acked
    assert [h.base_offset for h in headers] == list(range(len(headers)))
    for segment in log.segments:
        inside = [h for h in headers if segment.base_offset <= h.base_offset < segment.next_offset]
        best = max(inside, key=lambda h: h.max_timestamp)  # max() keeps the first of equals
        assert segment.max_timestamp == best.max_timestamp
        assert segment.offset_of_max_timestamp == best.base_offset
    for _ in range(20):  # time lookups: the first record at or after the timestamp
        target = NOW + rng.randint(-600, len(acked) * 10 + 400)
        found = log.offset_for_timestamp(target)
        expected = next((h for h in headers if h.max_timestamp >= target), None)
        if expected is None:
            assert found is None
        else:
            assert found is not None and found.offset == expected.base_offset
    log.close()


def test_read_cut_matches_a_header_walk(tmp_path: Path) -> None:
    """Fetches cut by max_bytes and max_offset end at the same batch as walking every header."""
    rng = random.Random(7)
    log = DiskPartitionLog.open(str(tmp_path / "r-0"), LogConfig(index_interval_bytes=100),
                                now_ms=NOW)
    for i in range(200):
        log.append_as_leader(batch(i, rng), 0, NOW)
    headers = stored_batches(log)
    for _ in range(300):
        first = rng.randrange(len(headers))
        max_bytes = rng.randint(1, 20_000)
        max_offset = rng.randint(first + 1, len(headers))
        data = log.read(headers[first].base_offset, max_bytes, max_offset, min_one_batch=True)
        got = [h.base_offset for r in data.records for h in iter_batches(bytes(r))]
        expected, size = [first], headers[first].size
        for h in headers[first + 1 : max_offset]:
            if size + h.size > max_bytes:
                break
            expected.append(h.base_offset)
            size += h.size
        assert got == expected
    log.close()


def test_first_record_at_matches_decoding(tmp_path: Path) -> None:
    """The time lookup's record walk (lengths and deltas only) agrees with full decoding,
    for CreateTime and LogAppendTime batches, compressed or not."""
    rng = random.Random(11)
    for compression, append_time in ((0, False), (1, False), (0, True)):
        builder = BatchBuilder(compression=Compression(compression))
        for i in range(30):
            builder.append(NOW + rng.randint(-50, 50), b"k%d" % i, b"v" * rng.randint(0, 200),
                           [("h", b"x")])
        header = BatchHeader(bytearray(builder.build()))
        header.set_base_offset(1000)
        if append_time:
            header.set_max_timestamp_and_type(NOW + 7, TimestampType.LOG_APPEND_TIME)
            header.update_crc()
        records = [
            (record_timestamp(header, r), record_offset(header, r)) for r in iter_records(header)
        ]
        for _ in range(50):
            target, min_offset = NOW + rng.randint(-60, 60), 1000 + rng.randint(0, 35)
            expected = next(
                ((ts, off) for ts, off in records if off >= min_offset and ts >= target), None
            )
            assert first_record_at(header, target, min_offset) == expected
