"""The .txnindex: Kafka's 34-byte AbortedTxn entries, search, truncation, sanity check."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from josef.storage.producer_state import CompletedTxn
from josef.storage.txn_index import (
    ENTRY_SIZE,
    AbortedTxn,
    CorruptTxnIndex,
    TransactionIndex,
)

BASE = 100


@pytest.fixture
def index(tmp_path):
    idx = TransactionIndex(tmp_path / f"{BASE:020d}.txnindex", BASE)
    yield idx
    idx.close()


def fill(index):
    txns = [
        AbortedTxn(1, 90, 105, 100),
        AbortedTxn(2, 104, 110, 106),
        AbortedTxn(3, 111, 120, 121),
        AbortedTxn(4, 125, 130, 131),
    ]
    for t in txns:
        index.append(t)
    return txns


def test_file_created_lazily_and_layout(index):
    assert not index.path.exists()
    index.append(AbortedTxn.from_completed(CompletedTxn(7, 95, 101, True, 99)))
    raw = index.path.read_bytes()
    assert len(raw) == ENTRY_SIZE == 34
    assert struct.unpack(">hqqqq", raw) == (0, 7, 95, 101, 99)


def test_round_trip_and_reopen(index, tmp_path):
    txns = fill(index)
    index.flush()
    reopened = TransactionIndex(index.path, BASE)
    assert reopened.all_aborted() == txns
    assert reopened.last_offset == 130
    reopened.sanity_check()
    with pytest.raises(AssertionError):
        reopened.append(AbortedTxn(9, 126, 130, 131))
    reopened.close()


@pytest.mark.parametrize(
    ("fetch", "upper", "pids", "complete"),
    [
        (100, 104, [1], True),  # txn 1's lso (100) is below 104, txn 2's (106) reaches it
        (106, 111, [2], True),  # txn 1 ends before the fetch, txn 3 starts at the bound
        (100, 200, [1, 2, 3, 4], False),  # later segments may hold more
        (121, 126, [4], True),
        (131, 140, [], False),
    ],
)
def test_collect_aborted(index, fetch, upper, pids, complete):
    fill(index)
    result = index.collect_aborted(fetch, upper)
    assert [t.producer_id for t in result.aborted_transactions] == pids
    assert result.is_complete is complete


def test_truncate_to(index):
    txns = fill(index)
    index.truncate_to(120)
    assert index.all_aborted() == txns[:2]
    assert index.last_offset == 110
    assert index.size_bytes == 2 * ENTRY_SIZE
    index.append(AbortedTxn(5, 111, 115, 116))  # appends continue after the cut
    assert index.all_aborted()[-1].producer_id == 5
    index.reset()
    assert index.all_aborted() == [] and index.last_offset is None


def test_sanity_check_failures(index, tmp_path):
    fill(index)
    index.close()
    raw = index.path.read_bytes()

    def reopened(data, base=BASE):
        index.path.write_bytes(data)
        return TransactionIndex(index.path, base)

    for data, base in [
        (raw + b"\x00", BASE),  # partial entry
        (b"\x00\x05" + raw[2:], BASE),  # unknown version
        (raw, 106),  # first marker before the segment's base offset
        (raw[ENTRY_SIZE : 2 * ENTRY_SIZE] + raw[:ENTRY_SIZE], BASE),  # not increasing
    ]:
        idx = reopened(data, base)
        with pytest.raises(CorruptTxnIndex):
            idx.sanity_check()
        idx.close()


def test_delete(index):
    fill(index)
    index.delete()
    assert not index.path.exists()
    assert index.all_aborted() == []


@settings(max_examples=40, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.integers(0, 20), st.integers(1, 20), st.integers(0, 30)), max_size=12
    ),
    fetch=st.integers(0, 400),
    width=st.integers(1, 200),
)
def test_collect_matches_filter(tmp_path_factory, spans, fetch, width):
    path = tmp_path_factory.mktemp("ti") / "0.txnindex"
    idx = TransactionIndex(path, 0)
    txns, last = [], 0
    for gap, length, lso_lag in spans:
        first = last + gap
        last = first + length
        txns.append(AbortedTxn(len(txns), first, last, last + 1 + lso_lag))
        idx.append(txns[-1])
    upper = fetch + width
    result = idx.collect_aborted(fetch, upper)
    expected = []
    for t in txns:
        if t.last_offset >= fetch and t.first_offset < upper:
            expected.append(t)
        if t.last_stable_offset >= upper:
            break
    assert result.aborted_transactions == expected
    idx.close()
