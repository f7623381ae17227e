"""A fake-clock driver for GroupCoordinator: requests in, records and responses collected."""

from __future__ import annotations

import struct
from typing import Any

from josef.coordinator.group import GroupConfig, GroupCoordinator, GroupRecord, Result
from josef.protocol._generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from josef.protocol._generated.heartbeat import HeartbeatRequest
from josef.protocol._generated.join_group import JoinGroupRequest
from josef.protocol._generated.leave_group import LeaveGroupRequest
from josef.protocol._generated.offset_commit import OffsetCommitRequest
from josef.protocol._generated.offset_fetch import OffsetFetchRequest
from josef.protocol._generated.sync_group import SyncGroupRequest
from josef.protocol.errors import ErrorCode

E = ErrorCode
Protocol = JoinGroupRequest.JoinGroupRequestProtocol
Assignment = SyncGroupRequest.SyncGroupRequestAssignment
CommitTopic = OffsetCommitRequest.OffsetCommitRequestTopic
CommitPartition = OffsetCommitRequest.OffsetCommitRequestPartition


def subscription(*topics: str) -> bytes:
    """ConsumerProtocolSubscription v0 bytes, as a Java consumer sends them."""
    return struct.pack(">h", 0) + ConsumerProtocolSubscription(topics=list(topics)).encode(0)


class Harness:
    def __init__(self, **config: Any) -> None:
        config.setdefault("group_initial_rebalance_delay_ms", 0)
        self.suffix = 0
        self.coordinator = GroupCoordinator(GroupConfig(**config), self._next_suffix)
        self.now = 1_000
        self.log: list[GroupRecord] = []
        self.completed: dict[int, Any] = {}

    def _next_suffix(self) -> str:
        self.suffix += 1
        return f"id{self.suffix}"

    def run(self, result: Result[Any]) -> Result[Any]:
        self.log.extend(result.records)
        for completion in result.completions:
            assert completion.ticket not in self.completed
            self.completed[completion.ticket] = completion.response
        return result

    def answer(self, result: Result[Any]) -> Any:
        """The response to the request of `result`, immediate or completed since (else None)."""
        if result.response is not None:
            return result.response
        return self.completed.get(result.ticket)  # type: ignore[arg-type]

    def tick(self, ms: int) -> Result[Any]:
        self.now += ms
        return self.run(self.coordinator.expire(self.now))

    def join(
        self,
        member_id: str = "",
        group: str = "g",
        protocols: tuple[tuple[str, bytes], ...] = (("range", b"meta"),),
        version: int = 9,
        instance: str | None = None,
        session_ms: int = 10_000,
        rebalance_ms: int = 30_000,
        protocol_type: str = "consumer",
        client_id: str = "c",
    ) -> Result[Any]:
        request = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type=protocol_type,
            protocols=[Protocol(name, metadata) for name, metadata in protocols],
        )
        return self.run(
            self.coordinator.handle_join_group(request, version, client_id, "/10.0.0.1", self.now)
        )

    def member_id(self, group: str = "g", **kw: Any) -> str:
        response = self.join(group=group, **kw).response
        assert response.error_code == E.MEMBER_ID_REQUIRED
        return response.member_id

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        group: str = "g",
        version: int = 5,
        instance: str | None = None,
        protocol_name: str | None = None,
    ) -> Result[Any]:
        request = SyncGroupRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance,
            protocol_name=protocol_name,
            assignments=[Assignment(m, a) for m, a in (assignments or {}).items()],
        )
        return self.run(self.coordinator.handle_sync_group(request, version, self.now))

    def heartbeat(
        self, member_id: str, generation: int, group: str = "g", instance: str | None = None
    ) -> int:
        request = HeartbeatRequest(group, generation, member_id, instance)
        return self.run(self.coordinator.handle_heartbeat(request, 4, self.now)).response.error_code

    def leave(self, *members: tuple[str, str | None], group: str = "g", version: int = 5) -> Any:
        if version >= 3:
            request = LeaveGroupRequest(
                group_id=group,
                members=[LeaveGroupRequest.MemberIdentity(m, i) for m, i in members],
            )
        else:
            request = LeaveGroupRequest(group_id=group, member_id=members[0][0])
        return self.run(self.coordinator.handle_leave_group(request, version, self.now)).response

    def commit(
        self,
        offsets: dict[tuple[str, int], int],
        group: str = "g",
        member_id: str = "",
        generation: int = -1,
        metadata: str = "",
        version: int = 9,
        instance: str | None = None,
        retention_ms: int = -1,
    ) -> dict[tuple[str, int], int]:
        topics: dict[str, list[CommitPartition]] = {}
        for (topic, partition), offset in offsets.items():
            topics.setdefault(topic, []).append(
                CommitPartition(partition, offset, committed_metadata=metadata)
            )
        request = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            group_instance_id=instance,
            retention_time_ms=retention_ms,
            topics=[CommitTopic(name, parts) for name, parts in topics.items()],
        )
        response = self.run(
            self.coordinator.handle_offset_commit(request, version, self.now)
        ).response
        return {
            (t.name, p.partition_index): p.error_code
            for t in response.topics
            for p in t.partitions
        }

    def fetch(self, group: str = "g", topics: dict[str, list[int]] | None = None) -> dict:
        request = OffsetFetchRequest(
            group_id=group,
            topics=None
            if topics is None
            else [OffsetFetchRequest.OffsetFetchRequestTopic(t, p) for t, p in topics.items()],
        )
        response = self.coordinator.handle_offset_fetch(request, 7, self.now).response
        return {
            (t.name, p.partition_index): (p.committed_offset, p.metadata, p.error_code)
            for t in response.topics
            for p in t.partitions
        }

    def form_group(
        self, n: int, group: str = "g", **kw: Any
    ) -> tuple[list[str], int]:
        """n dynamic members join and sync; returns their ids (leader first) and the generation."""
        ids = [self.member_id(group=group, **kw) for _ in range(n)]
        joins = [self.join(member_id=m, group=group, **kw) for m in ids]
        responses = [self.answer(r) for r in joins]
        assert all(r is not None and r.error_code == E.NONE for r in responses), responses
        generation = responses[0].generation_id
        leader = responses[0].leader
        assert {r.leader for r in responses} == {leader}
        followers = [m for m in ids if m != leader]
        syncs = [self.sync(m, generation, group=group) for m in followers]
        assert all(s.response is None for s in syncs)  # parked until the leader's assignment
        assignment = {m: m.encode() for m in ids}
        lead = self.sync(leader, generation, assignment, group=group)
        assert lead.response.error_code == E.NONE
        for member, s in zip(followers, syncs, strict=True):
            assert self.answer(s).assignment == member.encode()
        return [leader, *followers], generation
