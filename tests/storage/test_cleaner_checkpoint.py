"""The cleaner checkpoint (first dirty offset) never stays above a truncation point: it is
validated whenever the cleaner uses it (Kafka's LogCleanerManager.cleanableOffsets), also
for a log truncated before a restart or by someone the cleaner did not hear from. Each
scenario compacts, truncates below the checkpoint, appends records over the truncated range,
compacts again and compares the log with a model of a full compaction: every key appears
once below the round's end offset, at its latest offset there."""

from __future__ import annotations

import asyncio
from pathlib import Path

from josef.records.builder import BatchBuilder
from josef.records.records import iter_records
from josef.storage.api import LogConfig
from josef.storage.disk.checkpoint import read_offsets
from josef.storage.disk.cleaner import CLEANER_OFFSET_CHECKPOINT, LogCleaner
from josef.storage.disk.log import DiskPartitionLog
from josef.storage.disk.manager import DiskPartitionLogs

NOW = 1_700_000_000_000
TOPIC, PARTITION, TOPIC_ID = "compacted", 0, bytes(16)
CONFIG = LogConfig(cleanup_policy=frozenset({"compact"}), segment_bytes=100_000)
KEY = (TOPIC, PARTITION)

Record = tuple[int, bytes, bytes]  # (offset, key, value)


def open_logs(log_dir: Path, config: LogConfig = CONFIG) -> DiskPartitionLogs:
    return DiskPartitionLogs([log_dir], config_for=lambda _topic: config)


def the_log(logs: DiskPartitionLogs) -> DiskPartitionLog:
    log = logs.get(TOPIC, PARTITION)
    assert log is not None
    return log


def write(log: DiskPartitionLog, keys: list[bytes], tag: bytes) -> list[Record]:
    written = []
    for key in keys:
        builder = BatchBuilder()
        builder.append(NOW, key, key + b"=" + tag, [])
        offset = log.log_end_offset
        log.append_as_leader(builder.build(), 0, NOW)
        written.append((offset, key, key + b"=" + tag))
    log.set_high_watermark(log.log_end_offset)
    return written


def stored(log: DiskPartitionLog) -> list[Record]:
    out = []
    for batch in log.batches(log.log_start_offset):
        for record in iter_records(batch):
            assert record.key is not None and record.value is not None
            out.append((batch.base_offset + record.offset_delta, record.key, record.value))
    return out


def model(written: list[Record], end_offset: int) -> list[Record]:
    """A full compaction of [log start, end_offset): below it, each key's latest record."""
    latest = {key: offset for offset, key, _ in written if offset < end_offset}
    return [r for r in written if r[0] >= end_offset or latest[r[1]] == r[0]]


def compact(cleaner: LogCleaner, log: DiskPartitionLog, written: list[Record]) -> None:
    log.roll(NOW)
    stats = cleaner.clean(log, NOW, force=True)
    assert stats is not None and stats.end_offset == log.active_base_offset
    assert stored(log) == model(written, stats.end_offset)


def first_round(log_dir: Path) -> tuple[DiskPartitionLogs, LogCleaner, list[Record]]:
    """Offsets 0-19 compacted, checkpoint 20. `old-*` keys are written only below 6, so
    they survive below the truncation point (6) and are written again above it."""
    logs = open_logs(log_dir)
    log = logs.create(TOPIC, PARTITION, CONFIG, TOPIC_ID)
    cleaner = LogCleaner(logs)
    written = write(log, [b"old-0", b"old-1"], b"1")
    for round_ in range(3):
        written += write(log, [b"hot-0", b"hot-1", b"hot-2"], b"%d" % round_)
    written += write(log, [b"hot-%d" % i for i in range(9)], b"a")
    assert log.log_end_offset == 20
    compact(cleaner, log, written)
    assert cleaner.checkpoint_of(log) == 20
    return logs, cleaner, written


