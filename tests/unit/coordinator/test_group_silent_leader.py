"""The coordinator's side of issue 5's kafka-python failure, replayed on the fake clock.

kafka-python 3.0.12 (JoinGroup v7, SyncGroup v5, session 6 s, rebalance timeout = its 300 s
max_poll_interval_ms) can strand a group leader: its first assignment saw no partition metadata,
it rejoins when the metadata arrives, completes that rebalance on the wire, and then never sends
another request (the client never collects the finished join, so it never heartbeats). What the
broker must do then, as Kafka's GroupCoordinator does: keep the parked leader while it waits in
JoinGroup (even past its session timeout), expire it exactly one session timeout after its last
request once it stops, let the remaining member rebalance alone, and answer the stranded member
UNKNOWN_MEMBER_ID so that a client which does look again rejoins from scratch.
"""

from __future__ import annotations

from typing import Any

from josef.coordinator.group import GroupState

from .harness import E, Harness

KAFKA_PYTHON: dict[str, Any] = {"version": 7, "session_ms": 6_000, "rebalance_ms": 300_000}
HEARTBEAT_INTERVAL_MS = 200  # the client test's heartbeat_interval_ms


def _state(h: Harness) -> GroupState:
    group = h.coordinator.group("g")
    assert group is not None
    return group.state


def _members(h: Harness) -> set[str]:
    group = h.coordinator.group("g")
    assert group is not None
    return set(group.members)


def test_stranded_leader_expires_after_its_session_and_can_rejoin() -> None:
    h = Harness()
    a, b = h.member_id(**KAFKA_PYTHON), h.member_id(**KAFKA_PYTHON)
    ra, rb = h.join(member_id=a, **KAFKA_PYTHON), h.join(member_id=b, **KAFKA_PYTHON)
    assert h.answer(ra).leader == a and h.answer(rb).generation_id == 1

    # Generation 1: the leader had no partition metadata, so everyone gets nothing.
    sb = h.sync(b, 1)
    assert h.sync(a, 1, {a: b"", b: b""}).response.error_code == E.NONE
    assert h.answer(sb).error_code == E.NONE and _state(h) is GroupState.STABLE

    # The metadata arrives: the leader alone rejoins and is parked. The follower is slow to
    # rejoin; the parked leader is not expired meanwhile although its session timeout passes.
    ra = h.join(member_id=a, **KAFKA_PYTHON)
    assert ra.response is None and _state(h) is GroupState.PREPARING_REBALANCE
    for _ in range(8):
        h.tick(1_000)
        assert h.heartbeat(b, 1) == E.REBALANCE_IN_PROGRESS
    assert _members(h) == {a, b} and h.answer(ra) is None
    rb = h.join(member_id=b, **KAFKA_PYTHON)
    assert h.answer(ra).generation_id == h.answer(rb).generation_id == 2
    assert [m.member_id for m in h.answer(ra).members] == [a, b]

    # Generation 2 completes on the wire for both members.
    sb = h.sync(b, 2)
    assert h.sync(a, 2, {a: b"A", b: b"B"}).response.assignment == b"A"
    assert h.answer(sb).assignment == b"B" and _state(h) is GroupState.STABLE

    # The leader goes silent; the follower heartbeats. The leader stays a member for one
    # session timeout after its SyncGroup, not a moment less or more.
    for _ in range(6_000 // HEARTBEAT_INTERVAL_MS - 1):
        h.tick(HEARTBEAT_INTERVAL_MS)
        assert h.heartbeat(b, 2) == E.NONE
    assert _members(h) == {a, b} and _state(h) is GroupState.STABLE
    h.tick(HEARTBEAT_INTERVAL_MS)
    assert _members(h) == {b} and _state(h) is GroupState.PREPARING_REBALANCE

    # The follower learns of the rebalance from its heartbeat and completes it alone.
    assert h.heartbeat(b, 2) == E.REBALANCE_IN_PROGRESS
    joined = h.answer(h.join(member_id=b, **KAFKA_PYTHON))
    assert (joined.generation_id, joined.leader) == (3, b)
    assert h.sync(b, 3, {b: b"AB"}).response.assignment == b"AB"
    assert _state(h) is GroupState.STABLE and _members(h) == {b}

    # The stranded member is unknown now: its heartbeat, JoinGroup and LeaveGroup say so.
    assert h.heartbeat(a, 2) == E.UNKNOWN_MEMBER_ID
    assert h.answer(h.join(member_id=a, **KAFKA_PYTHON)).error_code == E.UNKNOWN_MEMBER_ID
    left = h.leave((a, None))
    assert left.error_code == E.NONE and left.members[0].error_code == E.UNKNOWN_MEMBER_ID
    assert _state(h) is GroupState.STABLE and _members(h) == {b}

    # A client that rejoins from scratch gets a place and a share again.
    c = h.member_id(**KAFKA_PYTHON)
    rc = h.join(member_id=c, **KAFKA_PYTHON)
    assert rc.response is None and h.heartbeat(b, 3) == E.REBALANCE_IN_PROGRESS
    rb = h.join(member_id=b, **KAFKA_PYTHON)
    assert h.answer(rb).generation_id == h.answer(rc).generation_id == 4
    assert h.answer(rb).leader == b and _members(h) == {b, c}
