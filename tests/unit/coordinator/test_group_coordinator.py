"""Classic group coordinator: membership, rebalances, timeouts, static members, offsets, admin."""

from __future__ import annotations

import pytest

from josef.coordinator.group import GroupCoordinator, GroupState, TopicPartition
from josef.coordinator.group.records import (
    OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE,
    decode_key,
)
from josef.protocol._generated.delete_groups import DeleteGroupsRequest
from josef.protocol._generated.describe_groups import DescribeGroupsRequest
from josef.protocol._generated.internal.group_metadata_key import GroupMetadataKey
from josef.protocol._generated.list_groups import ListGroupsRequest
from josef.protocol._generated.offset_delete import OffsetDeleteRequest
from josef.protocol._generated.offset_fetch import OffsetFetchRequest

from .harness import E, Harness, subscription


def state(h: Harness, group: str = "g") -> GroupState | None:
    g = h.coordinator.group(group)
    return None if g is None else g.state


@pytest.mark.parametrize("n", [1, 2, 3])
def test_join_sync_heartbeat_happy_path(n: int) -> None:
    h = Harness()
    ids, generation = h.form_group(n)
    assert generation == 1
    assert state(h) is GroupState.STABLE
    assert h.coordinator.group("g").leader_id == ids[0]
    for m in ids:
        assert h.heartbeat(m, generation) == E.NONE
    # Stable: a follower's repeated SyncGroup is answered at once with its assignment.
    if n > 1:
        assert h.sync(ids[1], generation).response.assignment == ids[1].encode()
    # The rebalance was persisted once, when the leader's assignment arrived.
    keys = [decode_key(r.key) for r in h.log]
    assert keys == [GroupMetadataKey("g")]


def test_leader_gets_member_list_and_first_joiner_leads() -> None:
    h = Harness()
    a, b = h.member_id(), h.member_id()
    ra = h.join(member_id=a, protocols=(("range", b"A"),))
    rb = h.join(member_id=b, protocols=(("range", b"B"),))
    leader, follower = h.answer(ra), h.answer(rb)
    assert leader.leader == a and follower.leader == a
    assert [(m.member_id, m.metadata) for m in leader.members] == [(a, b"A"), (b, b"B")]
    assert follower.members == []
    assert leader.protocol_name == "range" and leader.protocol_type == "consumer"


def test_member_id_required_from_v4_only() -> None:
    h = Harness()
    r = h.join(version=4)
    assert r.response.error_code == E.MEMBER_ID_REQUIRED and r.response.member_id == "c-id1"
    # Before v4 the member joins with a generated id at once.
    h2 = Harness()
    r2 = h2.join(version=3)
    response = h2.answer(r2)
    assert response.error_code == E.NONE and response.member_id == "c-id1"
    assert response.generation_id == 1


def test_unjoined_pending_member_expires() -> None:
    h = Harness()
    pending = h.member_id(session_ms=6_000)
    assert h.coordinator.next_deadline_ms() == h.now + 6_000
    h.tick(6_000)
    assert h.answer(h.join(member_id=pending)).error_code == E.UNKNOWN_MEMBER_ID
    assert h.coordinator.group("g") is None


def test_protocol_selection_by_votes() -> None:
    h = Harness()
    ids = [h.member_id() for _ in range(3)]
    prefs = [
        (("range", b""), ("roundrobin", b"")),
        (("roundrobin", b""), ("range", b""), ("sticky", b"")),
        (("roundrobin", b""), ("range", b"")),
    ]
    results = [h.join(member_id=m, protocols=p) for m, p in zip(ids, prefs, strict=True)]
    assert {h.answer(r).protocol_name for r in results} == {"roundrobin"}


def test_inconsistent_protocols_rejected() -> None:
    h = Harness()
    _ids, _ = h.form_group(1)
    other = h.join(protocols=(("sticky", b""),)).response
    assert other.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert h.join(protocol_type="connect").response.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert h.join(group="x", protocols=()).response.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert h.coordinator.group("x") is None  # the failed join left nothing behind


