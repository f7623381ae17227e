"""A corrupt `.txnindex` is rebuilt when the log opens (Kafka recovers the segment and its
transaction index from the producer state as of the segment's start): the aborted
transactions a read_committed Fetch is told about are the same as before the corruption,
including one whose data starts segments before its ABORT marker."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from josef.records.builder import BatchBuilder
from josef.records.control import ControlRecordType, EndTransactionMarker, build_marker_batch
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.producer_state import AppendOrigin
from josef.storage.txn_index import ENTRY_SIZE, AbortedTxn, TransactionIndex

NOW = 1_700_000_000_000
CONFIG = LogConfig()  # segments are rolled explicitly


class Writer:
    """Appends transactional and plain batches to a log, keeping each producer's sequence."""

    def __init__(self, log: DiskPartitionLog) -> None:
        self.log = log
        self._sequences: dict[int, int] = {}

    def data(self, pid: int, records: int = 2, *, txn: bool = True) -> None:
        seq = self._sequences.get(pid, 0)
        builder = BatchBuilder(
            producer_id=pid, producer_epoch=0, base_sequence=seq, is_transactional=txn
        )
        for i in range(records):
            builder.append(NOW + i, b"k%d" % pid, b"v" * 20, [])
        self.log.append_as_leader(builder.build(), 0, NOW)
        self._sequences[pid] = seq + records

    def plain(self) -> None:
        builder = BatchBuilder()
        builder.append(NOW, b"plain", b"x", [])
        self.log.append_as_leader(builder.build(), 0, NOW)

    def end(self, pid: int, *, abort: bool) -> None:
        kind = ControlRecordType.ABORT if abort else ControlRecordType.COMMIT
        marker = build_marker_batch(0, pid, 0, EndTransactionMarker(kind, 0), NOW)
        self.log.append_as_leader(marker, 0, NOW, AppendOrigin.COORDINATOR)


def index_of(directory: Path, base: int) -> TransactionIndex:
    return TransactionIndex(directory / f"{base:020d}.txnindex", base)


def indexed(log: DiskPartitionLog) -> dict[int, list[AbortedTxn]]:
    """The aborted transactions in each segment's .txnindex file."""
    directory = Path(log.directory)
    result = {}
    for base in log.segment_base_offsets:
        index = index_of(directory, base)
        result[base] = index.all_aborted()
        index.close()
    return result


def collect(log: DiskPartitionLog, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
    """Kafka's collectAbortedTransactions: from the segment holding fetch_offset on, each
    segment's index until one answers complete (what a read_committed Fetch returns)."""
    directory = Path(log.directory)
    bases = log.segment_base_offsets
    first = max(i for i, base in enumerate(bases) if base <= fetch_offset or i == 0)
    found: list[AbortedTxn] = []
    for base in bases[first:]:
        index = index_of(directory, base)
        result = index.collect_aborted(fetch_offset, upper_bound)
        index.close()
        found += result.aborted_transactions
        if result.is_complete:
            break
    return found


def answers(log: DiskPartitionLog, step: int = 1) -> dict[tuple[int, int], list[AbortedTxn]]:
    """The aborted transactions of Fetch ranges [fetch, upper) over the whole log."""
    end = log.log_end_offset
    return {
        (fetch, upper): collect(log, fetch, upper)
        for fetch in range(log.log_start_offset, end, step)
        for upper in range(fetch + 1, end + 2, step)
    }


def write_workload(directory: Path) -> DiskPartitionLog:
    """Aborted and committed transactions over four segments; producer 1's transaction
    spans three of them, and producer 2's abort happens while producer 1's is open."""
    log = DiskPartitionLog.open(str(directory), CONFIG, now_ms=NOW)
    w = Writer(log)
    w.data(1)  # 0-1: producer 1's transaction starts
    w.data(2)  # 2-3
    w.plain()  # 4
    log.roll(NOW)
    w.data(1)  # 5-6
    w.data(3)  # 7-8
    w.end(2, abort=True)  # 9: last stable offset 0 (producer 1 still open)
    w.end(3, abort=False)  # 10
    log.roll(NOW)
    w.data(1)  # 11-12
    w.data(4)  # 13-14
    w.end(1, abort=True)  # 15: spans segments 0, 5 and 11; bounded by producer 4 (13)
    w.end(4, abort=True)  # 16
    w.data(3)  # 17-18
    log.roll(NOW)
    w.data(5)  # 19-20
    w.end(3, abort=True)  # 21
    w.plain()  # 22
    log.roll(NOW)
    w.end(5, abort=True)  # 23: in the active segment
    w.data(2, txn=False)  # 24-25
    return log


def corrupt(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        data = raw[:-7]
    elif how == "garbage":
        rng = random.Random(7)
        data = b"\x7f\x13" + bytes(rng.randrange(256) for _ in range(2 * ENTRY_SIZE - 2))
    elif how == "negative-offsets":  # passes the version check, ends before the segment
        data = bytes(2) + b"\xff" * (ENTRY_SIZE - 2)
    else:
        assert how == "wrong-order" and len(raw) >= ENTRY_SIZE
        if len(raw) == ENTRY_SIZE:
            data = raw + raw  # the same marker twice
        else:
            data = raw[ENTRY_SIZE : 2 * ENTRY_SIZE] + raw[:ENTRY_SIZE] + raw[2 * ENTRY_SIZE :]
    path.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "garbage", "negative-offsets", "wrong-order"])
