"""Consumer-group APIs over the wire against a real `josef serve`: hostile JoinGroup inputs get
Kafka's error codes, offsets and membership survive a restart, admin APIs route by group."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from josef.protocol._generated.delete_groups import DeleteGroupsRequest
from josef.protocol._generated.describe_groups import DescribeGroupsRequest
from josef.protocol._generated.heartbeat import HeartbeatRequest
from josef.protocol._generated.join_group import JoinGroupRequest, JoinGroupResponse
from josef.protocol._generated.leave_group import LeaveGroupRequest
from josef.protocol._generated.list_groups import ListGroupsRequest
from josef.protocol._generated.offset_commit import OffsetCommitRequest
from josef.protocol._generated.offset_delete import OffsetDeleteRequest
from josef.protocol._generated.offset_fetch import OffsetFetchRequest
from josef.protocol._generated.sync_group import SyncGroupRequest
from josef.protocol.errors import ErrorCode as E
from tests.broker import wire
from tests.broker.conftest import ServeProcess

JOIN, SYNC, HEARTBEAT, LEAVE = 11, 14, 12, 13
COMMIT, FETCH, DESCRIBE, LIST, DELETE, OFFSET_DELETE = 8, 9, 15, 16, 42, 47

# Short timeouts keep the suite fast; the broker's lower bound is lowered to allow them.
GROUP_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "500",
    "offsets.topic.num.partitions": "5",
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("groups"), GROUP_OVERRIDES)
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _join(
    sock: socket.socket,
    group: str,
    member_id: str = "",
    instance: str | None = None,
    protocol_type: str = "consumer",
    metadata: bytes = b"\x00\x01",
    session_timeout_ms: int = 5_000,
    version: int = 5,
) -> JoinGroupResponse:
    body = JoinGroupRequest(
        group_id=group,
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=5_000,
        member_id=member_id,
        group_instance_id=instance,
        protocol_type=protocol_type,
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol("range", metadata)],
    )
    return wire.call(sock, JOIN, version, body)


def _join_member(sock: socket.socket, group: str) -> JoinGroupResponse:
    """KIP-394: the first join hands out the member id, the second one joins with it."""
    first = _join(sock, group)
    assert first.error_code == E.MEMBER_ID_REQUIRED
    joined = _join(sock, group, member_id=first.member_id)
    assert joined.error_code == E.NONE
    return joined


def _sync(sock: socket.socket, group: str, joined: JoinGroupResponse) -> int:
    assignments = [
        SyncGroupRequest.SyncGroupRequestAssignment(m.member_id, b"assigned")
        for m in joined.members
    ]
    body = SyncGroupRequest(
        group_id=group, generation_id=joined.generation_id, member_id=joined.member_id,
        assignments=assignments,
    )
    response = wire.call(sock, SYNC, 3, body)
    assert response.assignment == b"assigned" or response.error_code != E.NONE
    return int(response.error_code)


def _heartbeat(
    sock: socket.socket, group: str, generation: int, member_id: str, instance: str | None = None
) -> int:
    body = HeartbeatRequest(
        group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance
    )
    return int(wire.call(sock, HEARTBEAT, 3, body).error_code)


def _commit(sock: socket.socket, group: str, topic: str, offsets: dict[int, int]) -> list[int]:
    body = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=-1,
        topics=[
            OffsetCommitRequest.OffsetCommitRequestTopic(
                topic,
                [
                    OffsetCommitRequest.OffsetCommitRequestPartition(
                        partition_index=p, committed_offset=o, committed_metadata=f"m{o}"
                    )
                    for p, o in offsets.items()
                ],
            )
        ],
    )
    response = wire.call(sock, COMMIT, 8, body)
    return [p.error_code for t in response.topics for p in t.partitions]


def _fetch_v8(
    sock: socket.socket, groups: list[str]
) -> dict[str, tuple[int, dict[tuple[str, int], tuple[int, str | None]]]]:
    body = OffsetFetchRequest(
        groups=[OffsetFetchRequest.OffsetFetchRequestGroup(group_id=g, topics=None)
                for g in groups]
    )
    response = wire.call(sock, FETCH, 8, body)
    return {
        g.group_id: (
            g.error_code,
            {(t.name, p.partition_index): (p.committed_offset, p.metadata)
             for t in g.topics for p in t.partitions},
        )
        for g in response.groups
    }


# ---- hostile JoinGroup input ----------------------------------------------------------------


def test_join_sync_heartbeat_and_hostile_inputs(broker: ServeProcess) -> None:
    group = _group()
    with wire.connect(broker.bootstrap) as a, wire.connect(broker.bootstrap) as b:
        joined = _join_member(a, group)
        assert joined.leader == joined.member_id and joined.generation_id == 1
        assert [m.member_id for m in joined.members] == [joined.member_id]
        assert _sync(a, group, joined) == E.NONE
        gen, member = joined.generation_id, joined.member_id
        assert _heartbeat(a, group, gen, member) == E.NONE
        # Wrong generation, unknown member id.
        assert _heartbeat(a, group, gen + 1, member) == E.ILLEGAL_GENERATION
        assert _heartbeat(a, group, gen, "nobody") == E.UNKNOWN_MEMBER_ID
        assert _join(b, group, member_id="nobody").error_code == E.UNKNOWN_MEMBER_ID
        # Another protocol type than the group's.
        assert _join(b, group, protocol_type="connect").error_code == (
            E.INCONSISTENT_GROUP_PROTOCOL
        )
        # Oversized protocol metadata (2 MiB, above the 1 MiB per-member bound).
        assert _join(b, group, metadata=b"x" * (2 << 20)).error_code == E.INVALID_REQUEST
        # Session timeout outside group.min/max.session.timeout.ms.
        assert _join(b, group, session_timeout_ms=100).error_code == E.INVALID_SESSION_TIMEOUT
        assert _join(b, "").error_code == E.INVALID_GROUP_ID
        # The group is untouched by all of that.
        assert _heartbeat(a, group, gen, member) == E.NONE


def test_fenced_static_member(broker: ServeProcess) -> None:
    group = _group()
    with wire.connect(broker.bootstrap) as a, wire.connect(broker.bootstrap) as b:
        first = _join(a, group, instance="i-1")  # static members join without KIP-394
        assert first.error_code == E.NONE
        assert _sync(a, group, first) == E.NONE
        # The instance restarts: the new incarnation takes over, the old one is fenced.
        second = _join(b, group, instance="i-1")
        assert second.error_code == E.NONE and second.member_id != first.member_id
        assert second.generation_id == first.generation_id  # no rebalance
        assert _heartbeat(a, group, first.generation_id, first.member_id, "i-1") == (
            E.FENCED_INSTANCE_ID
        )
        assert _join(a, group, member_id=first.member_id, instance="i-1").error_code == (
            E.FENCED_INSTANCE_ID
        )
        assert _heartbeat(b, group, second.generation_id, second.member_id, "i-1") == E.NONE


def test_second_member_triggers_rebalance_and_session_timeout_evicts(
    broker: ServeProcess,
) -> None:
    group = _group()
    with (
        wire.connect(broker.bootstrap) as a,
        wire.connect(broker.bootstrap) as b,
        ThreadPoolExecutor(2) as pool,
    ):
        ja = _join_member(a, group)
        assert _sync(a, group, ja) == E.NONE
        first_b = _join(b, group)
        assert first_b.error_code == E.MEMBER_ID_REQUIRED
        # b's join parks until a rejoins (a learns of the rebalance from its heartbeat).
        parked = pool.submit(_join, b, group, first_b.member_id, None, "consumer", b"\x00\x01",
                             1_000)
        while _heartbeat(a, group, ja.generation_id, ja.member_id) != E.REBALANCE_IN_PROGRESS:
            pass
        ja2 = _join(a, group, member_id=ja.member_id)
        jb = parked.result(10)
        assert ja2.error_code == jb.error_code == E.NONE
        assert ja2.generation_id == jb.generation_id == ja.generation_id + 1
        assert {m.member_id for m in ja2.members} == {ja.member_id, jb.member_id}
        assert _sync(a, group, ja2) == E.NONE
        # b never syncs or heartbeats again: its 1 s session expires and a must rejoin alone.
        generation = ja2.generation_id
        while (code := _heartbeat(a, group, generation, ja.member_id)) == E.NONE:
            pass
        assert code == E.REBALANCE_IN_PROGRESS
        ja3 = _join(a, group, member_id=ja.member_id)
        assert [m.member_id for m in ja3.members] == [ja.member_id]


# ---- offsets and admin APIs -----------------------------------------------------------------


def test_offsets_describe_list_delete(broker: ServeProcess) -> None:
    groups = [_group() for _ in range(4)]
    with wire.connect(broker.bootstrap) as s:
        for i, group in enumerate(groups):
            assert _commit(s, group, "orders", {0: 10 + i, 1: 20 + i}) == [E.NONE, E.NONE]
        fetched = _fetch_v8(s, [*groups, "never-committed"])
        assert list(fetched) == [*groups, "never-committed"]  # request order kept across shards
        for i, group in enumerate(groups):
            code, offsets = fetched[group]
            assert code == E.NONE
            assert offsets == {("orders", 0): (10 + i, f"m{10 + i}"),
                               ("orders", 1): (20 + i, f"m{20 + i}")}
        assert fetched["never-committed"] == (E.NONE, {})
        # v1 (single group, named partitions).
        v1 = wire.call(s, FETCH, 1, OffsetFetchRequest(
            group_id=groups[0],
            topics=[OffsetFetchRequest.OffsetFetchRequestTopic("orders", [0, 7])],
        ))
        assert [(p.partition_index, p.committed_offset) for p in v1.topics[0].partitions] == [
            (0, 10), (7, -1)]

        listed = wire.call(s, LIST, 4, ListGroupsRequest(states_filter=["Empty"]))
        assert listed.error_code == E.NONE
        assert set(groups) <= {g.group_id for g in listed.groups}

        described = wire.call(s, DESCRIBE, 5, DescribeGroupsRequest(groups=[groups[1], "nope"]))
        assert [(g.group_id, g.group_state) for g in described.groups] == [
            (groups[1], "Empty"), ("nope", "Dead")]

        deleted = wire.call(s, OFFSET_DELETE, 0, OffsetDeleteRequest(
            group_id=groups[2],
            topics=[OffsetDeleteRequest.OffsetDeleteRequestTopic(
                "orders", [OffsetDeleteRequest.OffsetDeleteRequestPartition(0)])],
        ))
        assert deleted.error_code == E.NONE
        assert _fetch_v8(s, [groups[2]])[groups[2]][1] == {("orders", 1): (22, "m22")}

        result = wire.call(s, DELETE, 2, DeleteGroupsRequest(groups_names=[groups[3], "nope"]))
        assert [(r.group_id, r.error_code) for r in result.results] == [
            (groups[3], E.NONE), ("nope", E.GROUP_ID_NOT_FOUND)]
        assert _fetch_v8(s, [groups[3]])[groups[3]] == (E.NONE, {})


def test_non_empty_group_cannot_be_deleted(broker: ServeProcess) -> None:
    group = _group()
    with wire.connect(broker.bootstrap) as s:
        joined = _join_member(s, group)
        assert _sync(s, group, joined) == E.NONE
        result = wire.call(s, DELETE, 2, DeleteGroupsRequest(groups_names=[group]))
        assert result.results[0].error_code == E.NON_EMPTY_GROUP
        leave = wire.call(s, LEAVE, 3, LeaveGroupRequest(
            group_id=group, members=[LeaveGroupRequest.MemberIdentity(member_id=joined.member_id)]
        ))
        assert leave.error_code == E.NONE and leave.members[0].error_code == E.NONE
        result = wire.call(s, DELETE, 2, DeleteGroupsRequest(groups_names=[group]))
        assert result.results[0].error_code == E.NONE


# ---- restart ----------------------------------------------------------------------------------


def test_restart_keeps_offsets_and_membership(
    serve_factory: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    """Default offsets.topic.num.partitions (50): the topic is created on first use and every
    shard is reloaded at the next start."""
    overrides = {k: v for k, v in GROUP_OVERRIDES.items() if k != "offsets.topic.num.partitions"}
    proc = serve_factory(overrides).start()
    group, simple = _group(), _group()
    with wire.connect(proc.bootstrap) as s:
        assert _commit(s, simple, "t", {0: 5, 3: 7}) == [E.NONE, E.NONE]
        joined = _join(s, group, instance="static-1", session_timeout_ms=30_000)
        assert _sync(s, group, joined) == E.NONE
    assert len(list((tmp_path / "logs").glob("__consumer_offsets-*"))) == 50
    assert proc.stop() == 0
    proc.start()
    with wire.connect(proc.bootstrap) as s:
        for _ in range(200):  # the shards load in the background
            code, offsets = _fetch_v8(s, [simple])[simple]
            if code != E.COORDINATOR_LOAD_IN_PROGRESS:
                break
        assert (code, offsets) == (E.NONE, {("t", 0): (5, "m5"), ("t", 3): (7, "m7")})
        described = wire.call(s, DESCRIBE, 5, DescribeGroupsRequest(groups=[group]))
        g = described.groups[0]
        assert g.group_state == "Stable" and g.protocol_data == "range"
        assert [(m.member_id, m.group_instance_id, m.member_assignment) for m in g.members] == [
            (joined.member_id, "static-1", b"assigned")]
        # The member carries on in its generation without rejoining.
        assert _heartbeat(s, group, joined.generation_id, joined.member_id, "static-1") == E.NONE


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_list_describe_reset_delete(
    broker: ServeProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from josef.cli.main import main

    topic, group = f"cli-{uuid.uuid4().hex[:8]}", _group()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(10)
    with wire.connect(broker.bootstrap) as s:
        assert _commit(s, group, topic, {0: 0, 1: 0}) == [E.NONE, E.NONE]
    cli = ["groups", "--bootstrap-server", broker.bootstrap]
    assert main([*cli, "list"]) == 0
    assert group in capsys.readouterr().out
    assert main([*cli, "describe", group]) == 0
    out = capsys.readouterr().out
    assert "state Empty" in out and f"{topic}  0" in out
    assert main([*cli, "reset-offsets", group, "--topic", f"{topic}:1", "--to-offset", "7"]) == 0
    assert "dry run" in capsys.readouterr().out
    with wire.connect(broker.bootstrap) as s:
        assert _fetch_v8(s, [group])[group][1][(topic, 1)][0] == 0  # unchanged by a dry run
    assert main([*cli, "reset-offsets", group, "--topic", f"{topic}:1", "--to-offset", "7",
                 "--execute"]) == 0
    with wire.connect(broker.bootstrap) as s:
        assert _fetch_v8(s, [group])[group][1][(topic, 1)][0] == 7
    assert main([*cli, "delete", group]) == 0
    assert main([*cli, "delete", group]) == 1
    assert "GROUP_ID_NOT_FOUND" in capsys.readouterr().out