def after_truncation(log: DiskPartitionLog, written: list[Record]) -> list[Record]:
    """Truncate to 6 and write records over [6, 20) that no later record replaces: with a
    checkpoint left at 20 they would count as cleaned, and `old-*` would appear twice."""
    log.truncate_to(6)
    kept = stored(log)
    assert {key for _, key, _ in kept} == {b"old-0", b"old-1"}
    kept += write(log, [b"old-0", b"old-1"], b"2")
    kept += write(log, [b"new-%d" % i for i in range(20)], b"b")
    assert log.log_end_offset > 20
    return kept


def test_the_same_cleaner_after_a_truncation(tmp_path: Path) -> None:
    logs, cleaner, written = first_round(tmp_path)
    log = the_log(logs)
    written = after_truncation(log, written)
    assert cleaner.checkpoint_of(log) == log.log_start_offset
    compact(cleaner, log, written)
    logs.close()


def test_a_cleaner_that_never_cleaned_the_log(tmp_path: Path) -> None:
    logs, _cleaner, written = first_round(tmp_path)
    log = the_log(logs)
    written = after_truncation(log, written)
    fresh = LogCleaner(logs)  # created after the truncation, reading the checkpoint file
    compact(fresh, log, written)
    logs.close()


def test_a_cleaner_created_before_the_truncation_but_idle_until_after(tmp_path: Path) -> None:
    logs, _cleaner, written = first_round(tmp_path)
    log = the_log(logs)
    idle = LogCleaner(logs)
    written = after_truncation(log, written)
    compact(idle, log, written)
    logs.close()


def test_truncation_before_a_restart(tmp_path: Path) -> None:
    logs, cleaner, written = first_round(tmp_path)
    log = the_log(logs)
    log.truncate_to(6)
    written = stored(log)
    logs.close()  # nobody told the cleaner; its file still says 20
    assert read_offsets(str(tmp_path / CLEANER_OFFSET_CHECKPOINT)) == {KEY: 20}
    logs = open_logs(tmp_path)
    log = the_log(logs)
    cleaner = LogCleaner(logs)  # the broker makes its cleaner right after opening the logs
    written += write(log, [b"old-0", b"old-1"], b"2")  # appends come before any round
    written += write(log, [b"new-%d" % i for i in range(20)], b"b")
    compact(cleaner, log, written)
    logs.close()


def test_checkpoint_above_the_log_end_is_reset_and_persisted(tmp_path: Path) -> None:
    logs, _cleaner, _written = first_round(tmp_path)
    the_log(logs).truncate_to(6)
    logs.close()
    never_due = LogConfig(cleanup_policy=frozenset({"compact"}), min_cleanable_dirty_ratio=1.0)
    logs = open_logs(tmp_path, never_due)
    cleaner = LogCleaner(logs)
    assert cleaner.checkpoint_of(the_log(logs)) == 0

    async def idle_round() -> None:  # nothing is due: the correction is still written
        assert await cleaner.clean_once(NOW) is None

    asyncio.run(idle_round())
    assert read_offsets(str(tmp_path / CLEANER_OFFSET_CHECKPOINT)) == {KEY: 0}
    logs.close()


def test_checkpoint_below_the_log_start_moves_to_it(tmp_path: Path) -> None:
    logs, cleaner, _written = first_round(tmp_path)
    log = the_log(logs)
    write(log, [b"more-%d" % i for i in range(10)], b"c")
    log.roll(NOW)
    log.set_high_watermark(log.log_end_offset)
    log.delete_records_before(25)
    assert log.log_start_offset == 25
    assert cleaner.checkpoint_of(log) == 25
    logs.close()


def test_a_corrupt_checkpoint_file_means_everything_is_dirty(tmp_path: Path) -> None:
    logs, _cleaner, written = first_round(tmp_path)
    logs.close()
    (tmp_path / CLEANER_OFFSET_CHECKPOINT).write_text("0\n7\ngarbage\n")
    logs = open_logs(tmp_path)
    cleaner = LogCleaner(logs)
    log = the_log(logs)
    assert cleaner.checkpoint_of(log) is None
    written = written + write(log, [b"old-0"], b"3")
    compact(cleaner, log, written)
    assert read_offsets(str(tmp_path / CLEANER_OFFSET_CHECKPOINT)) == {KEY: log.active_base_offset}
    logs.close()
