"""Write-behind (`josef.storage.disk.writer`) with a real `LogDirWriter` and real files.

The operating system is the only thing faked: `josef.storage.disk.writer.os` is replaced by
`FaultyOS`, which delegates to `os` but can hold `writev` on a gate (so appends queue up
behind it), fail a chosen call with ENOSPC, write short (really writing the prefix, so the
file holds junk that the rollback must cut), or behave like a file system that fills up at a
given file size. Covered: failed and short writes and the rollback after them (offsets,
bytes, file sizes, segments created after the failure, producer state, leader epochs,
flush and the recovery point), reads that must not wait and reads that must, back-pressure,
close, and the asyncio waiters.
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from josef.protocol.errors import ErrorCode
from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.records.control import ControlRecordType, EndTransactionMarker, build_marker_batch
from josef.storage.api import LogConfig
from josef.storage.disk import segment as segment_module
from josef.storage.disk import writer as writer_module
from josef.storage.disk.log import DiskPartitionLog
from josef.storage.disk.manager import DiskPartitionLogs
from josef.storage.disk.writer import LogDirWriter, PendingWrite
from josef.storage.errors import KafkaStorageError, StorageError
from josef.storage.leader_epoch import EpochEntry
from josef.storage.producer_state import AppendOrigin
from josef.storage.txn_index import TransactionIndex

NOW = 1_700_000_000_000
PID = 4242
# Long enough for anything that should happen "at once" on a loaded 2-core machine, short
# enough that a hang fails the test quickly instead of running into pytest's timeout.
SAFETY_S = 5.0
# A held writev never waits longer than this (a broken test must not hang the writer).
GATE_TIMEOUT_S = 10.0


class FaultyOS:
    """`os` for the writer's thread: `writev` can be held, fail, or write short."""

    def __init__(self) -> None:
        self.calls = 0  # writev calls so far
        self.enospc: set[int] = set()  # call numbers (1-based) that raise ENOSPC
        self.short: dict[int, int] = {}  # call number -> bytes it really writes
        self.full_at: int | None = None  # file size at which the "file system" is full
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a writev is waiting at the closed gate

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def hold(self) -> None:
        """The next writev waits at the gate until `release`."""
        self.entered.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def writev(self, fd: int, buffers: Sequence[bytes | bytearray | memoryview]) -> int:
        self.calls += 1
        call = self.calls
        if not self.gate.is_set():
            self.entered.set()
            assert self.gate.wait(GATE_TIMEOUT_S), "the test never released the gate"
        if call in self.enospc:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        room = self.short.get(call)
        if room is None and self.full_at is not None:
            room = max(self.full_at - os.fstat(fd).st_size, 0)
        data = b"".join(bytes(b) for b in buffers)
        if room is not None and room < len(data):
            if room == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return os.write(fd, data[:room])  # a real short write: the prefix is in the file
        return os.writev(fd, buffers)


@pytest.fixture
def fake_os(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyOS]:
    fake = FaultyOS()
    monkeypatch.setattr(writer_module, "os", fake)
    yield fake
    fake.release()


@pytest.fixture
def make_writer(fake_os: FaultyOS) -> Iterator[Callable[..., LogDirWriter]]:
    """LogDirWriters closed (after the gate opens) when the test ends."""
    writers: list[LogDirWriter] = []

    def make(max_pending_bytes: int = writer_module.DEFAULT_MAX_PENDING_BYTES) -> LogDirWriter:
        writer = LogDirWriter("test", max_pending_bytes=max_pending_bytes)
        writers.append(writer)
        return writer

    yield make
    fake_os.release()
    for writer in writers:
        writer.close()


@pytest.fixture
def writer(make_writer: Callable[..., LogDirWriter]) -> LogDirWriter:
    return make_writer()