def test_join_validation_errors() -> None:
    h = Harness(group_max_size=2)
    assert h.join(group="").response.error_code == E.INVALID_GROUP_ID
    assert h.join(session_ms=5_999).response.error_code == E.INVALID_SESSION_TIMEOUT
    assert h.join(session_ms=1_800_001).response.error_code == E.INVALID_SESSION_TIMEOUT
    assert h.join(member_id="nobody").response.error_code == E.UNKNOWN_MEMBER_ID
    big = (("range", b"x" * ((1 << 20) + 1)),)
    assert h.join(protocols=big).response.error_code == E.INVALID_REQUEST
    h.form_group(2)
    assert h.join().response.error_code == E.GROUP_MAX_SIZE_REACHED
    assert h.join(member_id="nobody").response.error_code == E.UNKNOWN_MEMBER_ID


def test_new_member_triggers_rebalance() -> None:
    h = Harness()
    (a, b), gen = h.form_group(2)
    c = h.member_id()
    rc = h.join(member_id=c)
    assert rc.response is None and state(h) is GroupState.PREPARING_REBALANCE
    assert h.heartbeat(a, gen) == E.REBALANCE_IN_PROGRESS
    assert h.sync(b, gen).response.error_code == E.REBALANCE_IN_PROGRESS
    ra, rb = h.join(member_id=a), h.join(member_id=b)
    assert [h.answer(r).generation_id for r in (ra, rb, rc)] == [gen + 1] * 3
    assert state(h) is GroupState.COMPLETING_REBALANCE
    assert h.heartbeat(b, gen) == E.ILLEGAL_GENERATION
    assert h.heartbeat(b, gen + 1) == E.NONE


def test_leave_triggers_rebalance_and_new_leader() -> None:
    h = Harness()
    (a, b, c), gen = h.form_group(3)
    response = h.leave((a, None))
    assert response.error_code == E.NONE and response.members[0].error_code == E.NONE
    assert state(h) is GroupState.PREPARING_REBALANCE
    assert h.coordinator.group("g").leader_id == b
    rb, rc = h.join(member_id=b), h.join(member_id=c)
    assert h.answer(rb).leader == b and h.answer(rc).generation_id == gen + 1
    # v0-2 carry one member and a top-level error.
    assert h.leave(("ghost", None), version=1).error_code == E.UNKNOWN_MEMBER_ID


def test_batched_leave_reports_per_member_errors() -> None:
    h = Harness()
    (a, b), _ = h.form_group(2)
    response = h.leave((a, None), ("ghost", None), (b, None))
    assert [m.error_code for m in response.members] == [E.NONE, E.UNKNOWN_MEMBER_ID, E.NONE]
    assert state(h) is GroupState.EMPTY
    assert h.leave((a, None)).members[0].error_code == E.UNKNOWN_MEMBER_ID
    assert h.leave((a, None), group="nope").error_code == E.UNKNOWN_MEMBER_ID


def test_all_members_leaving_makes_group_empty_and_persists_it() -> None:
    h = Harness()
    (a,), gen = h.form_group(1)
    h.leave((a, None))
    group = h.coordinator.group("g")
    assert group.state is GroupState.EMPTY and group.generation_id == gen + 1
    assert group.protocol_name is None and group.leader_id is None
    assert len(h.log) == 2  # the Stable record and the Empty one
    assert h.heartbeat(a, gen + 1) == E.UNKNOWN_MEMBER_ID


def test_rebalance_timeout_removes_members_that_did_not_rejoin() -> None:
    h = Harness()
    (a, b), gen = h.form_group(2, rebalance_ms=20_000)
    rc = h.join(member_id=h.member_id(rebalance_ms=20_000), rebalance_ms=20_000)
    ra = h.join(member_id=a, rebalance_ms=20_000)
    h.tick(5_000)
    assert h.heartbeat(b, gen) == E.REBALANCE_IN_PROGRESS  # b is alive but does not rejoin
    h.tick(15_000)
    assert h.answer(ra).generation_id == gen + 1
    assert h.answer(rc).generation_id == gen + 1
    assert set(h.coordinator.group("g").members) == {a, h.answer(rc).member_id}
    assert h.heartbeat(b, gen + 1) == E.UNKNOWN_MEMBER_ID


