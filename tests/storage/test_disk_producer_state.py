"""Disk-engine specifics of the producer state, leader epochs and aborted-transaction index:
snapshot files (written by flush jobs at roll and close), recovery from a snapshot plus a
replay of the tail, recovery with no snapshot at all, and the `.txnindex` of segments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from josef.protocol.errors import ErrorCode
from josef.records.builder import BatchBuilder
from josef.records.control import ControlRecordType, EndTransactionMarker, build_marker_batch
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.errors import StorageError
from josef.storage.leader_epoch import LEADER_EPOCH_CHECKPOINT
from josef.storage.producer_state import AppendOrigin
from josef.storage.txn_index import AbortedTxn, TransactionIndex

NOW = 1_700_000_000_000
PID = 77
SMALL_SEGMENTS = LogConfig(segment_bytes=600)


def idempotent(seq: int, n: int = 2, *, pid: int = PID, txn: bool = False) -> bytes:
    builder = BatchBuilder(producer_id=pid, producer_epoch=0, base_sequence=seq,
                           is_transactional=txn)
    for i in range(n):
        builder.append(NOW + seq + i, b"k", b"v" * 50, [])
    return builder.build()


def marker(abort: bool, pid: int = PID) -> bytes:
    kind = ControlRecordType.ABORT if abort else ControlRecordType.COMMIT
    return build_marker_batch(0, pid, 0, EndTransactionMarker(kind, 0), NOW)


def open_log(path: Path, config: LogConfig = SMALL_SEGMENTS, **kw: object) -> DiskPartitionLog:
    return DiskPartitionLog.open(str(path), config, now_ms=NOW, **kw)  # type: ignore[arg-type]


def snapshots(path: Path) -> list[int]:
    return sorted(int(n[:20]) for n in os.listdir(path) if n.endswith(".snapshot"))


def append_sequences(log: DiskPartitionLog, upto: int) -> None:
    for seq in range(0, upto, 2):
        log.append_as_leader(idempotent(seq), 0, NOW)


def assert_next_sequence(log: DiskPartitionLog, seq: int) -> None:
    """`seq` - 2 is a duplicate, seq + 2 a gap, seq is accepted."""
    assert log.append_as_leader(idempotent(seq - 2), 0, NOW).duplicate
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent(seq + 2), 0, NOW)
    assert raised.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert not log.append_as_leader(idempotent(seq), 0, NOW).duplicate


def test_snapshots_are_written_by_the_flush_after_a_roll_and_at_close(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    append_sequences(log, 20)
    assert len(log.segment_base_offsets) > 2
    assert snapshots(tmp_path) == []  # encoded at the roll, not written on the loop
    log.flush()
    assert snapshots(tmp_path) == log.segment_base_offsets[1:]
    log.close()
    assert snapshots(tmp_path)[-1] == log.log_end_offset


def test_reopen_loads_the_newest_snapshot_and_replays_the_tail(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    append_sequences(log, 20)
    log.flush()  # snapshots at the rolls; the active segment's batches are only in the log
    log.close_without_flush()
    log = open_log(tmp_path, recovery_point=0)
    assert log.producer_state.map_end_offset == log.log_end_offset
    assert_next_sequence(log, 20)


def test_unclean_reopen_without_any_snapshot_replays_the_whole_log(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    append_sequences(log, 20)
    log.flush()
    log.close_without_flush()
    for offset in snapshots(tmp_path):
        os.unlink(tmp_path / f"{offset:020d}.snapshot")
    log = open_log(tmp_path, recovery_point=0)
    assert_next_sequence(log, 20)


def test_a_corrupt_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    append_sequences(log, 20)
    log.close()
    newest = snapshots(tmp_path)[-1]
    (tmp_path / f"{newest:020d}.snapshot").write_bytes(b"\x00\x01garbage")
    log = open_log(tmp_path, clean_shutdown=True)
    assert newest not in snapshots(tmp_path)
    assert_next_sequence(log, 20)


def test_truncation_drops_later_snapshots_and_reloads(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    append_sequences(log, 20)
    log.flush()
    log.truncate_to(6)
    assert all(offset <= 6 for offset in snapshots(tmp_path))
    assert_next_sequence(log, 6)


def test_retention_deletes_the_snapshots_of_deleted_segments(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    append_sequences(log, 20)
    log.flush()
    log.set_high_watermark(log.log_end_offset)
    first_kept = log.segment_base_offsets[2]
    log.delete_records_before(first_kept)
    assert snapshots(tmp_path)[0] >= first_kept
    assert_next_sequence(log, 20)  # the snapshot still knows the producer


def test_aborted_transactions_go_to_the_txnindex_of_the_marker_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig())
    log.append_as_leader(idempotent(0, txn=True), 0, NOW)
    log.append_as_leader(idempotent(0, pid=PID + 1, txn=True), 0, NOW)
    log.append_as_leader(marker(abort=True), 0, NOW, AppendOrigin.COORDINATOR)
    log.append_as_leader(marker(abort=False, pid=PID + 1), 0, NOW, AppendOrigin.COORDINATOR)
    log.flush()
    path = tmp_path / f"{0:020d}.txnindex"
    # The other producer's open transaction (from offset 2) bounds the last stable offset.
    expected = [AbortedTxn(PID, 0, 4, 2)]
    assert TransactionIndex(path, 0).all_aborted() == expected
    log.close_without_flush()
    log = open_log(tmp_path, LogConfig(), recovery_point=0)
    assert TransactionIndex(path, 0).all_aborted() == expected
    log.truncate_to(4)
    assert TransactionIndex(path, 0).all_aborted() == []


def test_an_unflushed_txnindex_is_rebuilt_by_the_replay(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig())
    log.append_as_leader(idempotent(0, txn=True), 0, NOW)
    log.append_as_leader(marker(abort=True), 0, NOW, AppendOrigin.COORDINATOR)
    log.close_without_flush()
    path = tmp_path / f"{0:020d}.txnindex"
    os.unlink(path)
    open_log(tmp_path, LogConfig(), recovery_point=0)
    assert TransactionIndex(path, 0).all_aborted() == [AbortedTxn(PID, 0, 2, 3)]


def test_a_corrupt_epoch_checkpoint_is_rebuilt_from_the_batches(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig())
    log.append_as_leader(idempotent(0), 2, NOW)
    log.append_as_leader(idempotent(2), 4, NOW)
    log.close()
    (tmp_path / LEADER_EPOCH_CHECKPOINT).write_text("garbage\n")
    log = open_log(tmp_path, LogConfig(), clean_shutdown=True)
    assert [tuple(e) for e in log.leader_epoch_cache.entries] == [(2, 0), (4, 2)]
