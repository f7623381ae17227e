"""The classic group coordinator: Kafka's consumer-group protocol as a deterministic state machine.

One `GroupCoordinator` owns the groups of one `__consumer_offsets` partition (a shard; the broker
routes a group with `records.partition_for(group_id, offsets.topic.num.partitions)`). It has no
clock, no I/O and no asyncio: every call takes `now_ms`, and everything it wants done comes back
in a `Result`.

Interface with the broker
-------------------------
- `handle_<api>(request, api_version, now_ms)` (JoinGroup also takes the request header's
  client_id and the peer's host) returns `Result(response, ticket, records, completions)`:
  1. append `records` to the group's `__consumer_offsets` partition, in order;
  2. once they are durable, send `response` (if not None) and send each
     `completions[i].response` to the request parked under `completions[i].ticket`;
  3. when `response` is None the request is parked: its response will arrive later as a
     completion with `ticket` (JoinGroup waiting for the rebalance, a follower's SyncGroup
     waiting for the leader's assignment). A parked request's response is never sent before the
     records of the call that completes it are durable: OffsetCommit is acknowledged only once
     its offsets are durable, a rebalance only once its GroupMetadata record is.
- Time: `next_deadline_ms()` says when `expire(now_ms)` must next be called (None: no timer).
  `expire` fires session timeouts, KIP-394 pending-member timeouts, the rebalance timeout, the
  SyncGroup timeout, group.initial.rebalance.delay.ms and the offsets retention check, and
  returns a `Result` (response None) with the records and completions they produced.
- Loading: on becoming coordinator of the partition, create a fresh coordinator, feed every
  record of the partition to `replay(key, value)` in log order (value None = tombstone), then
  call `finish_loading(now_ms)` (members' session timers start then). The broker answers
  COORDINATOR_LOAD_IN_PROGRESS until then.
- Failure: if an append fails, the in-memory state is ahead of the log. The broker fails the
  responses with NOT_COORDINATOR and reloads the shard from the log (Kafka reverts to a
  snapshot instead; reloading gives the same state with less machinery).

What changes how
----------------
Committed offsets change only through `_apply_offset`, the path `replay` uses, so a live
coordinator and one rebuilt from its records hold the same offsets. Membership is persisted
only at the points Kafka persists it: when the leader's SyncGroup completes a rebalance, when
a rebalance ends with no members (Empty), when a static member is replaced without a rebalance,
and as a tombstone when the group is deleted or expires. Everything between those points
(members rejoining, parked requests, heartbeats) is in memory only, as in Kafka.

Deviations from Kafka, deliberate
---------------------------------
- Protocol selection breaks vote ties by the leader's preference order (Kafka: arbitrary).
- group.initial.rebalance.delay.ms of 0 uses the ordinary rebalance (completes as soon as every
  member has joined) rather than a zero-length timer.
- New members awaiting join are kept until the rebalance timeout (Kafka also bounds them with a
  5-minute new-member timeout).
- JoinGroup with more than `max_protocols_per_member` protocols or more than
  `max_member_metadata_bytes` of protocol metadata, and a SyncGroup assignment above that size,
  get INVALID_REQUEST (Kafka bounds them only by the request size).
- A new group beyond `max_groups` gets COORDINATOR_NOT_AVAILABLE (Kafka has no bound).
- A Dead group is dropped from memory at once, so requests for it see an unknown group.
- A simple-consumer group (never joined by a member) whose last offset is deleted or expires
  is dropped without a record; it never had a GroupMetadata record to tombstone.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from josef.coordinator.group.consumer_group import (
    CONSUMER_GROUP_TYPE,
    ConsumerGroupConfig,
    ConsumerGroups,
    TopicMetadata,
)
from josef.coordinator.group.group import (
    CONSUMER_PROTOCOL_TYPE,
    CommittedOffset,
    Group,
    Member,
    Waiter,
)
from josef.coordinator.group.records import (
    GroupRecord,
    TopicPartition,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
    encode_group_metadata_value,
    encode_offset_commit_value,
    group_metadata_key,
    offset_commit_key,
)
from josef.coordinator.group.state import GroupState, parse_state
from josef.protocol._generated.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)
from josef.protocol._generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
)
from josef.protocol._generated.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from josef.protocol._generated.describe_groups import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
)
from josef.protocol._generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from josef.protocol._generated.internal.group_metadata_key import GroupMetadataKey
from josef.protocol._generated.internal.group_metadata_value import (
    GroupMetadataValue,
    MemberMetadata,
)
from josef.protocol._generated.internal.offset_commit_value import OffsetCommitValue
from josef.protocol._generated.join_group import JoinGroupRequest, JoinGroupResponse
from josef.protocol._generated.leave_group import LeaveGroupRequest, LeaveGroupResponse
from josef.protocol._generated.list_groups import ListGroupsRequest, ListGroupsResponse
from josef.protocol._generated.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from josef.protocol._generated.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from josef.protocol._generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from josef.protocol._generated.sync_group import SyncGroupRequest, SyncGroupResponse
from josef.protocol.errors import ErrorCode

R = TypeVar("R")

E = ErrorCode
S = GroupState

CLASSIC_GROUP_TYPE = "classic"  # ListGroups v5 group_type of every group this coordinator owns
# Kafka's AclOperation codes allowed on a group: READ=3, DELETE=6, DESCRIBE=8 (KIP-430).
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
OPERATIONS_NOT_REQUESTED = -(1 << 31)  # Kafka's "not requested" sentinel (INT32_MIN)


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Group coordinator settings; Kafka's broker config name and default on each line."""

    group_min_session_timeout_ms: int = 6_000  # group.min.session.timeout.ms
    group_max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms (30 min)
    group_max_size: int = 2**31 - 1  # group.max.size (Int.MaxValue: unbounded)
    group_initial_rebalance_delay_ms: int = 3_000  # group.initial.rebalance.delay.ms
    offsets_retention_ms: int = 7 * 24 * 3_600_000  # offsets.retention.minutes = 10080
    offsets_retention_check_interval_ms: int = 600_000  # offsets.retention.check.interval.ms
    offset_metadata_max_bytes: int = 4_096  # offset.metadata.max.bytes
    # Josef's own bounds (Kafka's only bound is socket.request.max.bytes, 100 MiB):
    max_member_metadata_bytes: int = 1 << 20  # protocol metadata / assignment per member: 1 MiB
    max_protocols_per_member: int = 64  # clients offer a handful of assignors
    max_groups: int = 100_000  # groups per __consumer_offsets partition
    consumer: ConsumerGroupConfig = field(default_factory=ConsumerGroupConfig)  # KIP-848 groups