def test_session_timeout_evicts_member() -> None:
    h = Harness()
    (a, _b), gen = h.form_group(2, session_ms=10_000)
    for _ in range(2):
        h.tick(4_000)
        assert h.heartbeat(a, gen) == E.NONE
    assert state(h) is GroupState.STABLE
    h.tick(2_000)  # b never heartbeated: it expires 10 s after its SyncGroup
    assert state(h) is GroupState.PREPARING_REBALANCE
    assert set(h.coordinator.group("g").members) == {a}
    ra = h.join(member_id=a)
    assert h.answer(ra).generation_id == gen + 1 and h.answer(ra).leader == a


def test_sync_timeout_removes_members_that_never_sync() -> None:
    h = Harness()
    a, b = h.member_id(), h.member_id()
    ra, _rb = h.join(member_id=a), h.join(member_id=b)
    gen = h.answer(ra).generation_id
    sb = h.sync(b, gen)
    assert sb.response is None
    h.tick(30_000)  # the leader never sends its assignment
    assert h.answer(sb).error_code == E.REBALANCE_IN_PROGRESS
    assert set(h.coordinator.group("g").members) == {b}
    assert state(h) is GroupState.PREPARING_REBALANCE


def test_initial_rebalance_delay_waits_for_more_members() -> None:
    h = Harness(group_initial_rebalance_delay_ms=3_000)
    a = h.member_id()
    ra = h.join(member_id=a)
    h.tick(2_000)
    b = h.member_id()
    rb = h.join(member_id=b)
    h.tick(1_000)  # first delay over, but b joined during it: one more delay
    assert h.answer(ra) is None
    h.tick(3_000)
    assert h.answer(ra).generation_id == h.answer(rb).generation_id == 1
    assert len(h.answer(ra).members) == 2


def test_sync_errors() -> None:
    h = Harness()
    (a, _b), gen = h.form_group(2)
    assert h.sync(a, gen + 5).response.error_code == E.ILLEGAL_GENERATION
    assert h.sync("ghost", gen).response.error_code == E.UNKNOWN_MEMBER_ID
    assert h.sync(a, gen, group="none").response.error_code == E.UNKNOWN_MEMBER_ID
    wrong = h.sync(a, gen, protocol_name="roundrobin").response
    assert wrong.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert h.sync(a, gen, protocol_name="range").response.error_code == E.NONE
    assert h.heartbeat("ghost", gen) == E.UNKNOWN_MEMBER_ID
    assert h.heartbeat(a, gen, group="none") == E.UNKNOWN_MEMBER_ID


def test_leader_assignment_for_unknown_members_is_ignored() -> None:
    h = Harness()
    a = h.member_id()
    gen = h.answer(h.join(member_id=a)).generation_id
    h.sync(a, gen, {a: b"mine", "ghost": b"theirs"})
    assert [m.member_id for m in h.coordinator.group("g").members.values()] == [a]


def test_static_member_rejoins_without_rebalance_and_old_id_is_fenced() -> None:
    h = Harness(group_initial_rebalance_delay_ms=3_000)
    ra = h.join(instance="i-a")  # static members need no MEMBER_ID_REQUIRED round
    rb = h.join(instance="i-b")
    h.tick(3_000)
    h.tick(3_000)  # b joined during the initial delay: one more delay
    a, b = h.answer(ra).member_id, h.answer(rb).member_id
    assert a.startswith("i-a-")
    gen = h.answer(ra).generation_id
    sb = h.sync(b, gen, instance="i-b")
    h.sync(a, gen, {a: b"A", b: b"B"}, instance="i-a")
    assert h.answer(sb).assignment == b"B"
    records_before = len(h.log)
    # b restarts: same instance id, no member id, same protocols.
    restarted = h.join(instance="i-b").response
    new_b = restarted.member_id
    assert restarted.error_code == E.NONE and new_b != b
    assert restarted.generation_id == gen and restarted.leader == a
    assert state(h) is GroupState.STABLE
    assert len(h.log) == records_before + 1  # the new member id is persisted
    assert h.sync(new_b, gen, instance="i-b").response.assignment == b"B"
    assert h.heartbeat(b, gen, instance="i-b") == E.FENCED_INSTANCE_ID
    assert h.sync(b, gen, instance="i-b").response.error_code == E.FENCED_INSTANCE_ID
    assert h.commit({("t", 0): 1}, member_id=b, generation=gen, instance="i-b") == {
        ("t", 0): E.FENCED_INSTANCE_ID
    }
    assert h.heartbeat(b, gen) == E.UNKNOWN_MEMBER_ID
    assert h.leave((b, "i-b")).members[0].error_code == E.FENCED_INSTANCE_ID
    assert h.heartbeat(new_b, gen, instance="i-b") == E.NONE