def batch(i: int, *, size: int = 100, seq: int = -1, n: int = 1) -> bytes:
    """A producer's batch of `n` records; idempotent (PID, epoch 0) from sequence `seq`."""
    builder = (
        BatchBuilder(producer_id=PID, producer_epoch=0, base_sequence=seq)
        if seq >= 0 else BatchBuilder()
    )
    for r in range(n):
        builder.append(NOW + i, None, bytes([i % 256]) * size + bytes([r]), [])
    return builder.build()


def as_stored(records: bytes, base_offset: int, leader_epoch: int) -> bytes:
    """The batch as the log stores it: base_offset and partition_leader_epoch assigned (the
    CRC does not cover them)."""
    return (
        struct.pack(">q", base_offset) + records[8:12] + struct.pack(">i", leader_epoch)
        + records[16:]
    )


class Appender:
    """Appends to a log and remembers what each append must have stored."""

    def __init__(self, log: DiskPartitionLog) -> None:
        self.log = log
        self.stored: list[bytes] = []  # each batch in offset order, as the file must hold it
        self.base_offsets: list[int] = []  # of each append
        self.writes: list[PendingWrite | None] = []

    def append(self, records: bytes, leader_epoch: int = 0) -> PendingWrite | None:
        """One append of `records` (one batch or several back to back)."""
        info = self.log.append_as_leader(records, leader_epoch, NOW)
        assert not info.duplicate
        offset = info.first_offset
        for header in iter_batches(records):
            self.stored.append(as_stored(bytes(header.view()), offset, leader_epoch))
            offset += header.last_offset_delta + 1
        self.base_offsets.append(info.first_offset)
        write = self.log.pending_write()
        self.writes.append(write)
        return write

    def append_written(self, records: bytes, leader_epoch: int = 0) -> None:
        """Append and wait until the bytes are in the file (one writev per call)."""
        write = self.append(records, leader_epoch)
        if write is not None:  # None: the writer's thread was quicker
            asyncio.run(self.log.wait_written(write))
        assert self.log.pending_write() is None


def read_all(log: DiskPartitionLog, max_offset: int | None = None) -> bytes:
    data = log.read(log.log_start_offset, 1 << 30, max_offset=max_offset)
    return b"".join(bytes(chunk) for chunk in data.records)


def log_file_sizes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.log"))


def open_log(
    directory: Path, config: LogConfig, writer: LogDirWriter | None, **kw: object
) -> DiskPartitionLog:
    return DiskPartitionLog.open(  # type: ignore[arg-type]
        str(directory), config, now_ms=NOW, writer=writer, **kw
    )


async def outcomes(
    log: DiskPartitionLog, writes: Sequence[PendingWrite | None]
) -> list[KafkaStorageError | None]:
    """wait_written of each write in turn: None when written, else the error."""
    results: list[KafkaStorageError | None] = []
    for write in writes:
        assert write is not None
        try:
            await asyncio.wait_for(log.wait_written(write), SAFETY_S)
        except KafkaStorageError as err:
            results.append(err)
        else:
            results.append(None)
    return results


def queue_behind_held_write(fake: FaultyOS, appender: Appender, batches: Sequence[bytes]) -> None:
    """The first batch's writev is entered and held at the gate (so it goes alone), the
    others queue behind it; the gate stays closed."""
    fake.hold()
    appender.append(batches[0])
    assert fake.entered.wait(SAFETY_S), "the writer's thread never reached writev"
    for records in batches[1:]:
        appender.append(records)


def three_written(
    directory: Path, writer: LogDirWriter, config: LogConfig | None = None
) -> tuple[DiskPartitionLog, Appender]:
    """A log whose batches 0-2 (offsets 0-2) are in the file."""
    log = open_log(directory, config or LogConfig(), writer)
    appender = Appender(log)
    for i in range(3):
        appender.append_written(batch(i))
    return log, appender


