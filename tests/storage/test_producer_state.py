"""Producer state: Kafka's idempotence, epoch, transaction and snapshot semantics."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from josef.protocol.errors import ErrorCode
from josef.records.batch import BatchHeader
from josef.records.builder import BatchBuilder
from josef.records.control import ControlRecordType, EndTransactionMarker, build_marker_batch
from josef.storage.api import LogConfig
from josef.storage.disk.manager import DiskPartitionLogs
from josef.storage.errors import StorageError
from josef.storage.memory import MemoryPartitionLogs
from josef.storage.producer_state import (
    DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    INT32_MAX,
    AppendOrigin,
    AppendOutcome,
    ProducerStateManager,
    decode_snapshot,
    encode_snapshot,
    snapshot_path,
)

NOW = 1_700_000_000_000


def data_batch(pid, epoch, seq, count=1, *, txn=False, ts=NOW) -> BatchHeader:
    builder = BatchBuilder(
        producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=txn
    )
    for i in range(count):
        builder.append(ts, b"k%d" % i, b"v")
    return BatchHeader(bytearray(builder.build()))


def marker_batch(pid, epoch, *, abort, coordinator_epoch=0, ts=NOW):
    marker = EndTransactionMarker(
        ControlRecordType.ABORT if abort else ControlRecordType.COMMIT, coordinator_epoch
    )
    return BatchHeader(bytearray(build_marker_batch(0, pid, epoch, marker, ts))), marker


class Log:
    """The minimum of a partition log around the manager: offsets and the batches written."""

    def __init__(self, directory: Path, **kwargs) -> None:
        self.state = ProducerStateManager(directory, **kwargs)
        self.log_end_offset = 0
        self.written: list[tuple[bytes, EndTransactionMarker | None]] = []
        self.completed = []

    def append(self, header, marker=None, origin=AppendOrigin.CLIENT):
        header.set_base_offset(self.log_end_offset)
        update = self.state.prepare_update(origin)
        check = update.append(header, marker)
        if check.outcome is AppendOutcome.APPEND:
            self.log_end_offset = header.next_offset
            self.written.append((bytes(header.view()), marker))
            self.completed += self.state.commit_update(update, self.log_end_offset)
        return check


@pytest.fixture
def log(tmp_path):
    return Log(tmp_path)


def test_in_order_sequences_append(log):
    for seq in range(0, 30, 3):
        assert log.append(data_batch(7, 0, seq, 3)).outcome is AppendOutcome.APPEND
    entry = log.state.last_entry(7)
    assert entry.last_seq == 29 and entry.last_data_offset == 29
    assert len(entry.batches) == 5


def test_duplicate_of_each_of_last_five_returns_original_offsets(log):
    for seq in range(0, 12, 2):
        log.append(data_batch(7, 0, seq, 2))
    # batches at seq 2..11 (offsets 2..11) are the last five
    for seq in range(2, 12, 2):
        check = log.append(data_batch(7, 0, seq, 2))
        assert check.outcome is AppendOutcome.DUPLICATE
        assert (check.first_offset, check.last_offset) == (seq, seq + 1)
    assert log.log_end_offset == 12
    # the sixth-newest batch has been forgotten: a retry of it is out of order
    check = log.append(data_batch(7, 0, 0, 2))
    assert check.outcome is AppendOutcome.ERROR
    assert check.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_duplicate_needs_same_range_and_epoch(log):
    log.append(data_batch(7, 0, 0, 4))
    assert log.append(data_batch(7, 0, 0, 2)).error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(data_batch(7, 1, 0, 4)).outcome is AppendOutcome.APPEND  # new epoch


def test_gap_is_out_of_order(log):
    log.append(data_batch(7, 0, 0, 5))
    check = log.append(data_batch(7, 0, 6))
    assert check.outcome is AppendOutcome.ERROR
    assert check.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.state.last_entry(7).last_seq == 4


def test_unknown_producer_accepted_at_any_sequence(log):
    # KIP-360: the broker no longer answers UNKNOWN_PRODUCER_ID
    assert log.append(data_batch(9, 3, 12345)).outcome is AppendOutcome.APPEND
    assert log.append(data_batch(9, 3, 12346)).outcome is AppendOutcome.APPEND


def test_epoch_bump_must_restart_at_zero(log):
    log.append(data_batch(7, 0, 0, 3))
    check = log.append(data_batch(7, 1, 3))
    assert check.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append(data_batch(7, 1, 0)).outcome is AppendOutcome.APPEND
    assert log.state.last_entry(7).producer_epoch == 1
    assert len(log.state.last_entry(7).batches) == 1


def test_older_epoch_is_fenced(log):
    log.append(data_batch(7, 5, 0))
    check = log.append(data_batch(7, 4, 1))
    assert check.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    # replication trusts the leader
    assert log.append(data_batch(7, 4, 1), origin=AppendOrigin.REPLICATION).outcome is (
        AppendOutcome.APPEND
    )


def test_sequence_wraps_at_int32_max(log):
    log.append(data_batch(7, 0, INT32_MAX - 1, 2))
    assert log.state.last_entry(7).last_seq == INT32_MAX
    assert log.append(data_batch(7, 0, 0, 2)).outcome is AppendOutcome.APPEND
    # a batch spanning the wrap: INT32_MAX-1 .. 1 in a fresh epoch-less producer
    log.append(data_batch(8, 0, INT32_MAX - 1, 4))
    assert log.state.last_entry(8).last_seq == 1
    check = log.append(data_batch(8, 0, INT32_MAX - 1, 4))
    assert check.outcome is AppendOutcome.DUPLICATE
    assert log.append(data_batch(8, 0, 2)).outcome is AppendOutcome.APPEND


def test_validation_does_not_mutate(log):
    log.append(data_batch(7, 0, 0))
    before = encode_snapshot(list(log.state.producers.values()))
    update = log.state.prepare_update(AppendOrigin.CLIENT)
    header = data_batch(7, 0, 1, txn=True)
    header.set_base_offset(1)
    assert update.append(header).outcome is AppendOutcome.APPEND
    update2 = log.state.prepare_update(AppendOrigin.CLIENT)
    assert update2.append(data_batch(11, 0, 0)).outcome is AppendOutcome.APPEND
    # neither update committed (e.g. the write failed)
    assert encode_snapshot(list(log.state.producers.values())) == before
    assert log.state.first_unstable_offset() is None
    assert log.state.last_entry(11) is None
    with pytest.raises(AssertionError):
        bad = log.state.prepare_update(AppendOrigin.CLIENT)
        bad.append(data_batch(7, 0, 5))
        log.state.commit_update(bad, 10)


def test_several_batches_of_one_producer_in_one_update(log):
    update = log.state.prepare_update(AppendOrigin.REPLICATION)
    for i, seq in enumerate((0, 1, 2)):
        h = data_batch(7, 0, seq)
        h.set_base_offset(i)
        assert update.append(h).outcome is AppendOutcome.APPEND
    log.state.commit_update(update, 3)
    assert [b.last_seq for b in log.state.last_entry(7).batches] == [0, 1, 2]
    # and a client update validates later batches against the staged earlier ones
    update = log.state.prepare_update(AppendOrigin.CLIENT)
    for i, seq in enumerate((3, 5)):
        h = data_batch(7, 0, seq)
        h.set_base_offset(3 + i)
        check = update.append(h)
    assert check.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_transaction_lifecycle_and_last_stable_offset(log):
    state = log.state
    log.append(data_batch(1, 0, 0, 2, txn=True))  # offsets 0-1
    log.append(data_batch(2, 0, 0, 1, txn=True))  # offset 2
    log.append(data_batch(1, 0, 2, 1, txn=True))  # offset 3
    assert state.first_unstable_offset() == 0
    assert state.ongoing_transactions() == [(1, 0), (2, 2)]
    header, marker = marker_batch(1, 0, abort=True)
    assert log.append(header, marker, AppendOrigin.COORDINATOR).outcome is AppendOutcome.APPEND
    (txn,) = log.completed
    assert (txn.producer_id, txn.first_offset, txn.last_offset, txn.is_aborted) == (1, 0, 4, True)
    assert txn.last_stable_offset == 2  # producer 2's transaction is still open
    assert state.first_unstable_offset() == 0  # marker not yet below the high watermark
    state.on_high_watermark_updated(5)
    assert state.first_unstable_offset() == 2
    header, marker = marker_batch(2, 0, abort=False)
    log.append(header, marker, AppendOrigin.COORDINATOR)
    assert log.completed[-1].is_aborted is False
    assert log.completed[-1].last_stable_offset == 6
    assert state.first_unstable_offset() == 2  # decided, marker at 5 not yet replicated
    state.on_high_watermark_updated(5)
    assert state.first_unstable_offset() == 2
    state.on_high_watermark_updated(6)
    assert state.first_unstable_offset() is None


def test_non_transactional_batch_inside_transaction_is_invalid(log):
    log.append(data_batch(1, 0, 0, txn=True))
    assert log.append(data_batch(1, 0, 1)).error_code == ErrorCode.INVALID_TXN_STATE


def test_marker_checks_epochs(log):
    log.append(data_batch(1, 3, 0, txn=True))
    header, marker = marker_batch(1, 2, abort=True)
    check = log.append(header, marker, AppendOrigin.COORDINATOR)
    assert check.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    header, marker = marker_batch(1, 3, abort=False, coordinator_epoch=5)
    assert log.append(header, marker, AppendOrigin.COORDINATOR).outcome is AppendOutcome.APPEND
    log.append(data_batch(1, 3, 1, txn=True))
    header, marker = marker_batch(1, 3, abort=True, coordinator_epoch=4)
    check = log.append(header, marker, AppendOrigin.COORDINATOR)
    assert check.error_code == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    # a marker with a bumped epoch (abort on timeout) is accepted and clears old batches
    header, marker = marker_batch(1, 4, abort=True, coordinator_epoch=5)
    assert log.append(header, marker, AppendOrigin.COORDINATOR).outcome is AppendOutcome.APPEND
    entry = log.state.last_entry(1)
    assert entry.producer_epoch == 4 and not entry.batches
    assert entry.current_txn_first_offset == -1


def test_marker_without_data_completes_nothing(log):
    header, marker = marker_batch(1, 0, abort=True)
    assert log.append(header, marker, AppendOrigin.COORDINATOR).outcome is AppendOutcome.APPEND
    assert log.completed == []


def test_expiration(log):
    log.append(data_batch(1, 0, 0, ts=NOW))
    log.append(data_batch(2, 0, 0, ts=NOW + 1000))
    log.append(data_batch(3, 0, 0, txn=True, ts=NOW))
    expiry = log.state.producer_id_expiration_ms
    assert log.state.remove_expired_producers(NOW + expiry - 1) == 0
    assert log.state.remove_expired_producers(NOW + expiry) == 1
    assert sorted(log.state.producers) == [2, 3]  # 3 is inside a transaction


def test_full_table_evicts_least_recent_idle_producer(tmp_path):
    log = Log(tmp_path, max_producers=3)
    log.append(data_batch(1, 0, 0, txn=True))
    log.append(data_batch(2, 0, 0))
    log.append(data_batch(3, 0, 0))
    log.append(data_batch(2, 0, 1))  # 2 is now more recent than 3
    log.append(data_batch(4, 0, 0))
    assert sorted(log.state.producers) == [1, 2, 4]
    log.append(data_batch(2, 0, 2, txn=True))
    log.append(data_batch(4, 0, 1, txn=True))
    check = log.append(data_batch(5, 0, 0))
    assert check.error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    assert sorted(log.state.producers) == [1, 2, 4]


def test_snapshot_layout_matches_kafka(tmp_path):
    log = Log(tmp_path)
    log.append(data_batch(42, 3, 10, 4, txn=True, ts=NOW))
    data = log.state.snapshot().data
    assert len(data) == 2 + 4 + 4 + 46
    version, crc, count = struct.unpack_from(">hIi", data)
    assert (version, count) == (1, 1)
    assert crc == crc32c(data[6:])
    assert struct.unpack_from(">qhiqiqiq", data, 10) == (42, 3, 13, 3, 3, NOW, -1, 0)


def test_snapshot_round_trip_and_replay(tmp_path):
    log = Log(tmp_path)
    log.append(data_batch(1, 0, 0, 3))
    log.append(data_batch(2, 1, 0, 2, txn=True))
    log.state.take_snapshot()
    assert snapshot_path(tmp_path, 5).exists()
    log.append(data_batch(1, 0, 3, 1))
    header, marker = marker_batch(2, 1, abort=True, coordinator_epoch=7)
    log.append(header, marker, AppendOrigin.COORDINATOR)

    restored = ProducerStateManager(tmp_path)
    start = restored.truncate_and_reload(0, log.log_end_offset, NOW)
    assert start == 5
    assert restored.ongoing_transactions() == [(2, 3)]
    completed = []
    for data, m in log.written:
        h = BatchHeader(data)
        if h.base_offset >= start:
            completed += restored.update_from_batch(h, m)
    assert [(t.producer_id, t.first_offset, t.is_aborted) for t in completed] == [(2, 3, True)]
    assert restored.map_end_offset == log.log_end_offset
    assert restored.snapshot().data == log.state.snapshot().data
    # idempotence survives the restart for the last batch
    h = data_batch(1, 0, 3, 1)
    assert restored.prepare_update(AppendOrigin.CLIENT).append(h).outcome is (
        AppendOutcome.DUPLICATE
    )


def test_corrupt_snapshot_falls_back(tmp_path):
    log = Log(tmp_path)
    log.append(data_batch(1, 0, 0))
    log.state.take_snapshot()  # at 1
    log.append(data_batch(1, 0, 1))
    log.state.take_snapshot()  # at 2
    newest = snapshot_path(tmp_path, 2)
    raw = bytearray(newest.read_bytes())
    raw[-1] ^= 0xFF
    newest.write_bytes(bytes(raw))
    restored = ProducerStateManager(tmp_path)
    assert restored.truncate_and_reload(0, 2, NOW) == 1
    assert not newest.exists()
    assert restored.last_entry(1).last_seq == 0
    # every snapshot corrupt: replay from the log start offset
    snapshot_path(tmp_path, 1).write_bytes(b"\x00\x01")
    restored = ProducerStateManager(tmp_path)
    assert restored.truncate_and_reload(0, 2, NOW) == 0
    assert restored.producers == {}


def test_truncate_and_reload_drops_snapshots_out_of_range(tmp_path):
    log = Log(tmp_path)
    for seq in range(4):
        log.append(data_batch(1, 0, seq))
        log.state.take_snapshot()
    assert log.state.truncate_and_reload(2, 3, NOW) == 3
    assert [p.name for p in sorted(tmp_path.glob("*.snapshot"))] == [
        f"{2:020d}.snapshot",
        f"{3:020d}.snapshot",
    ]
    assert log.state.last_entry(1).last_seq == 2
    log.state.delete_snapshots_before(3)
    assert log.state.oldest_snapshot_offset == 3


def test_expired_producers_not_loaded_from_snapshot(tmp_path):
    log = Log(tmp_path)
    log.append(data_batch(1, 0, 0, ts=NOW))
    log.state.take_snapshot()
    restored = ProducerStateManager(tmp_path)
    restored.truncate_and_reload(0, 1, NOW + restored.producer_id_expiration_ms)
    assert restored.producers == {}


def test_decode_snapshot_rejects_garbage():
    from josef.storage.producer_state import CorruptSnapshotError

    good = encode_snapshot([])
    for bad in (b"", good[:-1], b"\x00\x02" + good[2:], good + b"\x00"):
        with pytest.raises(CorruptSnapshotError):
            decode_snapshot(bad)
    assert decode_snapshot(good) == []


# --- property tests -------------------------------------------------------------------------
class Model:
    """One producer as Kafka specifies it: next expected sequence, last five batch ranges."""

    def __init__(self) -> None:
        self.epoch = -1
        self.next_seq: int | None = None
        self.recent: list[tuple[int, int, int, int]] = []  # first_seq, last_seq, offsets

    def expect(self, epoch, seq, count):
        last_seq = (seq + count - 1) % (INT32_MAX + 1)
        if epoch == self.epoch:
            for first, last, fo, lo in self.recent:
                if (first, last) == (seq, last_seq):
                    return ("dup", fo, lo)
        if epoch < self.epoch:
            return ("err", ErrorCode.INVALID_PRODUCER_EPOCH)
        if epoch > self.epoch:
            if self.epoch != -1 and seq != 0:
                return ("err", ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        elif seq != self.next_seq:
            return ("err", ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        return ("ok", last_seq)

    def apply(self, epoch, seq, last_seq, first_offset, last_offset):
        if epoch != self.epoch:
            self.recent = []
        self.epoch = epoch
        self.next_seq = (last_seq + 1) % (INT32_MAX + 1)
        self.recent = [*self.recent, (seq, last_seq, first_offset, last_offset)][-5:]


ops = st.lists(
    st.tuples(
        st.sampled_from(["next", "next", "next", "retry", "gap", "bump", "old"]),
        st.integers(1, 4),
        st.integers(0, 6),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, start_seq=st.sampled_from([0, 100, INT32_MAX - 5]))
def test_single_producer_matches_model(tmp_path_factory, ops, start_seq):
    log = Log(tmp_path_factory.mktemp("ps"))
    model = Model()
    epoch, next_seq = 2, start_seq
    history: list[tuple[int, int, int]] = []
    for op, count, pick in ops:
        if op == "next":
            e, seq = epoch, next_seq
        elif op == "retry" and history:
            e, seq, count = history[-1 - pick % len(history)]
        elif op == "gap":
            e, seq = epoch, (next_seq + 1 + pick) % (INT32_MAX + 1)
        elif op == "bump":
            epoch += 1
            next_seq = 0
            e, seq = epoch, 0
        elif op == "old":
            e, seq = max(epoch - 1 - pick, 0), 0
        else:
            continue
        expected = model.expect(e, seq, count)
        check = log.append(data_batch(5, e, seq, count))
        if expected[0] == "dup":
            assert check.outcome is AppendOutcome.DUPLICATE
            assert (check.first_offset, check.last_offset) == expected[1:]
        elif expected[0] == "err":
            assert check.outcome is AppendOutcome.ERROR and check.error_code == expected[1]
        else:
            assert check.outcome is AppendOutcome.APPEND, check.message
            model.apply(e, seq, expected[1], log.log_end_offset - count, log.log_end_offset - 1)
            history.append((e, seq, count))
            if e == epoch:
                next_seq = model.next_seq


batch_ops = st.lists(
    st.tuples(st.integers(1, 4), st.sampled_from(["data", "txn", "commit", "abort", "snap"])),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(ops=batch_ops)
def test_reload_and_replay_equals_live_state(tmp_path_factory, ops):
    directory = tmp_path_factory.mktemp("ps")
    log = Log(directory)
    seqs: dict[int, int] = {}
    for pid, op in ops:
        entry = log.state.last_entry(pid)
        in_txn = entry is not None and entry.current_txn_first_offset >= 0
        if op == "snap":
            log.state.take_snapshot()
        elif op in ("commit", "abort"):
            header, marker = marker_batch(pid, 0, abort=op == "abort")
            log.append(header, marker, AppendOrigin.COORDINATOR)
        elif op == "data" and in_txn:
            continue
        else:
            seq = seqs.get(pid, 0)
            assert log.append(data_batch(pid, 0, seq, 2, txn=op == "txn")).outcome is (
                AppendOutcome.APPEND
            )
            seqs[pid] = seq + 2
    restored = ProducerStateManager(directory)
    start = restored.truncate_and_reload(0, log.log_end_offset, NOW)
    for data, marker in log.written:
        h = BatchHeader(data)
        if h.base_offset >= start:
            restored.update_from_batch(h, marker)
    assert restored.map_end_offset == log.log_end_offset
    assert sorted(restored.ongoing_transactions()) == sorted(log.state.ongoing_transactions())
    live = {pid: e for pid, e in log.state.producers.items()}
    for pid, entry in restored.producers.items():
        mine = live.pop(pid)
        assert (entry.producer_epoch, entry.last_seq, entry.last_data_offset) == (
            mine.producer_epoch,
            mine.last_seq,
            mine.last_data_offset,
        )
        assert entry.current_txn_first_offset == mine.current_txn_first_offset
        assert entry.coordinator_epoch == mine.coordinator_epoch
    assert live == {}


def test_interrupted_snapshot_write_is_cleaned_up(tmp_path):
    stale = tmp_path / f"{5:020d}.snapshot.tmp"
    stale.write_bytes(b"partial")
    state = ProducerStateManager(tmp_path)
    assert not stale.exists() and state.latest_snapshot_offset is None


# --- the fast path: a batch right after its producer's last one -----------------------------


def test_in_sequence_batch_then_more_of_that_producer_in_one_update(log):
    log.append(data_batch(7, 0, 0, 2))
    update = log.state.prepare_update(AppendOrigin.CLIENT)
    headers = [data_batch(7, 0, 2, ts=NOW + 1), data_batch(7, 0, 3, ts=NOW + 2)]
    for offset, h in zip((2, 3), headers, strict=True):
        h.set_base_offset(offset)
        assert update.append(h).outcome is AppendOutcome.APPEND
    gap = data_batch(7, 0, 5)
    gap.set_base_offset(4)
    assert update.append(gap).error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert [b.last_seq for b in log.state.last_entry(7).batches] == [1]  # nothing staged leaks
    update = log.state.prepare_update(AppendOrigin.CLIENT)
    for h in headers:
        assert update.append(h).outcome is AppendOutcome.APPEND
    log.state.commit_update(update, 4)
    entry = log.state.last_entry(7)
    assert [(b.last_seq, b.last_offset) for b in entry.batches] == [(1, 1), (2, 2), (3, 3)]
    assert entry.last_timestamp == NOW + 2


def test_in_sequence_batch_is_never_evicted_by_its_own_update(tmp_path):
    log = Log(tmp_path, max_producers=2)
    log.append(data_batch(1, 0, 0))
    log.append(data_batch(2, 0, 0))
    update = log.state.prepare_update(AppendOrigin.CLIENT)
    for offset, h in enumerate((data_batch(1, 0, 1), data_batch(3, 0, 0)), start=2):
        h.set_base_offset(offset)
        assert update.append(h).outcome is AppendOutcome.APPEND
    log.state.commit_update(update, 4)
    assert sorted(log.state.producers) == [1, 3]
    assert log.state.last_entry(1).last_seq == 1


def test_next_batch_shortcut_only_for_the_batch_after_the_last(log):
    log.append(data_batch(7, 0, 0, 2))
    log.append(data_batch(8, 0, 0, txn=True))
    state = log.state
    for h in (
        data_batch(9, 0, 0),  # unknown producer
        data_batch(7, 0, 0, 2),  # duplicate
        data_batch(7, 0, 3),  # gap
        data_batch(7, 1, 0),  # new epoch
        data_batch(7, 0, 2, txn=True),  # starts a transaction
        data_batch(8, 0, 1),  # non-transactional inside a transaction
        marker_batch(8, 0, abort=False)[0],
    ):
        assert state.next_batch(h, h.base_offset) is None
    assert state.next_batch(data_batch(8, 0, 1, txn=True), 0) is not None
    h = data_batch(7, 0, 2, 3, ts=NOW + 9)
    batch = state.next_batch(h, 3)
    assert batch is not None and (batch.first_seq, batch.last_seq, batch.first_offset) == (2, 4, 3)
    assert state.last_entry(7).last_seq == 1  # nothing changes before the commit
    state.commit_next_batch(7, batch, 6)
    entry = state.last_entry(7)
    assert (entry.last_seq, entry.last_data_offset, entry.last_timestamp) == (4, 5, NOW + 9)
    assert list(state.producers) == [8, 7] and state.map_end_offset == 6


def test_in_sequence_transactional_batch_starts_a_transaction(log):
    log.append(data_batch(4, 0, 0, 2))
    assert log.append(data_batch(4, 0, 2, txn=True)).outcome is AppendOutcome.APPEND
    assert log.state.ongoing_transactions() == [(4, 2)]
    check = log.append(data_batch(4, 0, 3))
    assert check.error_code == ErrorCode.INVALID_TXN_STATE


producer_steps = st.lists(
    st.tuples(
        st.integers(1, 3),  # producer id
        st.sampled_from([0, 0, 0, 1]),  # epoch bump
        st.sampled_from(["next", "next", "next", "zero", "back", "gap"]),
        st.integers(1, 3),  # records
    ),
    max_size=25,
)


@settings(max_examples=50, deadline=None)
@given(steps=producer_steps, cuts=st.lists(st.integers(1, 4), min_size=1, max_size=25))
def test_grouped_updates_and_shortcut_equal_one_update_per_batch(tmp_path_factory, steps, cuts):
    """The accepted batches, applied again in updates of several batches each, and again
    through `next_batch` where it applies, give the same state: the in-sequence fast path,
    the shortcut and the general path agree."""
    log = Log(tmp_path_factory.mktemp("ps"))
    epochs: dict[int, int] = {}
    for pid, bump, how, count in steps:
        epoch = epochs.get(pid, 0) + bump
        entry = log.state.last_entry(pid)
        last = entry.last_seq if entry is not None and entry.last_seq >= 0 else -1
        seq = {"next": last + 1, "zero": 0, "back": max(last - 1, 0), "gap": last + 3}[how]
        if log.append(data_batch(pid, epoch, seq, count)).outcome is AppendOutcome.APPEND:
            epochs[pid] = epoch
    grouped, direct = ProducerStateManager(None), ProducerStateManager(None)
    batches = [BatchHeader(data) for data, _ in log.written]
    for h in batches:
        batch = direct.next_batch(h, h.base_offset)
        if batch is None:
            update = direct.prepare_update(AppendOrigin.CLIENT)
            assert update.append(h).outcome is AppendOutcome.APPEND
            direct.commit_update(update, h.next_offset)
        else:
            direct.commit_next_batch(h.producer_id, batch, h.next_offset)
    while batches:
        chunk, batches = batches[: cuts[0]], batches[cuts[0] :]
        cuts = cuts[1:] or [1]
        update = grouped.prepare_update(AppendOrigin.CLIENT)
        for h in chunk:
            assert update.append(h).outcome is AppendOutcome.APPEND
        grouped.commit_update(update, chunk[-1].next_offset)
    assert list(direct.producers) == list(log.state.producers)  # same recency order
    assert direct.map_end_offset == grouped.map_end_offset == log.log_end_offset
    for state in (grouped, direct):
        assert sorted(state.producers) == sorted(log.state.producers)
        for pid, entry in state.producers.items():
            live = log.state.producers[pid]
            assert (entry.producer_epoch, entry.last_timestamp, list(entry.batches)) == (
                live.producer_epoch, live.last_timestamp, list(live.batches)
            )


# --- producer.id.expiration.ms from the broker config to every log ---------------------------

EXPIRATION_MS = 60_000


def idempotent_batch(seq: int, ts: int = NOW) -> bytes:
    builder = BatchBuilder(producer_id=11, producer_epoch=0, base_sequence=seq)
    builder.append(ts, b"k", b"v")
    builder.append(ts, b"k", b"v")
    return builder.build()


def open_logs(engine: str, directory: Path, **kwargs) -> MemoryPartitionLogs | DiskPartitionLogs:
    if engine == "memory":
        return MemoryPartitionLogs(**kwargs)
    return DiskPartitionLogs([directory], **kwargs)


@pytest.mark.parametrize("engine", ["memory", "disk"])
def test_producer_id_expiration_ms_expires_an_idle_producer(tmp_path, engine):
    logs = open_logs(engine, tmp_path, producer_id_expiration_ms=EXPIRATION_MS)
    log = logs.create("t", 0, LogConfig(), bytes(16))
    log.append_as_leader(idempotent_batch(0), 0, NOW)
    log.append_as_leader(idempotent_batch(2, ts=NOW + 5), 0, NOW)
    # Idle time counts from the max timestamp of the producer's last batch, as in Kafka.
    assert log.remove_expired_producers(NOW + 5 + EXPIRATION_MS - 1) == 0
    assert log.remove_expired_producers(NOW + 5 + EXPIRATION_MS) == 1
    # The producer is unknown now. Since KIP-360 (Kafka 2.5) a broker accepts an unknown
    # producer at any sequence instead of answering UNKNOWN_PRODUCER_ID; only a new epoch of
    # a known producer must start at 0 (OUT_OF_ORDER_SEQUENCE_NUMBER otherwise).
    info = log.append_as_leader(idempotent_batch(10), 0, NOW)
    assert not info.duplicate and info.first_offset == 4
    # ... and its state starts over from that batch.
    assert log.append_as_leader(idempotent_batch(10), 0, NOW).duplicate
    with pytest.raises(StorageError) as raised:
        log.append_as_leader(idempotent_batch(14), 0, NOW)
    assert raised.value.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    logs.close()


@pytest.mark.parametrize("expiration_ms", [EXPIRATION_MS, DEFAULT_PRODUCER_ID_EXPIRATION_MS])
def test_a_reopened_disk_log_drops_producers_expired_under_its_config(tmp_path, expiration_ms):
    logs = DiskPartitionLogs([tmp_path])
    logs.create("t", 0, LogConfig(), bytes(16)).append_as_leader(idempotent_batch(0), 0, NOW)
    logs.close()  # a producer snapshot at the log end
    logs = DiskPartitionLogs(
        [tmp_path], producer_id_expiration_ms=expiration_ms,
        clock_ms=lambda: NOW + EXPIRATION_MS,
    )
    log = logs.get("t", 0)
    assert log is not None
    kept = log.producer_state.last_entry(11) is not None
    assert kept == (expiration_ms > EXPIRATION_MS)
    logs.close()