def test_static_leader_rejoin_skips_assignment_from_v9() -> None:
    h = Harness()
    ra = h.join(instance="i-a")
    a = h.answer(ra).member_id
    h.sync(a, 1, {a: b"A"}, instance="i-a")
    old = h.join(instance="i-a", version=8).response
    assert old.leader != old.member_id and not old.skip_assignment
    new = h.join(instance="i-a", version=9).response
    assert new.leader == new.member_id and new.skip_assignment
    assert [m.member_id for m in new.members] == [new.member_id]
    assert state(h) is GroupState.STABLE


def test_static_member_with_changed_protocols_rebalances() -> None:
    h = Harness()
    ra = h.join(instance="i-a")
    a = h.answer(ra).member_id
    h.sync(a, 1, {a: b"A"}, instance="i-a")
    r = h.join(instance="i-a", protocols=(("range", b"new topics"),))
    assert h.answer(r).generation_id == 2


def test_static_member_leaves_by_instance_id() -> None:
    h = Harness()
    ra = h.join(instance="i-a")
    a = h.answer(ra).member_id
    h.sync(a, 1, {a: b"A"}, instance="i-a")
    assert h.leave(("", "i-a")).members[0].error_code == E.NONE
    assert state(h) is GroupState.EMPTY
    assert h.leave(("", "i-a")).members[0].error_code == E.UNKNOWN_MEMBER_ID


def test_offset_commit_simple_consumer_and_fetch() -> None:
    h = Harness()
    assert h.commit({("t", 0): 5, ("t", 1): 7}, metadata="m") == {("t", 0): 0, ("t", 1): 0}
    assert h.fetch(topics={"t": [0, 1, 2]}) == {
        ("t", 0): (5, "m", 0),
        ("t", 1): (7, "m", 0),
        ("t", 2): (-1, "", 0),
    }
    assert h.fetch() == {("t", 0): (5, "m", 0), ("t", 1): (7, "m", 0)}
    assert h.fetch(group="unknown", topics={"t": [0]}) == {("t", 0): (-1, "", 0)}
    assert h.fetch(group="unknown") == {}
    assert state(h) is GroupState.EMPTY
    assert h.commit({("t", 0): 1}, group="fresh", generation=3) == {("t", 0): E.ILLEGAL_GENERATION}
    too_big = "x" * 4097
    assert h.commit({("t", 0): 9}, metadata=too_big) == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
    assert h.fetch(topics={"t": [0]})[("t", 0)][0] == 5


def test_offset_commit_per_group_state() -> None:
    h = Harness()
    (a, b), gen = h.form_group(2)
    tp = ("t", 0)
    assert h.commit({tp: 1}, member_id=a, generation=gen) == {tp: E.NONE}
    assert h.commit({tp: 2}) == {tp: E.UNKNOWN_MEMBER_ID}  # simple commit to a live group
    assert h.commit({tp: 2}, member_id=a, generation=gen + 1) == {tp: E.ILLEGAL_GENERATION}
    assert h.commit({tp: 2}, member_id="ghost", generation=gen) == {tp: E.UNKNOWN_MEMBER_ID}
    # PreparingRebalance: the old generation may still commit (revoking partitions).
    rc = h.join(member_id=h.member_id())
    assert h.commit({tp: 3}, member_id=a, generation=gen) == {tp: E.NONE}
    h.join(member_id=a)
    h.join(member_id=b)
    assert h.answer(rc) is not None
    assert state(h) is GroupState.COMPLETING_REBALANCE
    assert h.commit({tp: 4}, member_id=a, generation=gen + 1) == {tp: E.REBALANCE_IN_PROGRESS}
    assert h.fetch(topics={"t": [0]})[tp][0] == 3