def assert_reopens_with(directory: Path, config: LogConfig, expected: bytes) -> None:
    reopened = open_log(directory, config, None)  # synchronous mode, unclean: recovery scans
    try:
        assert read_all(reopened) == expected
        assert log_file_sizes(directory) == len(expected)
    finally:
        reopened.close()


# --- 1, 2: a failed write and a short write -------------------------------------------------
def test_enospc_fails_that_append_and_every_later_one_and_rolls_back(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    config = LogConfig()
    log, appender = three_written(tmp_path, writer, config)
    written = b"".join(appender.stored)
    fake_os.enospc.add(4)  # the held write of batch 3
    queue_behind_held_write(fake_os, appender, [batch(3), batch(4), batch(5)])
    assert log.log_end_offset == 6  # the bookkeeping ran ahead of the writes
    fake_os.release()

    results = asyncio.run(outcomes(log, appender.writes[3:]))
    assert all(isinstance(err, KafkaStorageError) for err in results)
    assert results[0] is not None and "No space left" in str(results[0])
    assert fake_os.calls == 4  # the writes queued behind the failed one were not attempted
    assert appender.writes[3] is not None and appender.writes[3].error is not None

    assert log.log_end_offset == 3
    assert read_all(log) == written
    assert log_file_sizes(tmp_path) == len(written)
    appender.stored = appender.stored[:3]
    appender.append_written(batch(6))
    assert appender.base_offsets[-1] == 3
    assert read_all(log) == b"".join(appender.stored)
    log.close()
    assert_reopens_with(tmp_path, config, b"".join(appender.stored))


def test_short_write_keeps_the_covered_writes_and_cuts_the_junk(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    config = LogConfig()
    log, appender = three_written(tmp_path, writer, config)
    # Held: batch 3. Queued: batch 4, one append of batches 5 and 6, batch 7.
    queue_behind_held_write(fake_os, appender, [batch(3), batch(4), batch(5) + batch(6), batch(7)])
    assert appender.base_offsets == [0, 1, 2, 3, 4, 5, 7]
    # writev 5 carries the three queued appends; it writes batch 4, all of batch 5 and half
    # of batch 6: the append of 5 and 6 fails whole, so the complete batch 5 goes too.
    fake_os.short[5] = sum(map(len, appender.stored[4:6])) + len(appender.stored[6]) // 2
    fake_os.release()

    results = asyncio.run(outcomes(log, appender.writes[3:]))
    assert results[:2] == [None, None]  # batch 3 alone, then batch 4 inside the short write
    assert all(isinstance(err, KafkaStorageError) for err in results[2:])
    assert "short write" in str(results[2])
    assert fake_os.calls == 5

    written = b"".join(appender.stored[:5])
    assert log.log_end_offset == 5
    assert read_all(log) == written
    assert log_file_sizes(tmp_path) == len(written)  # batch 5 and half of batch 6 are cut
    appender.stored = appender.stored[:5]
    appender.append_written(batch(8))
    assert appender.base_offsets[-1] == 5
    log.close()
    assert_reopens_with(tmp_path, config, b"".join(appender.stored))




def test_real_disk_full_with_queued_writes(small_fs: Path, fake_os: FaultyOS) -> None:
    filler = small_fs / "filler"
    filler.write_bytes(bytes(800 * 1024))
    directory = small_fs / "t-0"
    config = LogConfig()
    writer = LogDirWriter("small")  # no faults injected: the tmpfs writes short, then ENOSPC
    try:
        log = open_log(directory, config, writer)
        appender = Appender(log)
        fake_os.hold()  # the writes queue up (and pending_write() is never None) until all
        writes = [appender.append(batch(i, size=16 * 1024)) for i in range(30)]
        fake_os.release()
        results = asyncio.run(outcomes(log, writes))
        ok = results.index(next(r for r in results if r is not None))
        assert ok > 0, "the file system was full from the start"
        assert results[:ok] == [None] * ok
        assert all(isinstance(err, KafkaStorageError) for err in results[ok:])
        written = b"".join(appender.stored[:ok])
        assert log.log_end_offset == ok
        assert read_all(log) == written
        assert log_file_sizes(directory) == len(written)

        filler.unlink()  # space returns
        appender.stored = appender.stored[:ok]
        appender.append_written(batch(99))
        assert appender.base_offsets[-1] == ok
        log.close()
    finally:
        writer.close()
    assert_reopens_with(directory, config, b"".join(appender.stored))


# --- 3: a failure while the pending writes span rolls ---------------------------------------
def test_a_roll_waits_for_the_queued_writes_and_refuses_after_a_failed_one(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    """A new segment's file must not exist before the bytes below its base are written (a
    crash would keep it, empty, past the stored end: a gap in the offsets). So the append
    that rolls waits for the queued writes, and raises when one of them failed."""
    size = len(batch(0))
    config = LogConfig(segment_bytes=3 * size + size // 2)  # three batches per segment
    log = open_log(tmp_path, config, writer)
    appender = Appender(log)
    for i in range(4):  # segment 0: batches 0-2; segment 3: batch 3
        appender.append_written(batch(i))
    # Held: batch 4. Queued: batch 5, which fails. Segment 3 is then full.
    queue_behind_held_write(fake_os, appender, [batch(4), batch(5)])
    fake_os.enospc.add(6)
    outcome: list[BaseException | None] = []

    def roll() -> None:
        try:
            log.append_as_leader(batch(6), 0, NOW)
            outcome.append(None)
        except BaseException as err:  # reported to the test thread
            outcome.append(err)

    rolling = threading.Thread(target=roll)
    rolling.start()
    time.sleep(0.3)
    assert rolling.is_alive(), "the roll did not wait for the queued writes"
    assert not (tmp_path / f"{6:020d}.log").exists()
    fake_os.release()
    rolling.join(SAFETY_S)
    assert len(outcome) == 1 and isinstance(outcome[0], KafkaStorageError)
    assert log.segment_base_offsets == [0, 3]

    results = asyncio.run(outcomes(log, appender.writes[4:]))
    assert results[0] is None
    assert isinstance(results[1], KafkaStorageError)
    assert log.log_end_offset == 5
    assert os.path.getsize(tmp_path / f"{3:020d}.log") == sum(map(len, appender.stored[3:5]))
    written = b"".join(appender.stored[:5])
    assert read_all(log) == written
    assert log_file_sizes(tmp_path) == len(written)

    # The cut segment is active again: it takes one more batch, then the log rolls at 6.
    appender.stored = appender.stored[:5]
    appender.append_written(batch(10))
    appender.append_written(batch(11))
    assert appender.base_offsets[-2:] == [5, 6]
    assert log.segment_base_offsets == [0, 3, 6]
    log.flush()
    assert {int(p.name[:20]) for p in tmp_path.glob("*.snapshot")} <= {3, 6}
    log.close()
    assert_reopens_with(tmp_path, config, b"".join(appender.stored))


# --- 4: idempotent producer --------------------------------------------------------------------
def test_failed_idempotent_appends_are_forgotten_by_the_producer_state(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    log = open_log(tmp_path, LogConfig(), writer)
    appender = Appender(log)
    for i in range(3):  # sequences 0-1, 2-3, 4-5 at offsets 0-5
        appender.append_written(batch(i, seq=2 * i, n=2))
    fake_os.enospc.add(4)
    queue_behind_held_write(
        fake_os, appender, [batch(3, seq=6, n=2), batch(4, seq=8, n=2)]
    )
    fake_os.release()
    results = asyncio.run(outcomes(log, appender.writes[3:]))
    assert all(isinstance(err, KafkaStorageError) for err in results)
    assert log.log_end_offset == 6

    # The last written batch is still known: a retry of it is a duplicate at its offsets.
    retry = log.append_as_leader(batch(2, seq=4, n=2), 0, NOW)
    assert retry.duplicate and (retry.first_offset, retry.last_offset) == (4, 5)
    # The producer resends the failed batches with their sequences: new appends, in order.
    for i, seq, offset in ((3, 6, 6), (4, 8, 8)):
        info = log.append_as_leader(batch(i, seq=seq, n=2), 0, NOW)
        assert not info.duplicate and info.first_offset == offset
    # A gap after them is still refused (the state did not simply forget the producer).
    with pytest.raises(StorageError) as refused:
        log.append_as_leader(batch(5, seq=14, n=2), 0, NOW)
    assert refused.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    log.settle()
    assert log.log_end_offset == 10
    log.close()


def open_transaction(log: DiskPartitionLog) -> int:
    """The first offset of PID's ongoing transaction, -1 when none."""
    entry = log.producer_state.last_entry(PID)
    assert entry is not None
    return entry.current_txn_first_offset


def test_failed_abort_marker_leaves_the_transaction_open_and_unindexed(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    log, appender = three_written(tmp_path, writer)
    txn = BatchBuilder(producer_id=PID, producer_epoch=0, base_sequence=0, is_transactional=True)
    for r in range(2):
        txn.append(NOW, None, bytes([r]), [])
    appender.append_written(txn.build())  # offsets 3-4
    abort = build_marker_batch(0, PID, 0, EndTransactionMarker(ControlRecordType.ABORT, 0), NOW)
    fake_os.enospc.add(5)
    fake_os.hold()
    log.append_as_leader(abort, 0, NOW, AppendOrigin.COORDINATOR)
    index_path = tmp_path / f"{0:020d}.txnindex"
    assert [t[:3] for t in TransactionIndex(index_path, 0).all_aborted()] == [(PID, 3, 5)]
    assert open_transaction(log) == -1
    write = log.pending_write()
    assert write is not None
    fake_os.release()
    assert isinstance(asyncio.run(outcomes(log, [write]))[0], KafkaStorageError)

    assert log.log_end_offset == 5
    assert TransactionIndex(index_path, 0).all_aborted() == []
    assert open_transaction(log) == 3  # the transaction is open again
    info = log.append_as_leader(abort, 0, NOW, AppendOrigin.COORDINATOR)  # the retried marker
    assert info.first_offset == 5
    log.settle()
    assert [t[:3] for t in TransactionIndex(index_path, 0).all_aborted()] == [(PID, 3, 5)]
    assert open_transaction(log) == -1
    log.close()


# --- 5: leader epochs ----------------------------------------------------------------------------
def test_failed_append_in_a_new_leader_epoch_leaves_no_entry_for_it(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    config = LogConfig()
    log = open_log(tmp_path, config, writer)
    appender = Appender(log)
    for i in range(3):
        appender.append_written(batch(i), leader_epoch=1)
    fake_os.enospc.add(4)
    fake_os.hold()
    appender.append(batch(3), leader_epoch=2)
    assert fake_os.entered.wait(SAFETY_S)
    appender.append(batch(4), leader_epoch=3)
    assert log.leader_epoch_cache.entries == [
        EpochEntry(1, 0), EpochEntry(2, 3), EpochEntry(3, 4)
    ]
    fake_os.release()
    results = asyncio.run(outcomes(log, appender.writes[3:]))
    assert all(isinstance(err, KafkaStorageError) for err in results)

    assert log.leader_epoch_cache.entries == [EpochEntry(1, 0)]
    log.close()
    reopened = open_log(tmp_path, config, None)  # the checkpoint file was rewritten too
    assert reopened.leader_epoch_cache.entries == [EpochEntry(1, 0)]
    reopened.append_as_leader(batch(5), 2, NOW)
    assert reopened.leader_epoch_cache.entries == [EpochEntry(1, 0), EpochEntry(2, 3)]
    reopened.close()


# --- 6: flush and the recovery point --------------------------------------------------------------
def test_flush_after_a_failed_write_rolls_back_first(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    log, appender = three_written(tmp_path, writer)
    fake_os.enospc.add(4)
    queue_behind_held_write(fake_os, appender, [batch(3), batch(4)])
    fake_os.release()
    last = appender.writes[-1]
    assert last is not None
    writer.wait(last)  # the failure happened; nobody asked the log yet
    assert log.log_end_offset == 5

    log.flush()  # no error: the log rolls back, then flushes what is written
    assert log.log_end_offset == 3
    assert log.recovery_point == 3
    assert read_all(log) == b"".join(appender.stored[:3])
    log.close()


def test_flush_job_waiting_for_a_write_that_fails_does_not_move_the_recovery_point(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    log, appender = three_written(tmp_path, writer)
    fake_os.enospc.add(4)
    queue_behind_held_write(fake_os, appender, [batch(3), batch(4)])
    job = log.begin_flush()
    assert job.target_offset == 5 and job.after is not None
    releaser = threading.Timer(0.1, fake_os.release)
    releaser.start()
    job.run()  # the worker thread's part: waits for the writes, then must not fsync
    releaser.join()
    assert isinstance(job.error, OSError)
    with pytest.raises(KafkaStorageError):
        log.finish_flush(job)
    assert log.recovery_point == 0  # never past the written end (3), here not moved at all

    log.flush()  # rolls back, then flushes what is written
    assert (log.log_end_offset, log.recovery_point) == (3, 3)
    log.close()


# --- 7: reads ------------------------------------------------------------------------------------
def test_bounded_read_does_not_wait_for_queued_writes_and_unbounded_read_does(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    log, appender = three_written(tmp_path, writer)
    queue_behind_held_write(fake_os, appender, [batch(3), batch(4)])
    safety = threading.Timer(SAFETY_S, fake_os.release)  # a wrong wait ends, and fails below
    safety.start()
    try:
        started = time.monotonic()
        for offset in range(3):
            data = log.read(offset, 1 << 20, max_offset=3)
            assert b"".join(map(bytes, data.records)) == b"".join(appender.stored[offset:3])
        assert not fake_os.gate.is_set(), "the bounded reads waited for the writer"
        assert time.monotonic() - started < SAFETY_S
    finally:
        safety.cancel()

    releaser = threading.Timer(0.3, fake_os.release)
    started = time.monotonic()
    releaser.start()
    everything = read_all(log)  # holds batches 3 and 4: waits until they are written
    assert time.monotonic() - started >= 0.25
    assert fake_os.gate.is_set()
    assert everything == b"".join(appender.stored)
    log.close()


def test_bounded_read_after_a_clean_reopen_does_not_wait(
    tmp_path: Path, fake_os: FaultyOS
) -> None:
    logs = DiskPartitionLogs([tmp_path])  # write-behind, its own writer
    log = logs.create("t", 0, LogConfig(), bytes(16))
    assert isinstance(log, DiskPartitionLog)
    appender = Appender(log)
    for i in range(3):
        appender.append_written(batch(i))
    logs.close()
    logs = DiskPartitionLogs([tmp_path])  # clean shutdown: segments are loaded, not scanned
    try:
        log = logs.get("t", 0)
        assert log is not None
        appender.log = log
        queue_behind_held_write(fake_os, appender, [batch(3), batch(4)])
        safety = threading.Timer(1.0, fake_os.release)  # short: this test is expected to fail
        safety.start()
        try:
            data = log.read(0, 1 << 20, max_offset=3)
            assert not fake_os.gate.is_set(), "the bounded read waited for the writer"
        finally:
            safety.cancel()
            fake_os.release()
        assert b"".join(map(bytes, data.records)) == b"".join(appender.stored[:3])
    finally:
        logs.close()


# --- 8: back-pressure -----------------------------------------------------------------------------
def test_submit_blocks_while_more_than_max_pending_bytes_are_queued(
    tmp_path: Path, fake_os: FaultyOS, make_writer: Callable[..., LogDirWriter]
) -> None:
    size = len(batch(0))
    writer = make_writer(max_pending_bytes=2 * size + size // 2)
    log = open_log(tmp_path, LogConfig(), writer)
    appender = Appender(log)
    fake_os.hold()
    appender.append(batch(0))  # held in writev: submitted, not written
    assert fake_os.entered.wait(SAFETY_S)
    done: list[int] = []

    def produce() -> None:
        for i in range(1, 5):
            appender.append(batch(i))
            done.append(i)

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + SAFETY_S
    while not done and time.monotonic() < deadline:
        time.sleep(0.01)
    producer.join(0.2)
    # Batch 1 fits (2 pending), batch 2 makes 3 > 2.5: its submit blocks.
    assert producer.is_alive()
    assert done == [1]
    fake_os.release()
    producer.join(SAFETY_S)
    assert not producer.is_alive()
    assert done == [1, 2, 3, 4]
    log.settle()
    assert read_all(log) == b"".join(appender.stored)
    log.close()


# --- 9: close -------------------------------------------------------------------------------------
def test_log_close_waits_for_the_queued_writes(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    config = LogConfig()
    log = open_log(tmp_path, config, writer)
    appender = Appender(log)
    queue_behind_held_write(fake_os, appender, [batch(i) for i in range(5)])
    releaser = threading.Timer(0.2, fake_os.release)
    started = time.monotonic()
    releaser.start()
    log.close()
    assert time.monotonic() - started >= 0.15
    assert all(w is not None and w.done and w.error is None for w in appender.writes)
    assert_reopens_with(tmp_path, config, b"".join(appender.stored))


def test_writer_close_writes_what_is_queued(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    config = LogConfig()
    log = open_log(tmp_path, config, writer)
    appender = Appender(log)
    queue_behind_held_write(fake_os, appender, [batch(i) for i in range(5)])
    releaser = threading.Timer(0.2, fake_os.release)
    releaser.start()
    writer.close()  # the I/O thread drains its queue before it stops
    assert all(w is not None and w.done and w.error is None for w in appender.writes)
    assert log_file_sizes(tmp_path) == sum(map(len, appender.stored))
    log.close()
    assert_reopens_with(tmp_path, config, b"".join(appender.stored))


def test_partition_logs_close_writes_every_queued_batch(
    tmp_path: Path, fake_os: FaultyOS
) -> None:
    logs = DiskPartitionLogs([tmp_path])
    log = logs.create("t", 0, LogConfig(), bytes(16))
    assert isinstance(log, DiskPartitionLog)
    appender = Appender(log)
    queue_behind_held_write(fake_os, appender, [batch(i) for i in range(5)])
    releaser = threading.Timer(0.2, fake_os.release)
    releaser.start()
    logs.close()
    logs = DiskPartitionLogs([tmp_path], write_behind=False)
    reopened = logs.get("t", 0)
    assert reopened is not None
    assert read_all(reopened) == b"".join(appender.stored)
    logs.close()


# --- 10: asyncio ---------------------------------------------------------------------------------
def test_async_waiters_resolve_and_the_failed_ones_raise(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    config = LogConfig()
    log = open_log(tmp_path, config, writer)
    appender = Appender(log)
    size = len(batch(0))
    # The file system fills up in the middle of batch 30: 0-29 fit whatever writev groups
    # the writer forms, 30 writes short and everything after it fails.
    fake_os.full_at = 30 * size + size // 3
    fake_os.hold()  # every write stays pending (pending_write() is never None) until all queued

    async def produce() -> list[BaseException | None]:
        waiters = []
        for i in range(40):
            write = appender.append(batch(i))
            assert write is not None
            waiters.append(asyncio.ensure_future(log.wait_written(write)))
            if i % 8 == 0:
                await asyncio.sleep(0)  # let some waits start while appends go on
        threading.Timer(0.1, fake_os.release).start()
        return await asyncio.wait_for(
            asyncio.gather(*waiters, return_exceptions=True), SAFETY_S
        )

    results = asyncio.run(produce())
    assert results[:30] == [None] * 30
    assert all(isinstance(err, KafkaStorageError) for err in results[30:])
    assert log.log_end_offset == 30
    written = b"".join(appender.stored[:30])
    assert read_all(log) == written
    assert log_file_sizes(tmp_path) == len(written)
    log.close()
    assert_reopens_with(tmp_path, config, written)


def test_a_waiter_left_behind_by_a_closed_loop_does_not_stall_later_loops(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    log = open_log(tmp_path, LogConfig(), writer)
    appender = Appender(log)
    fake_os.hold()
    write = appender.append(batch(0))
    assert write is not None

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(log.wait_written(write), 0.05)

    asyncio.run(give_up())  # its loop is closed when the write finishes
    fake_os.release()
    writer.wait(write)

    async def wait_for_held_write() -> None:
        fake_os.hold()
        held = appender.append(batch(1))
        assert held is not None
        threading.Timer(0.1, fake_os.release).start()
        await asyncio.wait_for(log.wait_written(held), 1.0)  # short: expected to fail

    asyncio.run(wait_for_held_write())
    log.close()


def test_a_write_that_failed_before_the_caller_looked_is_still_reported(
    tmp_path: Path, fake_os: FaultyOS, writer: LogDirWriter
) -> None:
    """The broker takes pending_write() right after the append; when the writer's thread has
    already failed the write by then, the answer must still be the failure, not an ack."""
    log = open_log(tmp_path, LogConfig(), writer)
    appender = Appender(log)
    appender.append(batch(0))
    log.settle()
    fake_os.enospc.add(fake_os.calls + 1)
    appender.append(batch(1))
    last = appender.writes[-1]
    assert last is not None
    writer.wait(last)  # done, and failed, before anyone asked
    assert last.error is not None
    pending = log.pending_write()
    assert pending is last
    with pytest.raises(KafkaStorageError):
        asyncio.run(log.wait_written(pending))
    assert log.log_end_offset == 1
    assert read_all(log) == appender.stored[0]
    log.close()


def test_small_appends_to_an_idle_log_are_written_at_once(
    tmp_path: Path, fake_os: FaultyOS
) -> None:
    """Below hand_off_min_bytes an append to a log with nothing queued is written on the
    caller's thread (no hand-off latency) and fails there; with writes queued it goes behind
    them, in order; from the threshold on it is handed off."""
    writer = LogDirWriter("inline", hand_off_min_bytes=4096)
    try:
        log = open_log(tmp_path, LogConfig(), writer)
        appender = Appender(log)
        assert appender.append(batch(0)) is None  # written already
        assert log_file_sizes(tmp_path) == len(appender.stored[0])
        assert fake_os.calls == 0  # not by the writer's thread

        queue_behind_held_write(fake_os, appender, [batch(1, size=5000), batch(2), batch(3)])
        assert all(w is not None for w in appender.writes[1:])  # small ones queued behind
        fake_os.release()
        log.settle()
        assert read_all(log) == b"".join(appender.stored)

        # A write on the caller's thread that fails raises at once; the log is unchanged.
        size, leo = log.size_bytes, log.log_end_offset
        failing = FaultyOS()
        failing.enospc.add(1)
        original = segment_module.os
        segment_module.os = failing
        try:
            with pytest.raises(KafkaStorageError):
                log.append_as_leader(batch(4), 0, NOW)
        finally:
            segment_module.os = original
        assert (log.size_bytes, log.log_end_offset) == (size, leo)
        assert log_file_sizes(tmp_path) == size
        appender.append(batch(5))
        assert read_all(log) == b"".join(appender.stored[:4]) + appender.stored[-1]
        log.close()
    finally:
        fake_os.release()
        writer.close()
