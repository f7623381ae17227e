"""KIP-848 consumer groups on a fake clock: assignors, reconciliation, fencing, records/replay."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from josef.coordinator.group import GroupConfig, GroupCoordinator, GroupRecord
from josef.coordinator.group.assignors import MemberSpec, RangeAssignor, UniformAssignor
from josef.coordinator.group.consumer_group import (
    ConsumerGroupConfig,
    GroupState,
    MemberState,
    TopicMetadata,
)
from josef.protocol._generated.consumer_group_describe import ConsumerGroupDescribeRequest
from josef.protocol._generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)
from josef.protocol._generated.list_groups import ListGroupsRequest
from josef.protocol._generated.offset_commit import OffsetCommitRequest
from josef.protocol.errors import ErrorCode

E = ErrorCode
T1 = uuid.UUID(int=1)
T2 = uuid.UUID(int=2)
TOPICS = {"a": TopicMetadata(T1, "a", 6), "b": TopicMetadata(T2, "b", 3)}
TP = ConsumerGroupHeartbeatRequest.TopicPartitions


class Client:
    """A well-behaved KIP-848 consumer: owns what it was given, revokes at once."""

    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        self.epoch = 0
        self.owned: dict[uuid.UUID, set[int]] = {}

    def owned_tps(self) -> list[Any]:
        return [TP(topic_id=t, partitions=sorted(p)) for t, p in sorted(self.owned.items()) if p]


class Sim:
    def __init__(self, **consumer: Any) -> None:
        self.coordinator = GroupCoordinator(
            GroupConfig(consumer=ConsumerGroupConfig(**consumer))
        )
        self.now = 1_000
        self.log: list[GroupRecord] = []
        self.topics = dict(TOPICS)

    def heartbeat(self, **fields: Any) -> ConsumerGroupHeartbeatResponse:
        fields.setdefault("group_id", "g")
        request = ConsumerGroupHeartbeatRequest(**fields)
        result = self.coordinator.handle_consumer_group_heartbeat(
            request, 1, "client", "/127.0.0.1", self.topics, self.now
        )
        self.log.extend(result.records)
        assert result.response is not None
        return result.response

    def join(
        self, client: Client, topics: list[str], **extra: Any
    ) -> ConsumerGroupHeartbeatResponse:
        r = self.heartbeat(member_id=client.member_id, member_epoch=0, rebalance_timeout_ms=30_000,
                           subscribed_topic_names=topics, topic_partitions=[], **extra)
        self._take(client, r)
        return r

    def beat(self, client: Client) -> ConsumerGroupHeartbeatResponse:
        r = self.heartbeat(member_id=client.member_id, member_epoch=client.epoch,
                           topic_partitions=client.owned_tps())
        self._take(client, r)
        return r

    @staticmethod
    def _take(client: Client, r: ConsumerGroupHeartbeatResponse) -> None:
        assert r.error_code == E.NONE, r
        client.epoch = r.member_epoch
        if r.assignment is not None:
            client.owned = {tp.topic_id: set(tp.partitions) for tp in r.assignment.topic_partitions}

    def leave(self, client: Client) -> ConsumerGroupHeartbeatResponse:
        return self.heartbeat(member_id=client.member_id, member_epoch=-1)

    def group(self) -> Any:
        return self.coordinator.consumer_groups.get("g")

    def tick(self, ms: int) -> None:
        self.now += ms
        self.log.extend(self.coordinator.expire(self.now).records)

    def replayed(self) -> GroupCoordinator:
        fresh = GroupCoordinator(GroupConfig())
        for record in self.log:
            fresh.replay(record.key, record.value)
        fresh.finish_loading(self.now)
        return fresh


def owners(clients: list[Client]) -> dict[tuple[uuid.UUID, int], list[str]]:
    out: dict[tuple[uuid.UUID, int], list[str]] = {}
    for c in clients:
        for t, ps in c.owned.items():
            for p in ps:
                out.setdefault((t, p), []).append(c.member_id)
    return out


def settle(sim: Sim, clients: list[Client], rounds: int = 6) -> None:
    for _ in range(rounds):
        for c in clients:
            sim.beat(c)


# ---------------------------------------------------------------------- assignors


def test_range_assignor_contiguous_ranges() -> None:
    members = {m: MemberSpec(frozenset({T1})) for m in ("m1", "m2", "m3", "m4")}
    result = RangeAssignor().assign(members, {T1: 6})
    assert result == {"m1": {T1: frozenset({0, 1})}, "m2": {T1: frozenset({2, 3})},
                      "m3": {T1: frozenset({4})}, "m4": {T1: frozenset({5})}}


def test_uniform_assignor_is_sticky_and_balanced() -> None:
    first = UniformAssignor().assign({"m1": MemberSpec(frozenset({T1, T2}))}, {T1: 6, T2: 3})
    assert first["m1"] == {T1: frozenset(range(6)), T2: frozenset(range(3))}
    second = UniformAssignor().assign(
        {"m1": MemberSpec(frozenset({T1, T2}), first["m1"]), "m2": MemberSpec(frozenset({T1, T2}))},
        {T1: 6, T2: 3},
    )
    sizes = sorted(sum(len(p) for p in a.values()) for a in second.values())
    assert sizes == [4, 5]
    # m1 keeps everything it still has: it only gave partitions away.
    for t, ps in second["m1"].items():
        assert ps <= first["m1"][t]


@given(
    st.dictionaries(
        st.sampled_from([f"m{i}" for i in range(8)]),
        st.sets(st.sampled_from([T1, T2]), min_size=1),
        min_size=1,
    ),
    st.integers(0, 12),
    st.integers(0, 12),
    st.sampled_from(["uniform", "range"]),
)
@settings(max_examples=150, deadline=None)
def test_assignors_assign_each_partition_once(
    subs: dict[str, set[uuid.UUID]], n1: int, n2: int, name: str
) -> None:
    assignor = UniformAssignor() if name == "uniform" else RangeAssignor()
    partitions = {T1: n1, T2: n2}
    result = assignor.assign({m: MemberSpec(frozenset(s)) for m, s in subs.items()}, partitions)
    assert set(result) == set(subs)
    seen: dict[tuple[uuid.UUID, int], str] = {}
    for member, assignment in result.items():
        for t, ps in assignment.items():
            assert t in subs[member]
            for p in ps:
                assert (t, p) not in seen
                seen[(t, p)] = member
    wanted = {(t, p) for t, n in partitions.items() for p in range(n)
              if any(t in s for s in subs.values())}
    assert set(seen) == wanted
    if name == "uniform" and len({frozenset(s) for s in subs.values()}) == 1:
        sizes = [sum(len(p) for p in a.values()) for a in result.values()]
        assert max(sizes) - min(sizes) <= 1


# ---------------------------------------------------------------------- reconciliation


def test_join_gets_everything_then_second_member_is_incremental() -> None:
    sim = Sim()
    c1, c2 = Client("m1"), Client("m2")
    r = sim.join(c1, ["a"])
    assert r.member_epoch == 1 and c1.owned == {T1: set(range(6))}
    assert r.heartbeat_interval_ms == 5_000
    sim.join(c2, ["a"])
    # m2 is at the new epoch but may not take anything m1 still owns.
    assert c2.owned == {} and sim.group().members["m2"].state is MemberState.UNRELEASED_PARTITIONS
    r = sim.beat(c1)  # m1 learns what to revoke; keeps the rest, epoch unchanged
    assert r.member_epoch == 1 and len(c1.owned[T1]) == 3
    assert sim.group().members["m1"].state is MemberState.UNREVOKED_PARTITIONS
    sim.beat(c1)  # acknowledges the revocation
    assert c1.epoch == 2
    sim.beat(c2)
    assert c2.owned[T1] == set(range(6)) - c1.owned[T1]
    assert sim.group().state is GroupState.STABLE


def test_leave_moves_partitions_and_replay_equals_live() -> None:
    sim = Sim()
    clients = [Client(f"m{i}") for i in range(3)]
    for c in clients:
        sim.join(c, ["a", "b"])
    settle(sim, clients)
    assert all(len(v) == 1 for v in owners(clients).values()) and len(owners(clients)) == 9
    sim.leave(clients[0])
    rest = clients[1:]
    settle(sim, rest)
    assert len(owners(rest)) == 9 and all(len(v) == 1 for v in owners(rest).values())
    fresh = sim.replayed().consumer_groups.get("g")
    live = sim.group()
    assert fresh is not None
    assert (fresh.group_epoch, fresh.assignment_epoch, fresh.target, fresh.owners) == (
        live.group_epoch, live.assignment_epoch, live.target, live.owners)
    assert {m: (x.member_epoch, x.state, x.assigned) for m, x in fresh.members.items()} == {
        m: (x.member_epoch, x.state, x.assigned) for m, x in live.members.items()}


def test_session_timeout_fences_member() -> None:
    sim = Sim(session_timeout_ms=10_000)
    c1, c2 = Client("m1"), Client("m2")
    sim.join(c1, ["a"])
    sim.join(c2, ["a"])
    settle(sim, [c1, c2])
    for _ in range(3):
        sim.tick(4_000)
        sim.beat(c2)
    assert "m1" not in sim.group().members
    assert c2.owned == {T1: set(range(6))}
    r = sim.heartbeat(member_id="m1", member_epoch=c1.epoch)
    assert r.error_code == E.UNKNOWN_MEMBER_ID


def test_revocation_timeout_fences_slow_member() -> None:
    sim = Sim()
    c1, c2 = Client("m1"), Client("m2")
    sim.join(c1, ["a"])
    sim.join(c2, ["a"])
    sim.beat(c1)
    assert sim.group().members["m1"].state is MemberState.UNREVOKED_PARTITIONS
    sim.tick(30_001)  # the rebalance timeout the member joined with
    assert "m1" not in sim.group().members
    sim.beat(c2)
    assert c2.owned == {T1: set(range(6))}


def test_epoch_fencing_and_lost_response() -> None:
    sim = Sim()
    c1, c2 = Client("m1"), Client("m2")
    sim.join(c1, ["a"])
    sim.join(c2, ["a"])
    settle(sim, [c1, c2])
    epoch = c1.epoch
    assert sim.heartbeat(member_id="m1", member_epoch=epoch + 1).error_code == (
        E.FENCED_MEMBER_EPOCH)
    # The previous epoch is accepted while the member owns no more than its assignment.
    previous = sim.group().members["m1"].previous_member_epoch
    r = sim.heartbeat(member_id="m1", member_epoch=previous, topic_partitions=c1.owned_tps())
    assert r.error_code == E.NONE
    everything = [TP(topic_id=T1, partitions=list(range(6)))]
    r = sim.heartbeat(member_id="m1", member_epoch=previous, topic_partitions=everything)
    assert r.error_code == E.FENCED_MEMBER_EPOCH


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"member_epoch": 0, "subscribed_topic_names": ["a"]}, E.INVALID_REQUEST),  # no timeout
        ({"member_epoch": 0, "rebalance_timeout_ms": 1, "subscribed_topic_names": ["a"],
          "server_assignor": "sticky"}, E.UNSUPPORTED_ASSIGNOR),
        ({"member_epoch": 0, "rebalance_timeout_ms": 1, "subscribed_topic_regex": "("},
         E.INVALID_REGULAR_EXPRESSION),
        ({"member_id": "x", "member_epoch": 3}, E.GROUP_ID_NOT_FOUND),
        ({"member_id": "x", "member_epoch": -7}, E.INVALID_REQUEST),
    ],
)
def test_invalid_heartbeats(fields: dict[str, Any], code: ErrorCode) -> None:
    assert Sim().heartbeat(**fields).error_code == code


def test_group_max_size_and_regex_and_assignor_choice() -> None:
    sim = Sim(max_size=1)
    sim.join(Client("m1"), [], subscribed_topic_regex="[ab]", server_assignor="range")
    assert sim.group().target["m1"] == {T1: frozenset(range(6)), T2: frozenset(range(3))}
    r = sim.heartbeat(member_id="m2", member_epoch=0, rebalance_timeout_ms=1,
                      subscribed_topic_names=["a"])
    assert r.error_code == E.GROUP_MAX_SIZE_REACHED


def test_static_member_rejoins_with_its_assignment() -> None:
    sim = Sim()
    c1, c2 = Client("m1"), Client("m2")
    sim.join(c1, ["a"], instance_id="i1")
    sim.join(c2, ["a"])
    settle(sim, [c1, c2])
    kept = set(c1.owned[T1])
    epoch = sim.group().group_epoch
    r = sim.heartbeat(member_id="m1", member_epoch=-2, instance_id="i1")
    assert r.member_epoch == -2
    new = Client("m1b")
    sim.join(new, ["a"], instance_id="i1")
    sim.beat(new)
    assert new.owned[T1] == kept and sim.group().group_epoch == epoch
    assert "m1" not in sim.group().members


def test_offsets_use_member_epochs_and_classic_namespace() -> None:
    sim = Sim()
    c1 = Client("m1")
    sim.join(c1, ["a"])

    def commit(member_id: str, epoch: int, version: int = 9) -> int:
        request = OffsetCommitRequest(
            group_id="g", generation_id_or_member_epoch=epoch, member_id=member_id,
            topics=[OffsetCommitRequest.OffsetCommitRequestTopic(
                "a", [OffsetCommitRequest.OffsetCommitRequestPartition(0, 5)])],
        )
        result = sim.coordinator.handle_offset_commit(request, version, sim.now)
        sim.log.extend(result.records)
        assert result.response is not None
        return int(result.response.topics[0].partitions[0].error_code)

    assert commit("m1", c1.epoch + 1) == E.STALE_MEMBER_EPOCH
    assert commit("nobody", 1) == E.UNKNOWN_MEMBER_ID
    assert commit("m1", c1.epoch, version=8) == E.UNSUPPORTED_VERSION
    assert commit("m1", c1.epoch) == E.NONE
    fresh = sim.replayed()
    group = fresh.group("g")
    assert group is not None and group.offsets and fresh.consumer_groups.get("g") is not None
    listed = sim.coordinator.handle_list_groups(ListGroupsRequest(), 5, sim.now).response
    assert listed is not None
    assert [(g.group_id, g.group_type, g.group_state) for g in listed.groups] == [
        ("g", "consumer", "Stable")]
    described = sim.coordinator.handle_consumer_group_describe(
        ConsumerGroupDescribeRequest(group_ids=["g", "nope"]), 0, sim.now).response
    assert described is not None
    assert described.groups[0].members[0].assignment.topic_partitions[0].topic_name == "a"
    assert described.groups[1].error_code == E.GROUP_ID_NOT_FOUND


# ---------------------------------------------------------------------- property


@given(st.lists(st.tuples(st.sampled_from(["join", "leave", "beat", "tick", "topic"]),
                          st.integers(0, 5)), max_size=60))
@settings(max_examples=80, deadline=None)
def test_random_joins_and_leaves_never_double_own(ops: list[tuple[str, int]]) -> None:
    sim = Sim(session_timeout_ms=20_000)
    clients: dict[int, Client] = {}
    generation = 0
    for op, i in ops:
        if op == "join" and i not in clients:
            generation += 1
            clients[i] = Client(f"m{i}-{generation}")
            sim.join(clients[i], ["a", "b"] if i % 2 else ["a"])
        elif op == "leave" and i in clients:
            # UNKNOWN_MEMBER_ID: its session had already timed out.
            assert sim.leave(clients.pop(i)).error_code in (E.NONE, E.UNKNOWN_MEMBER_ID)
        elif op == "beat" and i in clients:
            r = sim.heartbeat(member_id=clients[i].member_id, member_epoch=clients[i].epoch,
                              topic_partitions=clients[i].owned_tps())
            if r.error_code == E.UNKNOWN_MEMBER_ID:
                del clients[i]  # fenced by a timeout
            else:
                Sim._take(clients[i], r)
        elif op == "tick":
            sim.tick(7_000)
        elif op == "topic":
            sim.topics["a"] = TopicMetadata(T1, "a", 6 + i)
        # The broker's view: no partition is held by two live members at any time.
        group = sim.group()
        if group is not None:
            held: set[tuple[uuid.UUID, int]] = set()
            for m in group.members.values():
                for t, ps in (*m.assigned.items(), *m.pending_revocation.items()):
                    for p in ps:
                        assert (t, p) not in held
                        held.add((t, p))
        alive = [c for c in clients.values() if group and c.member_id in group.members]
        assert all(len(v) == 1 for v in owners(alive).values())
    live = list(clients.values())
    group = sim.group()
    live = [c for c in live if group and c.member_id in group.members]
    settle(sim, live, rounds=5)
    if live:
        assert sim.group().state is GroupState.STABLE
        own = owners(live)
        assert all(len(v) == 1 for v in own.values())
        assert len(own) == sim.topics["a"].num_partitions + (
            3 if any(int(c.member_id[1:].split("-")[0]) % 2 for c in live) else 0)