def test_offset_fetch_v8_several_groups() -> None:
    h = Harness()
    h.commit({("t", 0): 5}, group="g1")
    h.commit({("u", 1): 6}, group="g2")
    Req = OffsetFetchRequest
    request = Req(
        groups=[
            Req.OffsetFetchRequestGroup("g1", topics=None),
            Req.OffsetFetchRequestGroup("g2", topics=[Req.OffsetFetchRequestTopics("u", [1, 2])]),
        ]
    )
    response = h.coordinator.handle_offset_fetch(request, 8, h.now).response
    got = {
        (g.group_id, t.name, p.partition_index): p.committed_offset
        for g in response.groups
        for t in g.topics
        for p in t.partitions
    }
    assert got == {("g1", "t", 0): 5, ("g2", "u", 1): 6, ("g2", "u", 2): -1}


def test_retention_expires_offsets_of_empty_groups() -> None:
    day = 24 * 3_600_000
    h = Harness(offsets_retention_ms=day, offsets_retention_check_interval_ms=3_600_000)
    (a,), gen = h.form_group(1)
    h.commit({("t", 0): 10}, member_id=a, generation=gen)
    h.commit({("s", 0): 3}, group="simple")
    h.leave((a, None))
    for _ in range(23):
        h.tick(3_600_000)
    assert h.fetch(topics={"t": [0]})[("t", 0)][0] == 10
    h.tick(3_600_000)
    h.tick(3_600_000)
    assert h.coordinator.group("g") is None and h.coordinator.group("simple") is None
    tombstones = [decode_key(r.key) for r in h.log if r.value is None]
    assert GroupMetadataKey("g") in tombstones and len(tombstones) == 3


def test_explicit_retention_writes_v1_value_with_expire_timestamp() -> None:
    h = Harness()
    h.commit({("t", 0): 1}, version=2, retention_ms=60_000)
    record = h.log[-1]
    assert int.from_bytes(record.value[:2], "big") == OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE
    offset = h.coordinator.group("g").offsets[TopicPartition("t", 0)]
    assert offset.expire_timestamp_ms == h.now + 60_000
    h.commit({("t", 1): 1}, version=9)
    assert int.from_bytes(h.log[-1].value[:2], "big") == 3


def test_describe_list_delete_groups() -> None:
    h = Harness()
    (a, b), _gen = h.form_group(2)
    h.commit({("t", 0): 1}, group="simple")
    described = h.coordinator.handle_describe_groups(
        DescribeGroupsRequest(["g", "missing"], include_authorized_operations=True), 5, h.now
    ).response.groups
    g, missing = described
    assert g.group_state == "Stable" and g.protocol_type == "consumer"
    assert g.protocol_data == "range" and g.authorized_operations != -(1 << 31)
    assert [(m.member_id, m.member_assignment, m.client_host) for m in g.members] == [
        (a, a.encode(), "/10.0.0.1"),
        (b, b.encode(), "/10.0.0.1"),
    ]
    assert missing.group_state == "Dead" and missing.error_code == E.NONE

    def listed(version: int, states: list[str], types: list[str] | None = None) -> set[str]:
        request = ListGroupsRequest(states_filter=states, types_filter=types or [])
        response = h.coordinator.handle_list_groups(request, version, h.now).response
        return {x.group_id for x in response.groups}

    assert listed(5, []) == {"g", "simple"}
    assert listed(4, ["stable"]) == {"g"}
    assert listed(4, ["Empty"]) == {"simple"}
    assert listed(5, [], ["consumer"]) == set()
    assert listed(5, [], ["Classic"]) == {"g", "simple"}

    result = h.coordinator.handle_delete_groups(
        DeleteGroupsRequest(["g", "simple", "missing"]), 2, h.now
    )
    h.run(result)
    assert [(r.group_id, r.error_code) for r in result.response.results] == [
        ("g", E.NON_EMPTY_GROUP),
        ("simple", E.NONE),
        ("missing", E.GROUP_ID_NOT_FOUND),
    ]
    assert [r.value for r in result.records] == [None, None]
    assert h.coordinator.group("simple") is None


