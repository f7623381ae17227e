"""Disk full on a small tmpfs, with synchronous writes and with write-behind (a real
`LogDirWriter`): appends fail with KafkaStorageError, stored data stays intact byte for byte,
and the log works again once space returns. Skipped where tmpfs cannot be mounted.

Where the failure surfaces: synchronously, `append_as_leader` raises. With write-behind the
append only queues its write; `wait_written` (what the broker awaits before acknowledging)
raises, and `settle` or the log's next operation rolls the log back to its last written batch
without raising."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from josef.protocol.errors import ErrorCode
from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.disk.writer import LogDirWriter, PendingWrite
from josef.storage.errors import KafkaStorageError

NOW = 1_700_000_000_000
BATCH_BYTES = 16 * 1024  # one record's value; the tmpfs holds about 60 such batches




@pytest.fixture(params=["write_behind", "synchronous"])
def writer(request: pytest.FixtureRequest) -> Iterator[LogDirWriter | None]:
    """The log dir's I/O thread (write-behind), or None (synchronous writes)."""
    if request.param == "synchronous":
        yield None
        return
    writer = LogDirWriter("enospc")
    try:
        yield writer
    finally:
        writer.close()


def batch(i: int, size: int = BATCH_BYTES) -> bytes:
    builder = BatchBuilder()
    builder.append(NOW, None, bytes([i % 256]) * size, [])
    return builder.build()


def payload(i: int) -> bytes:
    """What the log must hold of batch(i) whatever its offset: the bytes after the header."""
    return batch(i)[61:]


def open_log(
    log_dir: Path, segment_bytes: int, writer: LogDirWriter | None, log_start_offset: int = 0
) -> DiskPartitionLog:
    return DiskPartitionLog.open(
        str(log_dir), LogConfig(segment_bytes=segment_bytes), now_ms=NOW, writer=writer,
        log_start_offset=log_start_offset,
    )


def stored(log: DiskPartitionLog) -> list[bytes]:
    data = log.read(log.log_start_offset, 1 << 30)
    return [bytes(h.view()[61:]) for r in data.records for h in iter_batches(bytes(r))]


def log_file_sizes(log_dir: Path) -> int:
    return sum(p.stat().st_size for p in log_dir.glob("*.log"))


def wait_written(log: DiskPartitionLog, write: PendingWrite | None) -> None:
    """What the broker awaits before acknowledging an append (None: nothing to wait for)."""
    if write is not None:
        asyncio.run(log.wait_written(write))


def append_acked(log: DiskPartitionLog, i: int) -> int:
    """Append batch(i) and wait for its write as the broker does; returns its offset."""
    info = log.append_as_leader(batch(i), 0, NOW)
    wait_written(log, log.pending_write())
    return info.first_offset


def test_disk_full_fails_cleanly_and_recovers(
    small_fs: Path, writer: LogDirWriter | None
) -> None:
    filler = small_fs / "filler"
    filler.write_bytes(bytes(256 * 1024))
    log_dir = small_fs / "t-0"
    log = open_log(log_dir, 300_000, writer)
    appended: list[bytes] = []
    step = ""
    with pytest.raises(KafkaStorageError) as failure:
        for i in range(200):
            step = "append_as_leader"
            log.append_as_leader(batch(i), 0, NOW)
            step = "wait_written"
            wait_written(log, log.pending_write())
            appended.append(payload(i))
    assert step == ("append_as_leader" if writer is None else "wait_written")
    assert failure.value.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert appended, "the filesystem was full from the start"
    # Nothing of the failed append stays (write-behind: rolled back inside wait_written).
    assert log.log_end_offset == len(appended)
    leo, size = log.log_end_offset, log.size_bytes
    for _ in range(3):  # still full: same error, nothing changes
        with pytest.raises(KafkaStorageError):
            append_acked(log, 0)
        assert (log.log_end_offset, log.size_bytes) == (leo, size)
    assert stored(log) == appended
    assert log_file_sizes(log_dir) == size

    filler.unlink()  # space returns
    assert append_acked(log, 7) == leo
    log.flush()
    assert stored(log) == [*appended, payload(7)]
    log.close()
    reopened = open_log(log_dir, 300_000, None)
    assert stored(reopened) == [*appended, payload(7)]
    reopened.close()


def queue_appends(log: DiskPartitionLog, count: int) -> tuple[list[PendingWrite], int]:
    """Append batch(0..count-1) without waiting for the writes, as a broker does with many
    produce requests in flight; (the writes, how many appends raised). An append only queues
    its write (one that finds a failed write first rolls the log back), except that a roll
    waits for the queued writes and raises KafkaStorageError when one of them failed."""
    writes = []
    refused = 0
    for i in range(count):
        try:
            log.append_as_leader(batch(i), 0, NOW)
        except KafkaStorageError:
            refused += 1
            continue
        write = log.pending_write()
        if write is not None:  # None: the writer's thread was quicker
            writes.append(write)
    return writes, refused


