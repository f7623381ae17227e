"""Disk full on a small tmpfs: appends fail with KafkaStorageError, stored data stays intact,
and the log works again once space returns. Skipped where tmpfs cannot be mounted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.errors import KafkaStorageError

NOW = 1_700_000_000_000


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def batch(i: int, size: int = 16 * 1024) -> bytes:
    builder = BatchBuilder()
    builder.append(NOW, None, bytes([i % 256]) * size, [])
    return builder.build()


def stored(log: DiskPartitionLog) -> list[bytes]:
    data = log.read(log.log_start_offset, 1 << 30)
    return [bytes(h.view()[61:]) for r in data.records for h in iter_batches(bytes(r))]


def test_disk_full_fails_cleanly_and_recovers(small_fs: Path) -> None:
    filler = small_fs / "filler"
    filler.write_bytes(bytes(256 * 1024))
    log_dir = small_fs / "t-0"
    log = DiskPartitionLog.open(str(log_dir), LogConfig(segment_bytes=300_000), now_ms=NOW)
    appended: list[bytes] = []
    with pytest.raises(KafkaStorageError) as failure:
        for i in range(200):
            log.append_as_leader(batch(i), 0, NOW)
            appended.append(batch(i)[61:])
    assert failure.value.error_code == 56  # KAFKA_STORAGE_ERROR
    assert appended, "the filesystem was full from the start"
    leo, size = log.log_end_offset, log.size_bytes
    for _ in range(3):  # still full: same error, nothing changes
        with pytest.raises(KafkaStorageError):
            log.append_as_leader(batch(0), 0, NOW)
        assert (log.log_end_offset, log.size_bytes) == (leo, size)
    assert stored(log) == appended
    assert sum(p.stat().st_size for p in log_dir.glob("*.log")) == size

    filler.unlink()  # space returns
    log.append_as_leader(batch(7), 0, NOW)
    log.flush()
    assert stored(log) == [*appended, batch(7)[61:]]
    log.close()
    reopened = DiskPartitionLog.open(str(log_dir), LogConfig(segment_bytes=300_000), now_ms=NOW)
    assert stored(reopened) == [*appended, batch(7)[61:]]
    reopened.close()


def test_disk_full_during_roll(small_fs: Path) -> None:
    log_dir = small_fs / "t-0"
    log = DiskPartitionLog.open(str(log_dir), LogConfig(segment_bytes=40_000), now_ms=NOW)
    count = 0
    with pytest.raises(KafkaStorageError):
        for i in range(200):
            log.append_as_leader(batch(i), 0, NOW)
            count += 1
    assert len(stored(log)) == count == log.log_end_offset
    # Free space by dropping every segment but the active one (DeleteRecords).
    log.set_high_watermark(log.log_end_offset)
    log.delete_records_before(log.log_end_offset)
    assert len(list(log_dir.glob("*.log"))) == 1
    assert log.append_as_leader(batch(1), 0, NOW).first_offset == count
    log.close()