@pytest.mark.parametrize("shutdown", ["clean", "unclean"])
def test_a_corrupt_txnindex_is_rebuilt(tmp_path: Path, how: str, shutdown: str) -> None:
    log = write_workload(tmp_path)
    expected_indexes, expected = indexed(log), answers(log)
    assert expected_indexes[11] == [AbortedTxn(1, 0, 15, 13), AbortedTxn(4, 13, 16, 17)]
    assert expected_indexes[5] == [AbortedTxn(2, 2, 9, 0)]
    assert expected[(5, 8)] == [AbortedTxn(2, 2, 9, 0), AbortedTxn(1, 0, 15, 13)]
    if shutdown == "clean":
        log.close()
    else:
        log.flush()
        log.close_without_flush()
    for base in (5, 11, 19):  # older segments, below any replay of the tail
        corrupt(tmp_path / f"{base:020d}.txnindex", how)
    kwargs = {"clean_shutdown": True} if shutdown == "clean" else {"recovery_point": 19}
    log = DiskPartitionLog.open(str(tmp_path), CONFIG, now_ms=NOW, **kwargs)  # type: ignore[arg-type]
    try:
        assert indexed(log) == expected_indexes
        assert answers(log) == expected
    finally:
        log.close()
    log = DiskPartitionLog.open(str(tmp_path), CONFIG, now_ms=NOW, clean_shutdown=True)
    try:  # the rebuilt files were flushed at close and pass the sanity check now
        assert indexed(log) == expected_indexes
    finally:
        log.close()


@pytest.mark.parametrize("lost", ["snapshot-at-base", "all-snapshots"])
def test_rebuild_without_the_segments_snapshot(tmp_path: Path, lost: str) -> None:
    """An older snapshot, or the log start, is replayed from instead (more batches)."""
    log = write_workload(tmp_path)
    expected_indexes = indexed(log)
    log.close()
    doomed = [tmp_path / f"{11:020d}.snapshot"]
    if lost == "all-snapshots":
        doomed = list(tmp_path.glob("*.snapshot"))
    for path in doomed:
        path.unlink()
    corrupt(tmp_path / f"{11:020d}.txnindex", "wrong-order")
    log = DiskPartitionLog.open(str(tmp_path), CONFIG, now_ms=NOW, clean_shutdown=True)
    try:
        assert indexed(log) == expected_indexes
    finally:
        log.close()


def test_rebuild_leaves_the_snapshots_alone(tmp_path: Path) -> None:
    log = write_workload(tmp_path)
    log.close()
    before = sorted(n for n in os.listdir(tmp_path) if n.endswith(".snapshot"))
    assert len(before) >= 4
    corrupt(tmp_path / f"{5:020d}.txnindex", "truncated")
    log = DiskPartitionLog.open(str(tmp_path), CONFIG, now_ms=NOW, clean_shutdown=True)
    try:
        assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".snapshot")) == before
        w = Writer(log)
        w.data(6)
        w.end(6, abort=True)  # appends go on with the producer state of the real tail
        assert indexed(log)[log.active_base_offset][-1].producer_id == 6
    finally:
        log.close()


@pytest.mark.parametrize("seed", range(6))
def test_random_workloads_rebuild_every_corrupt_index(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    log = DiskPartitionLog.open(str(tmp_path), CONFIG, now_ms=NOW)
    w = Writer(log)
    open_txns: set[int] = set()
    for _ in range(60):
        pid = rng.randrange(1, 6)
        choice = rng.random()
        if choice < 0.12:
            log.roll(NOW)
        elif pid in open_txns and choice < 0.45:
            w.end(pid, abort=rng.random() < 0.7)
            open_txns.discard(pid)
        elif choice < 0.9:
            w.data(pid, rng.randrange(1, 4))
            open_txns.add(pid)
        else:
            w.plain()
    expected_indexes, expected = indexed(log), answers(log, step=7)
    log.close()
    for base, txns in expected_indexes.items():
        if txns:
            corrupt(tmp_path / f"{base:020d}.txnindex", "garbage")
    log = DiskPartitionLog.open(str(tmp_path), CONFIG, now_ms=NOW, clean_shutdown=True)
    try:
        assert indexed(log) == expected_indexes
        assert answers(log, step=7) == expected
    finally:
        log.close()
