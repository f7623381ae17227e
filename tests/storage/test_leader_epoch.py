"""Leader-epoch cache: Kafka's LeaderEpochFileCache semantics and checkpoint format."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from josef.storage.leader_epoch import (
    LEADER_EPOCH_CHECKPOINT,
    CorruptCheckpoint,
    EpochEntry,
    LeaderEpochCache,
)

UNDEFINED = (-1, -1)


@pytest.fixture
def cache(tmp_path):
    c = LeaderEpochCache(tmp_path / LEADER_EPOCH_CHECKPOINT)
    for epoch, offset in [(2, 6), (3, 8), (5, 12)]:
        c.assign(epoch, offset)
    return c


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (-1, UNDEFINED),  # undefined epoch (old followers)
        (0, (0, 6)),  # below the first epoch: requested epoch, start of the first one
        (1, (1, 6)),
        (2, (2, 8)),  # ends where epoch 3 starts
        (3, (3, 12)),
        (4, (3, 12)),  # unknown epoch between: largest epoch <= 4, next epoch's start
        (5, (5, 20)),  # the latest epoch ends at the log end offset
        (6, UNDEFINED),  # above the latest
    ],
)
def test_end_offset_for(cache, requested, expected):
    assert cache.end_offset_for(requested, log_end_offset=20) == expected


def test_end_offset_for_empty_cache(tmp_path):
    assert LeaderEpochCache(tmp_path / "x").end_offset_for(0, 10) == UNDEFINED


@pytest.mark.parametrize(
    ("epoch", "offset", "entries"),
    [
        (5, 14, [(2, 6), (3, 8), (5, 12)]),  # same epoch, later offset: no-op
        (5, 10, [(2, 6), (3, 8), (5, 10)]),  # same epoch, earlier offset: replaced
        (6, 20, [(2, 6), (3, 8), (5, 12), (6, 20)]),
        (4, 20, [(2, 6), (3, 8), (4, 20)]),  # lower epoch removes the later epochs
        (7, 8, [(2, 6), (7, 8)]),  # start offset not increasing removes entries
        (1, 1, [(1, 1)]),
    ],
)
def test_assign(cache, epoch, offset, entries):
    cache.assign(epoch, offset)
    assert cache.entries == [EpochEntry(*e) for e in entries]
    assert LeaderEpochCache(cache.path).entries == cache.entries


def test_assign_rejects_negative(cache):
    with pytest.raises(ValueError):
        cache.assign(-1, 0)


@pytest.mark.parametrize(
    ("end", "entries"),
    [
        (13, [(2, 6), (3, 8), (5, 12)]),
        (12, [(2, 6), (3, 8)]),
        (7, [(2, 6)]),
        (6, []),
        (-1, [(2, 6), (3, 8), (5, 12)]),
    ],
)
def test_truncate_from_end(cache, end, entries):
    cache.truncate_from_end(end)
    assert cache.entries == [EpochEntry(*e) for e in entries]
    assert LeaderEpochCache(cache.path).entries == cache.entries


@pytest.mark.parametrize(
    ("start", "entries"),
    [
        (5, [(2, 6), (3, 8), (5, 12)]),
        (6, [(2, 6), (3, 8), (5, 12)]),
        (7, [(2, 7), (3, 8), (5, 12)]),
        (8, [(3, 8), (5, 12)]),
        (15, [(5, 15)]),
    ],
)
def test_truncate_from_start(cache, start, entries):
    cache.truncate_from_start(start)
    assert cache.entries == [EpochEntry(*e) for e in entries]
    assert LeaderEpochCache(cache.path).entries == cache.entries


@pytest.mark.parametrize(("offset", "epoch"), [(0, None), (6, 2), (7, 2), (8, 3), (100, 5)])
def test_epoch_for_offset(cache, offset, epoch):
    assert cache.epoch_for_offset(offset) == epoch


def test_checkpoint_text_format(cache):
    assert cache.path.read_text() == "0\n3\n2 6\n3 8\n5 12\n"
    cache.clear()
    assert cache.path.read_text() == "0\n0\n"
    assert not cache.path.with_name(cache.path.name + ".tmp").exists()


@pytest.mark.parametrize(
    "text",
    ["", "1\n0\n", "0\n2\n1 1\n", "0\n1\n1\n", "0\n1\n1 x\n", "0\n2\n3 5\n2 6\n", "\xff"],
)
def test_corrupt_checkpoint(tmp_path, text):
    path = tmp_path / LEADER_EPOCH_CHECKPOINT
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CorruptCheckpoint):
        LeaderEpochCache(path)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["assign", "end", "start"]), st.integers(0, 8), st.integers(0, 40)
        ),
        max_size=25,
    )
)
def test_entries_stay_monotonic_and_persisted(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("le") / LEADER_EPOCH_CHECKPOINT
    cache = LeaderEpochCache(path)
    for op, epoch, offset in ops:
        if op == "assign":
            cache.assign(epoch, offset)
            assert cache.latest_entry.epoch == epoch
        elif op == "end":
            cache.truncate_from_end(offset)
        else:
            cache.truncate_from_start(offset)
        entries = cache.entries
        assert all(
            a.epoch < b.epoch and a.start_offset < b.start_offset
            for a, b in itertools.pairwise(entries)
        )
        if path.exists():
            assert LeaderEpochCache(path).entries == entries