def test_offset_delete_respects_subscriptions() -> None:
    h = Harness()
    (a,), gen = h.form_group(1, protocols=(("range", subscription("orders")),))
    h.commit({("orders", 0): 1, ("old", 0): 2}, member_id=a, generation=gen)
    Req = OffsetDeleteRequest
    request = Req(
        group_id="g",
        topics=[
            Req.OffsetDeleteRequestTopic("orders", [Req.OffsetDeleteRequestPartition(0)]),
            Req.OffsetDeleteRequestTopic("old", [Req.OffsetDeleteRequestPartition(0)]),
        ],
    )
    result = h.run(h.coordinator.handle_offset_delete(request, 0, h.now))
    codes = [p.error_code for t in result.response.topics for p in t.partitions]
    assert codes == [E.GROUP_SUBSCRIBED_TO_TOPIC, E.NONE]
    assert len(result.records) == 1 and result.records[0].value is None
    assert set(h.coordinator.group("g").offsets) == {TopicPartition("orders", 0)}
    missing = h.coordinator.handle_offset_delete(Req(group_id="nope"), 0, h.now).response
    assert missing.error_code == E.GROUP_ID_NOT_FOUND
    assert h.coordinator.handle_offset_delete(Req(), 0, h.now).response.error_code == (
        E.INVALID_GROUP_ID
    )


def test_offset_delete_on_non_consumer_group_in_use() -> None:
    h = Harness()
    h.form_group(1, protocol_type="connect")
    request = OffsetDeleteRequest(group_id="g")
    response = h.coordinator.handle_offset_delete(request, 0, h.now).response
    assert response.error_code == E.NON_EMPTY_GROUP


def test_group_count_is_bounded() -> None:
    h = Harness(max_groups=1)
    h.commit({("t", 0): 1}, group="one")
    assert h.commit({("t", 0): 1}, group="two") == {("t", 0): E.COORDINATOR_NOT_AVAILABLE}
    assert h.join(group="two").response.error_code == E.COORDINATOR_NOT_AVAILABLE


def test_replay_rebuilds_groups_and_offsets() -> None:
    h = Harness()
    (a, b), gen = h.form_group(2)
    h.commit({("t", 0): 10, ("t", 1): 11}, member_id=a, generation=gen, metadata="x")
    h.commit({("t", 0): 12}, member_id=b, generation=gen)
    ri = h.join(instance="i-s")
    h.join(member_id=a)
    h.join(member_id=b)
    gen2 = h.answer(ri).generation_id
    leader = h.coordinator.group("g").leader_id
    static_id = h.answer(ri).member_id
    h.sync(leader, gen2, {a: b"1", b: b"2", static_id: b"3"})
    h.join(instance="i-s")  # static replacement, persisted without a rebalance
    h.commit({("s", 0): 1}, group="simple")
    h.commit({("gone", 0): 1}, group="deleted")
    h.run(h.coordinator.handle_delete_groups(DeleteGroupsRequest(["deleted"]), 2, h.now))
    (c,), _ = h.form_group(1, group="emptied")
    h.leave((c, None), group="emptied")

    fresh = GroupCoordinator()
    for record in h.log:
        fresh.replay(record.key, record.value)
    fresh.finish_loading(h.now)
    assert _persisted(fresh) == _persisted(h.coordinator)
    assert {g.group_id for g in fresh.groups()} == {"g", "simple", "emptied"}
    # The reloaded group serves its members at once.
    assert fresh.group("g").members[a].assignment == b"1"


def _persisted(c: GroupCoordinator) -> dict:
    return {
        g.group_id: (
            g.state,
            g.generation_id,
            g.protocol_type,
            g.protocol_name,
            g.leader_id,
            g.state_timestamp_ms,
            [
                (
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.session_timeout_ms,
                    m.rebalance_timeout_ms,
                    m.assignment,
                    dict(m.protocols).get(g.protocol_name or ""),
                )
                for m in g.members.values()
            ],
            dict(g.static_members),
            dict(g.offsets),
        )
        for g in c.groups()
    }