class Completion(NamedTuple):
    """The response to a parked request, identified by the ticket it was parked under."""

    ticket: int
    response: JoinGroupResponse | SyncGroupResponse


@dataclass(slots=True)
class Result(Generic[R]):
    """What one call produced; see the module docstring for the order of effects."""

    response: R | None
    ticket: int | None = None
    records: list[GroupRecord] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)


def _random_suffix() -> str:
    return str(uuid.uuid4())


class GroupCoordinator:
    """The classic groups and committed offsets of one `__consumer_offsets` partition."""

    def __init__(
        self,
        config: GroupConfig | None = None,
        member_id_suffix: Callable[[], str] = _random_suffix,
    ) -> None:
        self.config = config or GroupConfig()
        # Member ids are "<client_id or group_instance_id>-<suffix>" as in Kafka (a UUID there);
        # injectable so that tests and simulations are deterministic.
        self._member_id_suffix = member_id_suffix
        self._groups: dict[str, Group] = {}
        self._timers: list[tuple[int, str]] = []  # (deadline_ms, group_id), lazily invalidated
        self._next_retention_check_ms: int | None = None
        self._next_ticket = 0
        self._records: list[GroupRecord] = []
        self._completions: list[Completion] = []
        # KIP-848 groups share the group-id namespace; their committed offsets live in
        # `_groups` like every group's (an offsets-only Group with protocol_type None).
        self.consumer_groups = ConsumerGroups(
            self.config.consumer, max_groups=self.config.max_groups
        )

    # ------------------------------------------------------------------ inspection

    def group(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def groups(self) -> Iterator[Group]:
        return iter(self._groups.values())

    # ------------------------------------------------------------------ loading

    def replay(self, key: bytes | memoryview, value: bytes | memoryview | None) -> None:
        """Apply one `__consumer_offsets` record (value None: tombstone) while loading."""
        decoded = decode_key(key)
        if decoded is None:
            self.consumer_groups.replay(key, value)  # a KIP-848 record (key versions 3-8)
            return
        if isinstance(decoded, GroupMetadataKey):
            if value is None:
                self._groups.pop(decoded.group, None)
            else:
                self._load_group(decoded.group, decode_group_metadata_value(value))
            return
        tp = TopicPartition(decoded.topic, decoded.partition)
        if value is None:
            group = self._groups.get(decoded.group)
            if group is not None:
                self._apply_offset(group, tp, None)
            return
        v = decode_offset_commit_value(value)
        group = self._groups.get(decoded.group) or self._new_group(decoded.group)
        self._apply_offset(
            group,
            tp,
            CommittedOffset(
                v.offset, v.leader_epoch, v.metadata, v.commit_timestamp, v.expire_timestamp
            ),
        )

    def finish_loading(self, now_ms: int) -> None:
        """Start the loaded members' session timers and the retention check."""
        for group in self._groups.values():
            for member in group.members.values():
                member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
            self._schedule(group)
        self.consumer_groups.finish_loading(now_ms)
        self._next_retention_check_ms = now_ms + self.config.offsets_retention_check_interval_ms

    def _load_group(self, group_id: str, v: GroupMetadataValue) -> None:
        group = self._groups.get(group_id) or self._new_group(group_id)
        # Loading sets a snapshot, it does not transition: Kafka loads Stable when the record
        # has members, Empty otherwise.
        group.state = S.STABLE if v.members else S.EMPTY
        group.state_timestamp_ms = v.current_state_timestamp
        group.generation_id = v.generation
        group.protocol_type = v.protocol_type or None
        group.protocol_name = v.protocol
        group.leader_id = v.leader
        group.members = {}
        group.static_members = {}
        group.pending_members = {}
        group.pending_sync = set()
        group.rebalance_deadline_ms = None
        group.initial_delay_remaining_ms = None
        for m in v.members:
            protocols = [(v.protocol, m.subscription)] if v.protocol is not None else []
            group.members[m.member_id] = Member(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout_ms=m.rebalance_timeout,
                session_timeout_ms=m.session_timeout,
                protocols=protocols,
                assignment=m.assignment,
            )
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id

    # ------------------------------------------------------------------ timers

    def next_deadline_ms(self) -> int | None:
        """When `expire` must next run; None when nothing is scheduled."""
        candidates = [self._timers[0][0]] if self._timers else []
        consumer_deadline = self.consumer_groups.next_deadline_ms()
        if consumer_deadline is not None:
            candidates.append(consumer_deadline)
        if self._next_retention_check_ms is not None:
            candidates.append(self._next_retention_check_ms)
        return min(candidates, default=None)

    def expire(self, now_ms: int) -> Result[None]:
        """Fire every timeout due at `now_ms`."""
        self._begin(now_ms)
        fired: list[Group] = []
        while self._timers and self._timers[0][0] <= now_ms:
            deadline, group_id = heapq.heappop(self._timers)
            group = self._groups.get(group_id)
            if group is None or group.scheduled_ms != deadline:
                continue  # superseded by an earlier entry that already ran
            group.scheduled_ms = None
            self._fire(group, now_ms)
            fired.append(group)
        for group in fired:
            self._schedule(group)
        if self._next_retention_check_ms is not None and now_ms >= self._next_retention_check_ms:
            self._expire_offsets(now_ms)
            self._next_retention_check_ms = now_ms + self.config.offsets_retention_check_interval_ms
        self._records.extend(self.consumer_groups.expire(now_ms))
        return self._result(None)

    def _fire(self, group: Group, now_ms: int) -> None:
        removed = False
        for member in list(group.members.values()):
            deadline = member.heartbeat_deadline_ms
            if deadline is not None and deadline <= now_ms:
                self._remove_member(group, member, now_ms)
                removed = True
        for member_id, deadline in list(group.pending_members.items()):
            if deadline <= now_ms:
                del group.pending_members[member_id]
                removed = True
        if removed:
            self._after_members_removed(group, now_ms)
        deadline = group.rebalance_deadline_ms
        if deadline is not None and deadline <= now_ms:
            if group.state is S.PREPARING_REBALANCE:
                self._on_join_deadline(group, now_ms)
            elif group.state is S.COMPLETING_REBALANCE:
                self._on_sync_deadline(group, now_ms)
        self._maybe_drop(group)

    def _schedule(self, group: Group) -> None:
        if self._groups.get(group.group_id) is not group:
            return
        deadline = group.next_deadline_ms()
        if deadline is not None and (group.scheduled_ms is None or deadline < group.scheduled_ms):
            heapq.heappush(self._timers, (deadline, group.group_id))
            group.scheduled_ms = deadline

    # ------------------------------------------------------------------ call plumbing

    def _begin(self, now_ms: int) -> None:
        self._records = []
        self._completions = []
        if self._next_retention_check_ms is None:
            self._next_retention_check_ms = now_ms + self.config.offsets_retention_check_interval_ms

    def _result(
        self, response: R | None, waiter: Waiter | None = None, group: Group | None = None
    ) -> Result[R]:
        if group is not None:
            self._maybe_drop(group)
            self._schedule(group)
        result: Result[R] = Result(response, None, self._records, self._completions)
        if waiter is not None:
            # A request completed within the call that parked it is answered directly.
            for i, completion in enumerate(result.completions):
                if completion.ticket == waiter.ticket:
                    del result.completions[i]
                    result.response = completion.response  # type: ignore[assignment]
                    break
            else:
                result.ticket = waiter.ticket
        self._records = []
        self._completions = []
        return result

    def _park(self, api_version: int) -> Waiter:
        self._next_ticket += 1
        return Waiter(self._next_ticket, api_version)

    def _new_group(self, group_id: str) -> Group:
        group = Group(group_id)
        self._groups[group_id] = group
        return group

    def _maybe_drop(self, group: Group) -> None:
        """Forget a group that holds nothing and was never persisted."""
        if (
            group.state is S.EMPTY
            and group.generation_id == 0
            and group.protocol_type is None
            and not group.members
            and not group.pending_members
            and not group.offsets
            and self._groups.get(group.group_id) is group
        ):
            del self._groups[group.group_id]

    def _store_group(self, group: Group) -> None:
        protocol = group.protocol_name
        value = GroupMetadataValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=protocol,
            leader=group.leader_id,
            current_state_timestamp=group.state_timestamp_ms,
            members=[
                MemberMetadata(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout=m.rebalance_timeout_ms,
                    session_timeout=m.session_timeout_ms,
                    subscription=m.metadata_for(protocol) if protocol is not None else b"",
                    assignment=m.assignment,
                )
                for m in group.members.values()
            ],
        )
        self._records.append(
            GroupRecord(group_metadata_key(group.group_id), encode_group_metadata_value(value))
        )

    def _apply_offset(
        self, group: Group, tp: TopicPartition, committed: CommittedOffset | None
    ) -> None:
        """The one place committed offsets change (live commits, deletes, expiry and replay)."""
        if committed is None:
            group.offsets.pop(tp, None)
            self._maybe_drop(group)
        else:
            group.offsets[tp] = committed

    def _delete_group(self, group: Group, now_ms: int) -> None:
        for tp in list(group.offsets):
            self._records.append(GroupRecord(offset_commit_key(group.group_id, tp), None))
            self._apply_offset(group, tp, None)
        self._records.append(GroupRecord(group_metadata_key(group.group_id), None))
        group.transition_to(S.DEAD, now_ms)
        self._groups.pop(group.group_id, None)

    # ------------------------------------------------------------------ membership helpers

    def _touch(self, member: Member, now_ms: int) -> None:
        """A request from the member: restart its session timer unless it is parked."""
        if member.join_waiter is None and member.sync_waiter is None:
            member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms

    def _complete_join(self, member: Member, response: JoinGroupResponse, now_ms: int) -> None:
        waiter = member.join_waiter
        assert waiter is not None
        member.join_waiter = None
        member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
        self._completions.append(Completion(waiter.ticket, response))

    def _complete_sync(self, member: Member, response: SyncGroupResponse, now_ms: int) -> None:
        waiter = member.sync_waiter
        assert waiter is not None
        member.sync_waiter = None
        member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
        self._completions.append(Completion(waiter.ticket, response))

    def _remove_member(
        self, group: Group, member: Member, now_ms: int, error: ErrorCode = E.UNKNOWN_MEMBER_ID
    ) -> None:
        """Take a member out; its parked requests fail with `error`. No rebalance here."""
        del group.members[member.member_id]
        iid = member.group_instance_id
        if iid is not None and group.static_members.get(iid) == member.member_id:
            del group.static_members[iid]
        group.pending_sync.discard(member.member_id)
        if member.join_waiter is not None:
            self._complete_join(member, _join_error(error, member.member_id), now_ms)
        if member.sync_waiter is not None:
            self._complete_sync(member, SyncGroupResponse(error_code=error), now_ms)
        if group.leader_id == member.member_id:
            group.leader_id = next(iter(group.members), None)

    def _after_members_removed(self, group: Group, now_ms: int) -> None:
        if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, now_ms)
        self._maybe_complete_join(group, now_ms)

    def _prepare_rebalance(self, group: Group, now_ms: int) -> None:
        if group.state is S.COMPLETING_REBALANCE:
            # Members parked in SyncGroup must rejoin: Kafka's resetAndPropagateAssignmentError.
            for member in group.members.values():
                member.assignment = b""
                if member.sync_waiter is not None:
                    response = SyncGroupResponse(error_code=E.REBALANCE_IN_PROGRESS)
                    self._complete_sync(member, response, now_ms)
        delay = self.config.group_initial_rebalance_delay_ms
        if group.state is S.EMPTY and delay > 0:
            group.initial_delay_remaining_ms = max(group.rebalance_timeout_ms() - delay, 0)
            group.rebalance_deadline_ms = now_ms + delay
        else:
            group.initial_delay_remaining_ms = None
            group.rebalance_deadline_ms = now_ms + group.rebalance_timeout_ms()
        group.new_member_added = False
        group.pending_sync.clear()
        group.transition_to(S.PREPARING_REBALANCE, now_ms)

    def _maybe_complete_join(self, group: Group, now_ms: int) -> None:
        if (
            group.state is S.PREPARING_REBALANCE
            and group.initial_delay_remaining_ms is None
            and group.all_members_joined()
        ):
            self._complete_join_phase(group, now_ms)

    def _on_join_deadline(self, group: Group, now_ms: int) -> None:
        remaining = group.initial_delay_remaining_ms
        if remaining is not None and group.new_member_added and remaining > 0:
            # group.initial.rebalance.delay.ms: a member joined during the delay, so wait
            # another delay, within what is left of the rebalance timeout.
            delay = min(self.config.group_initial_rebalance_delay_ms, remaining)
            group.initial_delay_remaining_ms = remaining - delay
            group.new_member_added = False
            group.rebalance_deadline_ms = now_ms + delay
        else:
            self._complete_join_phase(group, now_ms)

    def _complete_join_phase(self, group: Group, now_ms: int) -> None:
        """End PreparingRebalance: Kafka's onCompleteJoin."""
        group.initial_delay_remaining_ms = None
        for member in list(group.members.values()):
            # Dynamic members that did not rejoin are out; static ones keep their place.
            if member.join_waiter is None and member.group_instance_id is None:
                self._remove_member(group, member, now_ms)
        if not group.members:
            group.generation_id += 1
            group.protocol_name = None
            group.leader_id = None
            group.rebalance_deadline_ms = None
            group.transition_to(S.EMPTY, now_ms)
            self._store_group(group)
            return
        joined = [m for m in group.members.values() if m.join_waiter is not None]
        if not joined:
            # Only static members that have not rejoined: wait for them or their session.
            group.rebalance_deadline_ms = now_ms + group.rebalance_timeout_ms()
            return
        leader = group.members.get(group.leader_id or "")
        if leader is None or leader.join_waiter is None:
            group.leader_id = joined[0].member_id
        group.generation_id += 1
        protocol = group.select_protocol()
        group.protocol_name = protocol
        group.transition_to(S.COMPLETING_REBALANCE, now_ms)
        group.pending_sync = set(group.members)
        group.rebalance_deadline_ms = now_ms + group.rebalance_timeout_ms()
        everyone = [
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                metadata=m.metadata_for(protocol),
            )
            for m in group.members.values()
        ]
        for member in group.members.values():
            member.assignment = b""
        for member in joined:
            is_leader = member.member_id == group.leader_id
            response = self._join_response(group, member.member_id, everyone if is_leader else [])
            self._complete_join(member, response, now_ms)

    def _on_sync_deadline(self, group: Group, now_ms: int) -> None:
        """Members that owed a SyncGroup by the rebalance timeout are removed (Kafka 3.1+)."""
        for member_id in list(group.pending_sync):
            self._remove_member(group, group.members[member_id], now_ms)
        self._prepare_rebalance(group, now_ms)
        self._maybe_complete_join(group, now_ms)

    @staticmethod
    def _join_response(
        group: Group,
        member_id: str,
        members: list[JoinGroupResponse.JoinGroupResponseMember],
        leader: str | None = None,
        skip_assignment: bool = False,
    ) -> JoinGroupResponse:
        return JoinGroupResponse(
            error_code=E.NONE,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=leader if leader is not None else group.leader_id or "",
            skip_assignment=skip_assignment,
            member_id=member_id,
            members=members,
        )

    def _validate_member(
        self, group: Group, member_id: str, group_instance_id: str | None
    ) -> ErrorCode | None:
        """Kafka's validateCurrentMember: fenced static instance, then unknown member."""
        if group_instance_id is not None:
            known = group.static_members.get(group_instance_id)
            if known is not None and known != member_id:
                return E.FENCED_INSTANCE_ID
        if member_id not in group.members:
            return E.UNKNOWN_MEMBER_ID
        return None

    # ------------------------------------------------------------------ JoinGroup

    def handle_join_group(
        self,
        request: JoinGroupRequest,
        api_version: int,
        client_id: str,
        client_host: str,
        now_ms: int,
    ) -> Result[JoinGroupResponse]:
        self._begin(now_ms)
        cfg = self.config
        if not request.group_id:
            return self._result(_join_error(E.INVALID_GROUP_ID, request.member_id))
        if request.group_id in self.consumer_groups:
            # No KIP-848 online migration: a classic member cannot join a consumer group.
            return self._result(_join_error(E.INCONSISTENT_GROUP_PROTOCOL, request.member_id))
        if not (
            cfg.group_min_session_timeout_ms
            <= request.session_timeout_ms
            <= cfg.group_max_session_timeout_ms
        ):
            return self._result(_join_error(E.INVALID_SESSION_TIMEOUT, request.member_id))
        protocols = [(p.name, p.metadata) for p in request.protocols]
        if len(protocols) > cfg.max_protocols_per_member or (
            sum(len(metadata) for _, metadata in protocols) > cfg.max_member_metadata_bytes
        ):
            return self._result(_join_error(E.INVALID_REQUEST, request.member_id))
        group = self._groups.get(request.group_id)
        if group is None:
            if request.member_id:
                return self._result(_join_error(E.UNKNOWN_MEMBER_ID, request.member_id))
            if len(self._groups) >= cfg.max_groups:
                return self._result(_join_error(E.COORDINATOR_NOT_AVAILABLE, ""))
            group = self._new_group(request.group_id)
        if not group.supports_protocols(request.protocol_type, [n for n, _ in protocols]):
            response = _join_error(E.INCONSISTENT_GROUP_PROTOCOL, request.member_id)
            return self._result(response, group=group)
        # Kafka v0: the rebalance timeout is the session timeout.
        rebalance_timeout_ms = (
            request.rebalance_timeout_ms if api_version >= 1 else request.session_timeout_ms
        )
        candidate = Member(
            member_id=request.member_id,
            group_instance_id=request.group_instance_id,
            client_id=client_id,
            client_host=client_host,
            rebalance_timeout_ms=rebalance_timeout_ms,
            session_timeout_ms=request.session_timeout_ms,
            protocols=protocols,
        )
        if request.member_id:
            return self._join_known(group, candidate, request.protocol_type, api_version, now_ms)
        return self._join_unknown(group, candidate, request.protocol_type, api_version, now_ms)

    def _join_unknown(
        self, group: Group, candidate: Member, protocol_type: str, api_version: int, now_ms: int
    ) -> Result[JoinGroupResponse]:
        iid = candidate.group_instance_id
        prefix = iid if iid is not None else candidate.client_id
        candidate.member_id = f"{prefix}-{self._member_id_suffix()}"
        if iid is not None and iid in group.static_members:
            return self._replace_static_member(
                group, group.static_members[iid], candidate, api_version, now_ms
            )
        if group.is_full(self.config.group_max_size):
            return self._result(_join_error(E.GROUP_MAX_SIZE_REACHED, ""), group=group)
        if iid is None and api_version >= 4:
            # KIP-394: hand out the member id and wait for the member to join with it.
            group.pending_members[candidate.member_id] = now_ms + candidate.session_timeout_ms
            response = _join_error(E.MEMBER_ID_REQUIRED, candidate.member_id)
            return self._result(response, group=group)
        return self._add_member_and_rebalance(group, candidate, protocol_type, api_version, now_ms)

    def _join_known(
        self, group: Group, candidate: Member, protocol_type: str, api_version: int, now_ms: int
    ) -> Result[JoinGroupResponse]:
        member_id = candidate.member_id
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            return self._add_member_and_rebalance(
                group, candidate, protocol_type, api_version, now_ms
            )
        error = self._validate_member(group, member_id, candidate.group_instance_id)
        if error is None and group.state in (S.EMPTY, S.DEAD):
            error = E.UNKNOWN_MEMBER_ID
        if error is not None:
            return self._result(_join_error(error, member_id), group=group)
        member = group.members[member_id]
        unchanged = member.protocols == candidate.protocols
        if group.state is S.COMPLETING_REBALANCE and unchanged:
            # A repeated JoinGroup (lost response): answer with the current generation.
            return self._result(self._current_join(group, member, now_ms), group=group)
        if group.state is S.STABLE and unchanged and member_id != group.leader_id:
            return self._result(self._current_join(group, member, now_ms), group=group)
        if member.join_waiter is not None:
            # The member joined again while parked; only the newest request is answered.
            self._complete_join(member, _join_error(E.REBALANCE_IN_PROGRESS, member_id), now_ms)
        member.protocols = candidate.protocols
        member.session_timeout_ms = candidate.session_timeout_ms
        member.rebalance_timeout_ms = candidate.rebalance_timeout_ms
        member.client_id = candidate.client_id
        member.client_host = candidate.client_host
        waiter = self._park(api_version)
        member.join_waiter = waiter
        member.heartbeat_deadline_ms = None
        if group.state is not S.PREPARING_REBALANCE:
            self._prepare_rebalance(group, now_ms)
        self._maybe_complete_join(group, now_ms)
        return self._result(None, waiter, group)

    def _current_join(self, group: Group, member: Member, now_ms: int) -> JoinGroupResponse:
        self._touch(member, now_ms)
        members = []
        if member.member_id == group.leader_id and group.protocol_name is not None:
            protocol = group.protocol_name
            members = [
                JoinGroupResponse.JoinGroupResponseMember(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    metadata=m.metadata_for(protocol),
                )
                for m in group.members.values()
            ]
        return self._join_response(group, member.member_id, members)

    def _add_member_and_rebalance(
        self, group: Group, member: Member, protocol_type: str, api_version: int, now_ms: int
    ) -> Result[JoinGroupResponse]:
        waiter = self._park(api_version)
        member.join_waiter = waiter
        group.members[member.member_id] = member
        if member.group_instance_id is not None:
            group.static_members[member.group_instance_id] = member.member_id
        if group.leader_id is None:
            group.leader_id = member.member_id
        group.protocol_type = protocol_type
        if group.state is S.PREPARING_REBALANCE:
            group.new_member_added = True
        else:
            self._prepare_rebalance(group, now_ms)
        self._maybe_complete_join(group, now_ms)
        return self._result(None, waiter, group)

    def _replace_static_member(
        self, group: Group, old_id: str, new: Member, api_version: int, now_ms: int
    ) -> Result[JoinGroupResponse]:
        """KIP-345: a restarted static member takes over its instance's place."""
        old = group.members[old_id]
        unchanged = old.protocols == new.protocols
        old_leader = group.leader_id
        if old.join_waiter is not None:
            self._complete_join(old, _join_error(E.FENCED_INSTANCE_ID, old_id), now_ms)
        if old.sync_waiter is not None:
            self._complete_sync(old, SyncGroupResponse(error_code=E.FENCED_INSTANCE_ID), now_ms)
        new.assignment = old.assignment
        group.members = {
            (new.member_id if mid == old_id else mid): (new if mid == old_id else m)
            for mid, m in group.members.items()
        }
        assert new.group_instance_id is not None
        group.static_members[new.group_instance_id] = new.member_id
        if group.leader_id == old_id:
            group.leader_id = new.member_id
        if old_id in group.pending_sync:
            group.pending_sync.discard(old_id)
            group.pending_sync.add(new.member_id)
        if group.state is S.STABLE and unchanged:
            # No rebalance: persist the new member id and answer with the current generation.
            new.heartbeat_deadline_ms = now_ms + new.session_timeout_ms
            self._store_group(group)
            if new.member_id == group.leader_id and api_version >= 9:
                # KIP-814: the leader learns it leads but must not compute a new assignment.
                response = self._current_join(group, new, now_ms)
                response.skip_assignment = True
            else:
                # An older leader sees the old leader id, so it syncs as a follower.
                response = self._join_response(group, new.member_id, [], leader=old_leader)
            return self._result(response, group=group)
        waiter = self._park(api_version)
        new.join_waiter = waiter
        if group.state is not S.PREPARING_REBALANCE:
            self._prepare_rebalance(group, now_ms)
        self._maybe_complete_join(group, now_ms)
        return self._result(None, waiter, group)

    # ------------------------------------------------------------------ SyncGroup

    def handle_sync_group(
        self, request: SyncGroupRequest, api_version: int, now_ms: int
    ) -> Result[SyncGroupResponse]:
        self._begin(now_ms)
        group = self._groups.get(request.group_id)
        if group is None:
            return self._result(SyncGroupResponse(error_code=E.UNKNOWN_MEMBER_ID))
        error = self._validate_member(group, request.member_id, request.group_instance_id)
        if error is None and request.generation_id != group.generation_id:
            error = E.ILLEGAL_GENERATION
        if error is None and (
            (request.protocol_type is not None and request.protocol_type != group.protocol_type)
            or (request.protocol_name is not None and request.protocol_name != group.protocol_name)
        ):
            error = E.INCONSISTENT_GROUP_PROTOCOL
        if error is None and group.state is S.EMPTY:
            error = E.UNKNOWN_MEMBER_ID
        if error is None and group.state is S.PREPARING_REBALANCE:
            error = E.REBALANCE_IN_PROGRESS
        if error is not None:
            return self._result(SyncGroupResponse(error_code=error), group=group)
        member = group.members[request.member_id]
        if group.state is S.STABLE:
            self._touch(member, now_ms)
            return self._result(self._sync_response(group, member.assignment), group=group)
        # CompletingRebalance
        if member.member_id == group.leader_id:
            limit = self.config.max_member_metadata_bytes
            if any(len(a.assignment) > limit for a in request.assignments):
                return self._result(SyncGroupResponse(error_code=E.INVALID_REQUEST), group=group)
        if member.sync_waiter is not None:
            retry = SyncGroupResponse(error_code=E.REBALANCE_IN_PROGRESS)
            self._complete_sync(member, retry, now_ms)
        waiter = self._park(api_version)
        member.sync_waiter = waiter
        member.heartbeat_deadline_ms = None
        group.pending_sync.discard(member.member_id)
        if member.member_id == group.leader_id:
            assignments = {a.member_id: a.assignment for a in request.assignments}
            for m in group.members.values():
                m.assignment = assignments.get(m.member_id, b"")
            group.transition_to(S.STABLE, now_ms)
            group.rebalance_deadline_ms = None
            group.pending_sync.clear()
            self._store_group(group)
            for m in group.members.values():
                if m.sync_waiter is not None:
                    self._complete_sync(m, self._sync_response(group, m.assignment), now_ms)
        return self._result(None, waiter, group)

    @staticmethod
    def _sync_response(group: Group, assignment: bytes) -> SyncGroupResponse:
        return SyncGroupResponse(
            error_code=E.NONE,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            assignment=assignment,
        )

    # ------------------------------------------------------------------ Heartbeat

    def handle_heartbeat(
        self, request: HeartbeatRequest, api_version: int, now_ms: int
    ) -> Result[HeartbeatResponse]:
        self._begin(now_ms)
        group = self._groups.get(request.group_id)
        if group is None or group.state is S.EMPTY:
            return self._result(HeartbeatResponse(error_code=E.UNKNOWN_MEMBER_ID))
        error = self._validate_member(group, request.member_id, request.group_instance_id)
        if error is None and request.generation_id != group.generation_id:
            error = E.ILLEGAL_GENERATION
        if error is None:
            self._touch(group.members[request.member_id], now_ms)
            if group.state is S.PREPARING_REBALANCE:
                error = E.REBALANCE_IN_PROGRESS  # tells the member to rejoin
        return self._result(HeartbeatResponse(error_code=error or E.NONE), group=group)

    # ------------------------------------------------------------------ LeaveGroup

    def handle_leave_group(
        self, request: LeaveGroupRequest, api_version: int, now_ms: int
    ) -> Result[LeaveGroupResponse]:
        self._begin(now_ms)
        if api_version >= 3:
            leaving = [(m.member_id, m.group_instance_id) for m in request.members]
        else:
            leaving = [(request.member_id, None)]
        group = self._groups.get(request.group_id)
        if group is None:
            return self._result(LeaveGroupResponse(error_code=E.UNKNOWN_MEMBER_ID))
        results: list[LeaveGroupResponse.MemberResponse] = []
        removed = False
        for member_id, iid in leaving:
            error = E.NONE
            if iid is not None:
                known = group.static_members.get(iid)
                if known is None:
                    error = E.UNKNOWN_MEMBER_ID
                elif member_id and member_id != known:
                    error = E.FENCED_INSTANCE_ID
                else:
                    self._remove_member(group, group.members[known], now_ms)
                    removed = True
            elif member_id in group.pending_members:
                del group.pending_members[member_id]
                removed = True
            elif member_id in group.members:
                self._remove_member(group, group.members[member_id], now_ms)
                removed = True
            else:
                error = E.UNKNOWN_MEMBER_ID
            results.append(
                LeaveGroupResponse.MemberResponse(
                    member_id=member_id, group_instance_id=iid, error_code=error
                )
            )
        if removed:
            self._after_members_removed(group, now_ms)
        if api_version >= 3:
            response = LeaveGroupResponse(error_code=E.NONE, members=results)
        else:
            response = LeaveGroupResponse(error_code=results[0].error_code)
        return self._result(response, group=group)

    # ------------------------------------------------------------------ offsets

    def handle_offset_commit(
        self, request: OffsetCommitRequest, api_version: int, now_ms: int
    ) -> Result[OffsetCommitResponse]:
        self._begin(now_ms)
        generation = request.generation_id_or_member_epoch
        group = self._groups.get(request.group_id)
        error: ErrorCode | None = None
        consumer = self.consumer_groups.get(request.group_id)
        if consumer is not None:
            error = self.consumer_groups.validate_offset_commit(
                consumer, request.member_id, generation, api_version
            )
            if error is None and group is None:
                group = self._new_group(request.group_id)  # holds the consumer group's offsets
        elif group is None:
            if generation >= 0:
                error = E.ILLEGAL_GENERATION
            elif len(self._groups) >= self.config.max_groups:
                error = E.COORDINATOR_NOT_AVAILABLE
            else:
                group = self._new_group(request.group_id)
        else:
            error = self._validate_commit(group, request, now_ms)
        topics: list[OffsetCommitResponse.OffsetCommitResponseTopic] = []
        for topic in request.topics:
            partitions = []
            for p in topic.partitions:
                code = error
                if code is None:
                    assert group is not None
                    code = self._commit_one(group, request, api_version, topic.name, p, now_ms)
                partitions.append(
                    OffsetCommitResponse.OffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                )
            topics.append(OffsetCommitResponse.OffsetCommitResponseTopic(topic.name, partitions))
        return self._result(OffsetCommitResponse(topics=topics), group=group)

    def _validate_commit(
        self, group: Group, request: OffsetCommitRequest, now_ms: int
    ) -> ErrorCode | None:
        """Kafka's doCommitOffsets checks, in its order."""
        iid = request.group_instance_id
        member_id = request.member_id
        if iid is not None and group.static_members.get(iid, member_id) != member_id:
            return E.FENCED_INSTANCE_ID
        if request.generation_id_or_member_epoch < 0 and not group.members:
            return None  # a simple consumer or admin commit to a group with no members
        if group.state is S.COMPLETING_REBALANCE:
            return E.REBALANCE_IN_PROGRESS
        member = group.members.get(member_id)
        if member is None:
            return E.UNKNOWN_MEMBER_ID
        if request.generation_id_or_member_epoch != group.generation_id:
            return E.ILLEGAL_GENERATION
        self._touch(member, now_ms)
        return None

    def _commit_one(
        self,
        group: Group,
        request: OffsetCommitRequest,
        api_version: int,
        topic: str,
        p: OffsetCommitRequest.OffsetCommitRequestPartition,
        now_ms: int,
    ) -> ErrorCode:
        metadata = p.committed_metadata or ""
        if len(metadata) > self.config.offset_metadata_max_bytes:
            return E.OFFSET_METADATA_TOO_LARGE
        # v1 carries a commit timestamp per partition, v2-v4 a retention time (-1: defaults).
        commit_timestamp = p.commit_timestamp if p.commit_timestamp != -1 else now_ms
        retention = request.retention_time_ms if 2 <= api_version <= 4 else -1
        expire_timestamp = now_ms + retention if retention != -1 else -1
        value = OffsetCommitValue(
            offset=p.committed_offset,
            leader_epoch=p.committed_leader_epoch,
            metadata=metadata,
            commit_timestamp=commit_timestamp,
            expire_timestamp=expire_timestamp,
        )
        tp = TopicPartition(topic, p.partition_index)
        self._records.append(
            GroupRecord(offset_commit_key(group.group_id, tp), encode_offset_commit_value(value))
        )
        self._apply_offset(
            group,
            tp,
            CommittedOffset(
                value.offset, value.leader_epoch, metadata, commit_timestamp, expire_timestamp
            ),
        )
        return E.NONE

    def handle_offset_fetch(
        self, request: OffsetFetchRequest, api_version: int, now_ms: int
    ) -> Result[OffsetFetchResponse]:
        """Committed offsets; require_stable needs no wait: no transactional offsets yet."""
        self._begin(now_ms)
        R_ = OffsetFetchResponse
        if api_version >= 8:
            groups = []
            for g in request.groups:
                wanted = (
                    None
                    if g.topics is None
                    else [(t.name, t.partition_indexes) for t in g.topics]
                )
                code = self.consumer_groups.validate_offset_fetch(
                    g.group_id, g.member_id, g.member_epoch
                )
                if code is not None:
                    groups.append(R_.OffsetFetchResponseGroup(group_id=g.group_id, error_code=code))
                    continue
                fetched = self._fetch_offsets(g.group_id, wanted)
                groups.append(
                    R_.OffsetFetchResponseGroup(
                        group_id=g.group_id,
                        topics=[
                            R_.OffsetFetchResponseTopics(
                                name=name,
                                partitions=[
                                    R_.OffsetFetchResponsePartitions(
                                        partition_index=index,
                                        committed_offset=c.offset if c else -1,
                                        committed_leader_epoch=c.leader_epoch if c else -1,
                                        metadata=c.metadata if c else "",
                                    )
                                    for index, c in parts
                                ],
                            )
                            for name, parts in fetched
                        ],
                    )
                )
            return self._result(R_(groups=groups))
        wanted = (
            None
            if request.topics is None
            else [(t.name, t.partition_indexes) for t in request.topics]
        )
        topics = [
            R_.OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    R_.OffsetFetchResponsePartition(
                        partition_index=index,
                        committed_offset=c.offset if c else -1,
                        committed_leader_epoch=c.leader_epoch if c else -1,
                        metadata=c.metadata if c else "",
                    )
                    for index, c in parts
                ],
            )
            for name, parts in self._fetch_offsets(request.group_id, wanted)
        ]
        return self._result(R_(topics=topics))

    def _fetch_offsets(
        self, group_id: str, wanted: list[tuple[str, list[int]]] | None
    ) -> list[tuple[str, list[tuple[int, CommittedOffset | None]]]]:
        """(topic, [(partition, committed or None)]); wanted None: every committed offset."""
        group = self._groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        if wanted is None:
            by_topic: dict[str, list[tuple[int, CommittedOffset | None]]] = {}
            for tp, committed in offsets.items():
                by_topic.setdefault(tp.topic, []).append((tp.partition, committed))
            return list(by_topic.items())
        return [
            (name, [(i, offsets.get(TopicPartition(name, i))) for i in indexes])
            for name, indexes in wanted
        ]

    def handle_offset_delete(
        self, request: OffsetDeleteRequest, api_version: int, now_ms: int
    ) -> Result[OffsetDeleteResponse]:
        self._begin(now_ms)
        if not request.group_id:
            return self._result(OffsetDeleteResponse(error_code=E.INVALID_GROUP_ID))
        group = self._groups.get(request.group_id)
        if group is None:
            return self._result(OffsetDeleteResponse(error_code=E.GROUP_ID_NOT_FOUND))
        subscribed: set[str] | None = set()
        if group.state is not S.EMPTY:
            if group.protocol_type != CONSUMER_PROTOCOL_TYPE:
                return self._result(OffsetDeleteResponse(error_code=E.NON_EMPTY_GROUP), group=group)
            subscribed = group.subscribed_topics()
        R_ = OffsetDeleteResponse
        topics = []
        for topic in request.topics:
            is_subscribed = subscribed is None or topic.name in subscribed
            partitions = []
            for p in topic.partitions:
                if is_subscribed:
                    code = E.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    code = E.NONE
                    tp = TopicPartition(topic.name, p.partition_index)
                    if tp in group.offsets:
                        self._records.append(
                            GroupRecord(offset_commit_key(group.group_id, tp), None)
                        )
                        self._apply_offset(group, tp, None)
                partitions.append(R_.OffsetDeleteResponsePartition(p.partition_index, code))
            topics.append(R_.OffsetDeleteResponseTopic(name=topic.name, partitions=partitions))
        return self._result(R_(error_code=E.NONE, topics=topics), group=group)

    def _expire_offsets(self, now_ms: int) -> None:
        """offsets.retention.minutes, by Kafka's rules (KIP-211).

        Empty group that had members: offsets expire `retention` after the group became Empty.
        Simple-consumer group: each offset `retention` after its commit. Stable consumer group:
        only offsets of topics no member subscribes to, `retention` after their commit. An
        explicit expire timestamp (OffsetCommit v1-v4) wins. An Empty group left without
        offsets is deleted.
        """
        retention = self.config.offsets_retention_ms
        for group in list(self._groups.values()):
            consumer = self.consumer_groups.get(group.group_id)
            if consumer is not None and consumer.members:
                continue  # a KIP-848 group with members keeps its offsets
            if group.state is S.EMPTY and group.protocol_type is not None:
                subscribed: set[str] = set()
                base_from_state = True
            elif group.protocol_type is None:
                subscribed, base_from_state = set(), False
            elif group.state is S.STABLE and group.protocol_type == CONSUMER_PROTOCOL_TYPE:
                topics = group.subscribed_topics()
                if topics is None:
                    continue
                subscribed, base_from_state = topics, False
            else:
                continue
            for tp, c in list(group.offsets.items()):
                if tp.topic in subscribed:
                    continue
                if c.expire_timestamp_ms != -1:
                    expired = now_ms >= c.expire_timestamp_ms
                else:
                    base = group.state_timestamp_ms if base_from_state else c.commit_timestamp_ms
                    expired = now_ms - base >= retention
                if expired:
                    self._records.append(GroupRecord(offset_commit_key(group.group_id, tp), None))
                    self._apply_offset(group, tp, None)
            if (
                self._groups.get(group.group_id) is group
                and group.state is S.EMPTY
                and not group.offsets
                and not group.pending_members
            ):
                self._delete_group(group, now_ms)

    # ------------------------------------------------------------------ admin APIs

    def handle_describe_groups(
        self, request: DescribeGroupsRequest, api_version: int, now_ms: int
    ) -> Result[DescribeGroupsResponse]:
        self._begin(now_ms)
        operations = (
            GROUP_OPERATIONS
            if api_version >= 3 and request.include_authorized_operations
            else OPERATIONS_NOT_REQUESTED
        )
        D = DescribeGroupsResponse
        described = []
        for group_id in request.groups:
            group = self._groups.get(group_id)
            if group is None:
                described.append(
                    D.DescribedGroup(
                        error_code=E.NONE,
                        group_id=group_id,
                        group_state=S.DEAD.value,
                        authorized_operations=operations,
                    )
                )
                continue
            stable = group.state is S.STABLE and group.protocol_name is not None
            members = [
                D.DescribedGroupMember(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    member_metadata=(
                        m.metadata_for(group.protocol_name)
                        if stable and group.protocol_name is not None
                        else b""
                    ),
                    member_assignment=m.assignment if stable else b"",
                )
                for m in group.members.values()
            ]
            described.append(
                D.DescribedGroup(
                    error_code=E.NONE,
                    group_id=group_id,
                    group_state=group.state.value,
                    protocol_type=group.protocol_type or "",
                    protocol_data=(group.protocol_name or "") if stable else "",
                    members=members,
                    authorized_operations=operations,
                )
            )
        return self._result(D(groups=described))

    def handle_list_groups(
        self, request: ListGroupsRequest, api_version: int, now_ms: int
    ) -> Result[ListGroupsResponse]:
        self._begin(now_ms)
        states: set[GroupState | None] | None = None
        if api_version >= 4 and request.states_filter:
            states = {parse_state(name) for name in request.states_filter}
        types_ok = not (api_version >= 5 and request.types_filter) or any(
            t.lower() == CLASSIC_GROUP_TYPE for t in request.types_filter
        )
        listed = [
            ListGroupsResponse.ListedGroup(
                group_id=g.group_id,
                protocol_type=g.protocol_type or "",
                group_state=g.state.value,
                group_type=CLASSIC_GROUP_TYPE,
            )
            for g in self._groups.values()
            if types_ok
            and (states is None or g.state in states)
            and g.group_id not in self.consumer_groups  # offsets holder of a KIP-848 group
        ]
        wanted_states = (
            {n.lower() for n in request.states_filter}
            if api_version >= 4 and request.states_filter else None
        )
        consumer_ok = not (api_version >= 5 and request.types_filter) or any(
            t.lower() == CONSUMER_GROUP_TYPE for t in request.types_filter
        )
        listed += [
            ListGroupsResponse.ListedGroup(
                group_id=cg.group_id,
                protocol_type=CONSUMER_PROTOCOL_TYPE,
                group_state=cg.state.value,
                group_type=CONSUMER_GROUP_TYPE,
            )
            for cg in self.consumer_groups.groups()
            if consumer_ok and (wanted_states is None or cg.state.value.lower() in wanted_states)
        ]
        return self._result(ListGroupsResponse(error_code=E.NONE, groups=listed))

    def handle_delete_groups(
        self, request: DeleteGroupsRequest, api_version: int, now_ms: int
    ) -> Result[DeleteGroupsResponse]:
        self._begin(now_ms)
        results = []
        for group_id in request.groups_names:
            group = self._groups.get(group_id)
            consumer = self.consumer_groups.get(group_id)
            if consumer is not None:
                if consumer.members:
                    code = E.NON_EMPTY_GROUP
                else:
                    if group is not None:
                        self._delete_group(group, now_ms)
                    self._records.extend(self.consumer_groups.delete(consumer))
                    code = E.NONE
            elif group is None:
                code = E.GROUP_ID_NOT_FOUND
            elif group.state is not S.EMPTY:
                code = E.NON_EMPTY_GROUP
            else:
                self._delete_group(group, now_ms)
                code = E.NONE
            results.append(DeleteGroupsResponse.DeletableGroupResult(group_id, code))
        return self._result(DeleteGroupsResponse(results=results))

    # ------------------------------------------------------------------ KIP-848

    def handle_consumer_group_heartbeat(
        self,
        request: ConsumerGroupHeartbeatRequest,
        api_version: int,
        client_id: str,
        client_host: str,
        topics: Mapping[str, TopicMetadata],
        now_ms: int,
    ) -> Result[ConsumerGroupHeartbeatResponse]:
        """KIP-848 heartbeat; `topics` is the broker's topic metadata snapshot by name."""
        self._begin(now_ms)
        group_id = request.group_id
        classic = self._groups.get(group_id)
        if classic is not None and classic.protocol_type is not None and (
            group_id not in self.consumer_groups
        ):
            if classic.members or classic.pending_members or classic.state is not S.EMPTY:
                return self._result(ConsumerGroupHeartbeatResponse(
                    error_code=E.GROUP_ID_NOT_FOUND,
                    error_message=f"Group {group_id} is not a consumer group.",
                ))
            # An empty classic group becomes a consumer group keeping its offsets: persist it
            # as an offsets-only group (what a replay of an empty protocol type loads).
            classic.protocol_type = None
            classic.protocol_name = None
            classic.leader_id = None
            classic.generation_id = 0
            self._store_group(classic)
        response, records = self.consumer_groups.heartbeat(
            request, api_version, client_id, client_host, topics, now_ms
        )
        self._records.extend(records)
        return self._result(response, group=classic)

    def handle_consumer_group_describe(
        self, request: ConsumerGroupDescribeRequest, api_version: int, now_ms: int
    ) -> Result[ConsumerGroupDescribeResponse]:
        self._begin(now_ms)
        operations = (
            GROUP_OPERATIONS if request.include_authorized_operations
            else OPERATIONS_NOT_REQUESTED
        )

        def is_classic(group_id: str) -> bool:
            group = self._groups.get(group_id)
            return group is not None and group.protocol_type is not None

        return self._result(self.consumer_groups.describe(request, operations, is_classic))


def _join_error(error: ErrorCode, member_id: str) -> JoinGroupResponse:
    return JoinGroupResponse(
        error_code=error, generation_id=-1, protocol_name="", leader="", member_id=member_id
    )