def assert_failures_reported(log: DiskPartitionLog, writes: list[PendingWrite]) -> None:
    """After the writes are done: wait_written raises exactly for the failed ones, and the
    written ones hold offsets the log kept."""
    for write in writes:
        assert write.done
        if write.error is None:
            wait_written(log, write)
            assert write.end_offset <= log.log_end_offset
        else:
            with pytest.raises(KafkaStorageError):
                wait_written(log, write)
    assert any(write.error is not None for write in writes), "the disk never filled"


def test_write_behind_disk_full_with_queued_appends(small_fs: Path) -> None:
    filler = small_fs / "filler"
    filler.write_bytes(bytes(256 * 1024))
    log_dir = small_fs / "t-0"
    writer = LogDirWriter("enospc")
    try:
        log = open_log(log_dir, 300_000, writer)
        writes, _refused = queue_appends(log, 100)  # about 1.6 MiB for a 1 MiB file system
        log.settle()  # every write done; the failed ones rolled back, nothing raised
        count = log.log_end_offset
        assert 0 < count < 100
        # The disk stayed full after the first failure: what is left is a prefix.
        assert stored(log) == [payload(i) for i in range(count)]
        assert log_file_sizes(log_dir) == log.size_bytes
        assert_failures_reported(log, writes)

        # Still full: an append queues and its write fails; the log's next operation (this
        # append, once space returns) rolls back first and lands right after the stored ones.
        log.append_as_leader(batch(200), 0, NOW)
        write = log.pending_write()
        if write is not None:
            writer.wait(write)
            assert write.error is not None
        filler.unlink()
        assert append_acked(log, 201) == count
        log.close()
        reopened = open_log(log_dir, 300_000, None)
        assert stored(reopened) == [*(payload(i) for i in range(count)), payload(201)]
        reopened.close()
    finally:
        writer.close()


def test_disk_full_during_roll(small_fs: Path, writer: LogDirWriter | None) -> None:
    log_dir = small_fs / "t-0"
    log = open_log(log_dir, 40_000, writer)  # two batches a segment: a roll every other append
    if writer is None:
        count = 0
        with pytest.raises(KafkaStorageError):  # the append that meets the full disk fails
            for i in range(200):
                log.append_as_leader(batch(i), 0, NOW)
                count += 1
    else:
        # A roll waits for the queued writes (a crash must not leave a segment past the
        # stored end), so the append whose roll meets a failed write raises; the others queue.
        writes, refused = queue_appends(log, 200)
        log.settle()
        count = log.log_end_offset
        assert_failures_reported(log, writes)
        assert refused > 0, "no roll met the failed write"
    assert stored(log) == [payload(i) for i in range(count)]
    assert count == log.log_end_offset > 0
    assert all(base <= count for base in log.segment_base_offsets)
    assert sorted(p.name for p in log_dir.glob("*.log")) == [
        f"{base:020d}.log" for base in log.segment_base_offsets
    ]
    assert log_file_sizes(log_dir) == log.size_bytes
    # Free space by dropping every segment but the active one (DeleteRecords).
    log.set_high_watermark(log.log_end_offset)
    log.delete_records_before(log.log_end_offset)
    assert len(list(log_dir.glob("*.log"))) == 1
    assert append_acked(log, 1) == count
    log.close()
    reopened = open_log(log_dir, 40_000, None, log_start_offset=count)  # as checkpointed
    assert (reopened.log_start_offset, reopened.log_end_offset) == (count, count + 1)
    assert stored(reopened) == [payload(1)]
    reopened.close()


def test_disk_full_fails_an_append_whose_write_finished_before_pending_write(
    small_fs: Path,
) -> None:
    filler = small_fs / "filler"
    filler.write_bytes(bytes(256 * 1024))
    log_dir = small_fs / "t-0"
    # A writer bounded below one batch: each append's submit waits until its write is done
    # (as one larger than max_pending_bytes does with the default bound).
    writer = LogDirWriter("enospc", max_pending_bytes=BATCH_BYTES // 2)
    try:
        log = open_log(log_dir, 300_000, writer)
        acked: list[bytes] = []
        for i in range(200):
            try:
                append_acked(log, i)
            except KafkaStorageError:
                break
            acked.append(payload(i))
        log.settle()
        assert stored(log) == acked, "an acknowledged append was rolled back"
        assert len(acked) < 200, "no append failed"
        filler.unlink()  # room for the index files that close() writes
        log.close()
    finally:
        writer.close()
