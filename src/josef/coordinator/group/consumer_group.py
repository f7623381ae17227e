"""KIP-848 consumer groups: member epochs, server-side target assignment and reconciliation.

`ConsumerGroups` holds the KIP-848 groups of one `__consumer_offsets` shard. The classic
`GroupCoordinator` owns it, routes ConsumerGroupHeartbeat / ConsumerGroupDescribe and the
KIP-848 records (key versions 3-8) to it, and keeps the committed offsets of every group id
(classic or not) itself. Like the classic coordinator it is deterministic: no clock, no I/O.

Records are the truth. Every change is written as a record in Kafka's format (Kafka's
GroupCoordinatorRecordHelpers) into the caller's list AND applied through `_apply`, the same
function `replay` uses, so a group rebuilt from `__consumer_offsets` equals the live one:
- ConsumerGroupMemberMetadata (key v5): a member's subscription, written when it changes;
- ConsumerGroupPartitionMetadata (v4): the subscribed topics' ids and partition counts;
- ConsumerGroupMetadata (v3): the group epoch, bumped on membership/subscription/metadata change;
- ConsumerGroupTargetAssignmentMember (v7) + ...TargetAssignmentMetadata (v6): the assignor's
  result for the group epoch (the assignment epoch);
- ConsumerGroupCurrentMemberAssignment (v8): a member's epoch, state, the partitions it may
  own and those it must revoke.
A member leaving writes tombstones (current assignment, target, metadata) and bumps the epoch;
deleting a group tombstones target metadata, partition metadata and group metadata.

Reconciliation (Kafka's CurrentAssignmentBuilder): a member moves towards its target
assignment one step per heartbeat. It first keeps only current ∩ target and revokes the rest
(UNREVOKED_PARTITIONS, epoch unchanged); once its heartbeat shows it no longer owns the revoked
partitions it reaches the assignment epoch and receives the target partitions that no other
member still owns (assigned or pending revocation); the others stay unreleased
(UNRELEASED_PARTITIONS) until their owner lets go. So no partition is ever owned by two
members: `_owners` maps each owned partition to exactly one member.

Deviations from Kafka: the subscribed-topic metadata is refreshed on every heartbeat (Kafka:
every group.consumer.metadata.refresh interval); regular expressions use Python `re` full
matches (Kafka: RE2J); rack-aware assignment is not done (racks are recorded, not used);
classic-protocol members cannot join a consumer group (no online migration, KIP-848's
group.consumer.migration.policy=disabled).
"""

from __future__ import annotations

import enum
import heapq
import re
import struct
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from josef.coordinator.group.assignors import ASSIGNORS, Assignment, MemberSpec
from josef.coordinator.group.records import GroupRecord
from josef.protocol._generated.consumer_group_describe import (
    Assignment as DescribedAssignment,
)
from josef.protocol._generated.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)
from josef.protocol._generated.consumer_group_describe import (
    TopicPartitions as DescribedTopicPartitions,
)
from josef.protocol._generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
    TopicPartitions,
)
from josef.protocol._generated.internal.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from josef.protocol._generated.internal.consumer_group_current_member_assignment_value import (
    ConsumerGroupCurrentMemberAssignmentValue,
)
from josef.protocol._generated.internal.consumer_group_current_member_assignment_value import (
    TopicPartitions as RecordTopicPartitions,
)
from josef.protocol._generated.internal.consumer_group_member_metadata_key import (
    ConsumerGroupMemberMetadataKey,
)
from josef.protocol._generated.internal.consumer_group_member_metadata_value import (
    ConsumerGroupMemberMetadataValue,
)
from josef.protocol._generated.internal.consumer_group_metadata_key import (
    ConsumerGroupMetadataKey,
)
from josef.protocol._generated.internal.consumer_group_metadata_value import (
    ConsumerGroupMetadataValue,
)
from josef.protocol._generated.internal.consumer_group_partition_metadata_key import (
    ConsumerGroupPartitionMetadataKey,
)
from josef.protocol._generated.internal.consumer_group_partition_metadata_value import (
    ConsumerGroupPartitionMetadataValue,
)
from josef.protocol._generated.internal.consumer_group_target_assignment_member_key import (
    ConsumerGroupTargetAssignmentMemberKey,
)
from josef.protocol._generated.internal.consumer_group_target_assignment_member_value import (
    ConsumerGroupTargetAssignmentMemberValue,
)
from josef.protocol._generated.internal.consumer_group_target_assignment_metadata_key import (
    ConsumerGroupTargetAssignmentMetadataKey,
)
from josef.protocol._generated.internal.consumer_group_target_assignment_metadata_value import (
    ConsumerGroupTargetAssignmentMetadataValue,
)
from josef.protocol.errors import ErrorCode
from josef.protocol.exceptions import ProtocolError

E = ErrorCode

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2
CONSUMER_GROUP_TYPE = "consumer"  # ListGroups v5 group_type, and the groups' protocol type

_VERSION = struct.Struct(">h")
# Key versions (Kafka's CoordinatorRecordType ids) and the one value version of each record.
METADATA_KEY, PARTITION_METADATA_KEY, MEMBER_METADATA_KEY = 3, 4, 5
TARGET_METADATA_KEY, TARGET_MEMBER_KEY, CURRENT_ASSIGNMENT_KEY = 6, 7, 8
VALUE_VERSION = 0


@dataclass(frozen=True, slots=True)
class ConsumerGroupConfig:
    """KIP-848 settings; Kafka's broker config name and default on each line."""

    session_timeout_ms: int = 45_000  # group.consumer.session.timeout.ms
    heartbeat_interval_ms: int = 5_000  # group.consumer.heartbeat.interval.ms
    max_size: int = 2**31 - 1  # group.consumer.max.size (Int.MaxValue: unbounded)
    assignors: tuple[str, ...] = ("uniform", "range")  # group.consumer.assignors; first: default
    # Josef's own bounds (Kafka bounds these only by the request size):
    max_subscribed_topics: int = 10_000  # topic names in one subscription
    max_regex_chars: int = 1_000  # a subscription regular expression


class TopicMetadata(NamedTuple):
    """What the assignor needs of a topic; the broker hands a snapshot of these in."""

    topic_id: uuid.UUID
    name: str
    num_partitions: int


class GroupState(enum.Enum):
    """Kafka's ConsumerGroupState; the value is the name ListGroups/Describe show."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


# The group state is derived from epochs and members after every change (Kafka's
# maybeUpdateGroupState); any live state may follow any other, Dead is final.
_LIVE = frozenset({GroupState.EMPTY, GroupState.ASSIGNING, GroupState.RECONCILING,
                   GroupState.STABLE})
GROUP_TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    **{s: _LIVE | {GroupState.DEAD} for s in _LIVE},
    GroupState.DEAD: frozenset(),
}


class MemberState(enum.IntEnum):
    """Kafka's MemberState; the value is the int8 stored in CurrentMemberAssignment."""

    STABLE = 1
    UNREVOKED_PARTITIONS = 2
    UNRELEASED_PARTITIONS = 3
    UNKNOWN = 127


M = MemberState
MEMBER_TRANSITIONS: dict[MemberState, frozenset[MemberState]] = {
    M.STABLE: frozenset({M.STABLE, M.UNREVOKED_PARTITIONS, M.UNRELEASED_PARTITIONS}),
    M.UNREVOKED_PARTITIONS: frozenset({M.UNREVOKED_PARTITIONS, M.STABLE,
                                       M.UNRELEASED_PARTITIONS}),
    M.UNRELEASED_PARTITIONS: frozenset({M.UNRELEASED_PARTITIONS, M.STABLE,
                                        M.UNREVOKED_PARTITIONS}),
    M.UNKNOWN: frozenset({M.UNKNOWN}),
}


# Member fields persisted in ConsumerGroupMemberMetadata, and those that change the assignment.
_METADATA = ("instance_id", "rack_id", "client_id", "client_host", "subscribed_topic_names",
             "subscribed_topic_regex", "rebalance_timeout_ms", "server_assignor")
_SUBSCRIPTION = ("subscribed_topic_names", "subscribed_topic_regex", "server_assignor")


class ConsumerHeartbeatError(Exception):
    """A heartbeat outcome other than success; becomes the response's error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    # In memory only, as in Kafka: the session and revocation (rebalance) timers.
    session_deadline_ms: int | None = None
    revocation_deadline_ms: int | None = None


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    state: GroupState = GroupState.EMPTY
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    subscription_metadata: dict[str, TopicMetadata] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    # (topic id, partition) -> the member owning it (assigned or pending revocation).
    owners: dict[tuple[uuid.UUID, int], str] = field(default_factory=dict)

    def transition_to(self, state: GroupState) -> None:
        if state is not self.state and state not in GROUP_TRANSITIONS[self.state]:
            raise AssertionError(f"consumer group state {self.state.value} -> {state.value}")
        self.state = state

    def refresh_state(self) -> None:
        if not self.members:
            state = GroupState.EMPTY
        elif self.group_epoch > self.assignment_epoch:
            state = GroupState.ASSIGNING
        elif any(
            m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE
            for m in self.members.values()
        ):
            state = GroupState.RECONCILING
        else:
            state = GroupState.STABLE
        self.transition_to(state)

    def preferred_assignor(self, default: str) -> str:
        """The assignor most members ask for (Kafka's computePreferredServerAssignor)."""
        votes = Counter(m.server_assignor for m in self.members.values() if m.server_assignor)
        if not votes:
            return default
        best = max(votes.values())
        return min(name for name, n in votes.items() if n == best)


# ---------------------------------------------------------------------- record codecs


def _versioned(version: int, body: bytes) -> bytes:
    return _VERSION.pack(version) + body


def _key(version: int, struct_: Any) -> bytes:
    return _versioned(version, struct_.encode(version))


def _value(struct_: Any) -> bytes:
    return _versioned(VALUE_VERSION, struct_.encode(VALUE_VERSION))


_KEY_TYPES: dict[int, Any] = {
    METADATA_KEY: ConsumerGroupMetadataKey,
    PARTITION_METADATA_KEY: ConsumerGroupPartitionMetadataKey,
    MEMBER_METADATA_KEY: ConsumerGroupMemberMetadataKey,
    TARGET_METADATA_KEY: ConsumerGroupTargetAssignmentMetadataKey,
    TARGET_MEMBER_KEY: ConsumerGroupTargetAssignmentMemberKey,
    CURRENT_ASSIGNMENT_KEY: ConsumerGroupCurrentMemberAssignmentKey,
}
_VALUE_TYPES: dict[int, Any] = {
    METADATA_KEY: ConsumerGroupMetadataValue,
    PARTITION_METADATA_KEY: ConsumerGroupPartitionMetadataValue,
    MEMBER_METADATA_KEY: ConsumerGroupMemberMetadataValue,
    TARGET_METADATA_KEY: ConsumerGroupTargetAssignmentMetadataValue,
    TARGET_MEMBER_KEY: ConsumerGroupTargetAssignmentMemberValue,
    CURRENT_ASSIGNMENT_KEY: ConsumerGroupCurrentMemberAssignmentValue,
}


def _split(buf: bytes | memoryview, what: str) -> tuple[int, memoryview]:
    view = memoryview(buf)
    if len(view) < 2:
        raise ProtocolError(f"{what} of {len(view)} bytes has no version")
    (version,) = _VERSION.unpack_from(view, 0)
    return version, view[2:]


def _to_record_tps(assignment: Assignment) -> list[RecordTopicPartitions]:
    return [
        RecordTopicPartitions(topic_id=t, partitions=sorted(ps))
        for t, ps in sorted(assignment.items())
    ]


def _from_tps(tps: list[Any]) -> Assignment:
    raw: dict[uuid.UUID, set[int]] = {}
    for tp in tps:
        raw.setdefault(tp.topic_id, set()).update(tp.partitions)
    return {t: frozenset(ps) for t, ps in raw.items() if ps}


def _minus(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
           ) -> Assignment:
    out = {t: ps - b.get(t, frozenset()) for t, ps in a.items()}
    return {t: ps for t, ps in out.items() if ps}


def _intersect(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
               ) -> Assignment:
    out = {t: ps & b.get(t, frozenset()) for t, ps in a.items()}
    return {t: ps for t, ps in out.items() if ps}


def _overlaps(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
              ) -> bool:
    return any(ps & b.get(t, frozenset()) for t, ps in a.items())


def _subset(a: Mapping[uuid.UUID, frozenset[int]], b: Mapping[uuid.UUID, frozenset[int]]
            ) -> bool:
    return all(ps <= b.get(t, frozenset()) for t, ps in a.items())


# ---------------------------------------------------------------------- the groups


class ConsumerGroups:
    """The KIP-848 groups of one `__consumer_offsets` shard; see the module docstring."""

    def __init__(
        self,
        config: ConsumerGroupConfig | None = None,
        new_member_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        max_groups: int = 100_000,
    ) -> None:
        self.config = config or ConsumerGroupConfig()
        self._new_member_id = new_member_id  # injectable so that simulations are deterministic
        self._max_groups = max_groups
        self._groups: dict[str, ConsumerGroup] = {}
        self._timers: list[tuple[int, str, str]] = []  # (deadline, group, member), lazy
        self._records: list[GroupRecord] = []

    # ---- inspection --------------------------------------------------------------------
    def get(self, group_id: str) -> ConsumerGroup | None:
        return self._groups.get(group_id)

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._groups

    def groups(self) -> list[ConsumerGroup]:
        return list(self._groups.values())

    # ---- records: write and apply through one path --------------------------------------
    def _write(self, key_version: int, key: Any, value: Any | None) -> None:
        key_bytes = _key(key_version, key)
        self._records.append(GroupRecord(key_bytes, None if value is None else _value(value)))
        self._apply(key_version, key, value)

    def replay(self, key: bytes | memoryview, value: bytes | memoryview | None) -> None:
        """Apply one KIP-848 record (key version 3-8) while loading."""
        version, body = _split(key, "key")
        key_type = _KEY_TYPES.get(version)
        if key_type is None:
            raise ProtocolError(f"unknown __consumer_offsets key version {version}")
        decoded_value = None
        if value is not None:
            value_version, value_body = _split(value, "value")
            decoded_value = _VALUE_TYPES[version].decode(value_body, value_version)
        self._apply(version, key_type.decode(body, version), decoded_value)

    def _apply(self, version: int, key: Any, value: Any | None) -> None:
        group = self._groups.get(key.group_id)
        if group is None:
            if value is None:
                return
            group = self._groups[key.group_id] = ConsumerGroup(key.group_id)
        if version == METADATA_KEY:
            if value is None:
                self._groups.pop(key.group_id, None)
                group.transition_to(GroupState.DEAD)
                return
            group.group_epoch = value.epoch
        elif version == PARTITION_METADATA_KEY:
            group.subscription_metadata = {} if value is None else {
                t.topic_name: TopicMetadata(t.topic_id, t.topic_name, t.num_partitions)
                for t in value.topics
            }
        elif version == MEMBER_METADATA_KEY:
            self._apply_member_metadata(group, key.member_id, value)
        elif version == TARGET_METADATA_KEY:
            group.assignment_epoch = 0 if value is None else value.assignment_epoch
        elif version == TARGET_MEMBER_KEY:
            if value is None:
                group.target.pop(key.member_id, None)
            else:
                group.target[key.member_id] = _from_tps(value.topic_partitions)
        else:
            self._apply_current_assignment(group, key.member_id, value)
        group.refresh_state()

    def _apply_member_metadata(self, group: ConsumerGroup, member_id: str, v: Any) -> None:
        member = group.members.get(member_id)
        if v is None:
            if member is not None:
                assert not member.assigned and not member.pending_revocation, member_id
                del group.members[member_id]
                if member.instance_id is not None:
                    group.static_members.pop(member.instance_id, None)
            return
        if member is None:
            member = group.members[member_id] = ConsumerMember(member_id)
        member.instance_id = v.instance_id
        member.rack_id = v.rack_id
        member.client_id = v.client_id
        member.client_host = v.client_host
        member.subscribed_topic_names = tuple(v.subscribed_topic_names)
        member.subscribed_topic_regex = v.subscribed_topic_regex
        member.rebalance_timeout_ms = v.rebalance_timeout_ms
        member.server_assignor = v.server_assignor
        if v.instance_id is not None:
            group.static_members[v.instance_id] = member_id

    def _apply_current_assignment(self, group: ConsumerGroup, member_id: str, v: Any) -> None:
        member = group.members.get(member_id)
        if member is None:
            if v is None:
                return
            member = group.members[member_id] = ConsumerMember(member_id)
        for tp in self._owned(member):
            if group.owners.get(tp) == member_id:
                del group.owners[tp]
        if v is None:
            member.member_epoch = member.previous_member_epoch = 0
            member.state = MemberState.STABLE
            member.assigned, member.pending_revocation = {}, {}
            return
        state = MemberState(v.state) if v.state in MemberState._value2member_map_ else M.UNKNOWN
        if state not in MEMBER_TRANSITIONS[member.state]:
            raise AssertionError(f"member state {member.state.name} -> {state.name}")
        member.member_epoch = v.member_epoch
        member.previous_member_epoch = v.previous_member_epoch
        member.state = state
        member.assigned = _from_tps(v.assigned_partitions)
        member.pending_revocation = _from_tps(v.partitions_pending_revocation)
        for tp in self._owned(member):
            group.owners[tp] = member_id  # exclusive: checked before writing (_set_current)

    @staticmethod
    def _owned(member: ConsumerMember) -> list[tuple[uuid.UUID, int]]:
        return [
            (t, p)
            for a in (member.assigned, member.pending_revocation)
            for t, ps in a.items()
            for p in ps
        ]

    # ---- record writers -------------------------------------------------------------------
    def _write_member_metadata(self, group: ConsumerGroup, m: ConsumerMember) -> None:
        self._write(
            MEMBER_METADATA_KEY,
            ConsumerGroupMemberMetadataKey(group_id=group.group_id, member_id=m.member_id),
            ConsumerGroupMemberMetadataValue(
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=list(m.subscribed_topic_names),
                subscribed_topic_regex=m.subscribed_topic_regex,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                server_assignor=m.server_assignor,
            ),
        )

    def _write_current(
        self,
        group: ConsumerGroup,
        member_id: str,
        epoch: int,
        previous_epoch: int,
        state: MemberState,
        assigned: Assignment,
        pending: Assignment,
    ) -> None:
        self._write(
            CURRENT_ASSIGNMENT_KEY,
            ConsumerGroupCurrentMemberAssignmentKey(group_id=group.group_id, member_id=member_id),
            ConsumerGroupCurrentMemberAssignmentValue(
                member_epoch=epoch,
                previous_member_epoch=previous_epoch,
                state=int(state),
                assigned_partitions=_to_record_tps(assigned),
                partitions_pending_revocation=_to_record_tps(pending),
            ),
        )

    def _write_group_epoch(self, group: ConsumerGroup, epoch: int) -> None:
        self._write(
            METADATA_KEY,
            ConsumerGroupMetadataKey(group_id=group.group_id),
            ConsumerGroupMetadataValue(epoch=epoch),
        )

    def _write_partition_metadata(
        self, group: ConsumerGroup, metadata: dict[str, TopicMetadata]
    ) -> None:
        V = ConsumerGroupPartitionMetadataValue
        self._write(
            PARTITION_METADATA_KEY,
            ConsumerGroupPartitionMetadataKey(group_id=group.group_id),
            V(topics=[
                V.TopicMetadata(topic_id=t.topic_id, topic_name=t.name,
                                num_partitions=t.num_partitions)
                for _, t in sorted(metadata.items())
            ]),
        )

    def _write_target(self, group: ConsumerGroup, member_id: str, a: Assignment | None) -> None:
        V = ConsumerGroupTargetAssignmentMemberValue
        self._write(
            TARGET_MEMBER_KEY,
            ConsumerGroupTargetAssignmentMemberKey(group_id=group.group_id, member_id=member_id),
            None if a is None else V(topic_partitions=[
                V.TopicPartition(topic_id=t, partitions=sorted(ps)) for t, ps in sorted(a.items())
            ]),
        )

    # ---- membership changes ---------------------------------------------------------------
    def _subscription_metadata(
        self, group: ConsumerGroup, topics: Mapping[str, TopicMetadata]
    ) -> dict[str, TopicMetadata]:
        names: set[str] = set()
        patterns: set[str] = set()
        for m in group.members.values():
            names.update(m.subscribed_topic_names)
            if m.subscribed_topic_regex:
                patterns.add(m.subscribed_topic_regex)
        if patterns:
            compiled = [re.compile(p) for p in sorted(patterns)]
            names.update(t for t in topics if any(c.fullmatch(t) for c in compiled))
        return {n: topics[n] for n in sorted(names) if n in topics}

    def _bump_group_epoch(
        self, group: ConsumerGroup, topics: Mapping[str, TopicMetadata] | None
    ) -> None:
        if topics is not None:
            metadata = self._subscription_metadata(group, topics)
            if metadata != group.subscription_metadata:
                self._write_partition_metadata(group, metadata)
        self._write_group_epoch(group, group.group_epoch + 1)

    def _remove_member(
        self, group: ConsumerGroup, member: ConsumerMember,
        topics: Mapping[str, TopicMetadata] | None,
    ) -> None:
        """Kafka's fenceMember / leave: tombstones, then a new group epoch."""
        gid, mid = group.group_id, member.member_id
        self._write(
            CURRENT_ASSIGNMENT_KEY,
            ConsumerGroupCurrentMemberAssignmentKey(group_id=gid, member_id=mid), None,
        )
        self._write_target(group, mid, None)
        self._write(
            MEMBER_METADATA_KEY, ConsumerGroupMemberMetadataKey(group_id=gid, member_id=mid), None
        )
        member.session_deadline_ms = member.revocation_deadline_ms = None
        self._bump_group_epoch(group, topics)

    def delete(self, group: ConsumerGroup) -> list[GroupRecord]:
        """Tombstones for an empty group's remaining records (DeleteGroups, expiry)."""
        assert not group.members, group.group_id
        self._records = []
        gid = group.group_id
        self._write(TARGET_METADATA_KEY, ConsumerGroupTargetAssignmentMetadataKey(group_id=gid),
                    None)
        self._write(PARTITION_METADATA_KEY, ConsumerGroupPartitionMetadataKey(group_id=gid),
                    None)
        self._write(METADATA_KEY, ConsumerGroupMetadataKey(group_id=gid), None)
        return self._take_records()

    def _take_records(self) -> list[GroupRecord]:
        records, self._records = self._records, []
        return records

    # ---- target assignment and reconciliation ---------------------------------------------
    def _update_target(self, group: ConsumerGroup) -> None:
        """Run the assignor for the group epoch; write the members' changed targets."""
        by_name = group.subscription_metadata
        regexes = {
            p: re.compile(p) for p in
            {m.subscribed_topic_regex for m in group.members.values() if m.subscribed_topic_regex}
        }
        specs: dict[str, MemberSpec] = {}
        for m in group.members.values():
            ids = {by_name[n].topic_id for n in m.subscribed_topic_names if n in by_name}
            if m.subscribed_topic_regex:
                pattern = regexes[m.subscribed_topic_regex]
                ids.update(t.topic_id for n, t in by_name.items() if pattern.fullmatch(n))
            specs[m.member_id] = MemberSpec(frozenset(ids), group.target.get(m.member_id, {}))
        partitions = {t.topic_id: t.num_partitions for t in by_name.values()}
        assignor = ASSIGNORS[group.preferred_assignor(self.config.assignors[0])]
        new_target = assignor.assign(specs, partitions)
        for member_id in sorted(new_target):
            if group.target.get(member_id) != new_target[member_id] or (
                member_id not in group.target
            ):
                self._write_target(group, member_id, new_target[member_id])
        self._write(
            TARGET_METADATA_KEY,
            ConsumerGroupTargetAssignmentMetadataKey(group_id=group.group_id),
            ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=group.group_epoch),
        )

    def _reconcile(
        self, group: ConsumerGroup, member: ConsumerMember, owned: Assignment | None
    ) -> None:
        """Kafka's CurrentAssignmentBuilder: one step towards the target; writes on change."""
        target_epoch = group.assignment_epoch
        if member.state is M.STABLE and member.member_epoch == target_epoch:
            return
        if member.state is M.UNREVOKED_PARTITIONS and (
            owned is None or _overlaps(member.pending_revocation, owned)
        ):
            return  # it still owns a partition to revoke (or did not say): keep waiting
        epoch = member.member_epoch
        target = group.target.get(member.member_id, {})
        kept = _intersect(member.assigned, target)
        revoked = _minus(member.assigned, target)
        if revoked and (owned is None or _overlaps(revoked, owned)):
            self._set_current(group, member, epoch, M.UNREVOKED_PARTITIONS, kept, revoked)
            return
        # Target partitions no other member still holds can be handed out now.
        new: dict[uuid.UUID, set[int]] = {t: set(ps) for t, ps in kept.items()}
        unreleased = False
        for t, ps in target.items():
            for p in ps:
                holder = group.owners.get((t, p))
                if holder is None or holder == member.member_id:
                    new.setdefault(t, set()).add(p)
                else:
                    unreleased = True
        assigned = {t: frozenset(ps) for t, ps in new.items() if ps}
        state = M.UNRELEASED_PARTITIONS if unreleased else M.STABLE
        self._set_current(group, member, target_epoch, state, assigned, {})

    def _set_current(
        self, group: ConsumerGroup, member: ConsumerMember, epoch: int, state: MemberState,
        assigned: Assignment, pending: Assignment,
    ) -> None:
        if (epoch, state, assigned, pending) == (
            member.member_epoch, member.state, member.assigned, member.pending_revocation
        ):
            return
        for t, ps in (*assigned.items(), *pending.items()):
            for p in ps:
                holder = group.owners.get((t, p))
                assert holder in (None, member.member_id), f"{t}-{p} owned by {holder}"
        # Kafka's updateMemberEpoch: the previous epoch is the one being replaced.
        self._write_current(group, member.member_id, epoch, member.member_epoch, state,
                            assigned, pending)

    # ---- ConsumerGroupHeartbeat -------------------------------------------------------------
    def heartbeat(
        self,
        request: ConsumerGroupHeartbeatRequest,
        api_version: int,
        client_id: str,
        client_host: str,
        topics: Mapping[str, TopicMetadata],
        now_ms: int,
    ) -> tuple[ConsumerGroupHeartbeatResponse, list[GroupRecord]]:
        """Kafka's consumerGroupHeartbeat; the records to append come back with the answer."""
        self._records = []
        try:
            response = self._heartbeat(request, api_version, client_id, client_host, topics,
                                       now_ms)
        except ConsumerHeartbeatError as err:
            response = ConsumerGroupHeartbeatResponse(
                error_code=err.code, error_message=err.message
            )
        group = self._groups.get(request.group_id)
        member = group.members.get(response.member_id or "") if group is not None else None
        if member is not None:
            self._schedule(group.group_id, member)  # only its own timers moved
        return response, self._take_records()

    def _validate(self, r: ConsumerGroupHeartbeatRequest) -> None:
        def invalid(message: str) -> ConsumerHeartbeatError:
            return ConsumerHeartbeatError(E.INVALID_REQUEST, message)

        cfg = self.config
        if not r.group_id:
            raise invalid("GroupId can't be empty.")
        if r.member_epoch > 0 or r.member_epoch in (-1, -2):
            if not r.member_id:
                raise invalid("MemberId can't be empty.")
        elif r.member_epoch == 0:
            if r.rebalance_timeout_ms == -1:
                raise invalid("RebalanceTimeoutMs must be provided in first request.")
            if r.topic_partitions:
                raise invalid("TopicPartitions must be empty when (re-)joining.")
            if r.subscribed_topic_names is None and r.subscribed_topic_regex is None:
                raise invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in "
                              "first request.")
        else:
            raise invalid(f"MemberEpoch is invalid: {r.member_epoch}.")
        if r.member_epoch == -2 and r.instance_id is None:
            raise invalid("InstanceId can't be null for a static leave.")
        if r.subscribed_topic_names is not None and (
            len(r.subscribed_topic_names) > cfg.max_subscribed_topics
        ):
            raise invalid("Too many subscribed topics.")
        if r.subscribed_topic_regex is not None:
            if len(r.subscribed_topic_regex) > cfg.max_regex_chars:
                raise invalid("SubscribedTopicRegex is too long.")
            try:
                re.compile(r.subscribed_topic_regex)
            except re.error as err:
                raise ConsumerHeartbeatError(
                    E.INVALID_REGULAR_EXPRESSION, f"SubscribedTopicRegex is invalid: {err}"
                ) from None
        if r.server_assignor is not None and r.server_assignor not in cfg.assignors:
            raise ConsumerHeartbeatError(
                E.UNSUPPORTED_ASSIGNOR, f"ServerAssignor {r.server_assignor} is not supported. "
                f"Supported assignors: {', '.join(cfg.assignors)}."
            )

    def _heartbeat(
        self,
        r: ConsumerGroupHeartbeatRequest,
        api_version: int,
        client_id: str,
        client_host: str,
        topics: Mapping[str, TopicMetadata],
        now_ms: int,
    ) -> ConsumerGroupHeartbeatResponse:
        self._validate(r)
        group = self._groups.get(r.group_id)
        if group is None:
            if r.member_epoch != 0:
                raise ConsumerHeartbeatError(
                    E.GROUP_ID_NOT_FOUND, f"Consumer group {r.group_id} not found."
                )
            if len(self._groups) >= self._max_groups:
                raise ConsumerHeartbeatError(E.COORDINATOR_NOT_AVAILABLE, "Too many groups.")
            group = self._groups[r.group_id] = ConsumerGroup(r.group_id)
        if r.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
            return self._leave(group, r, topics)
        member = self._member_for(group, r, now_ms)
        assigned_before = member.assigned
        member, bump = self._update_subscription(group, member, r, client_id, client_host)
        if bump or self._subscription_metadata(group, topics) != group.subscription_metadata:
            self._bump_group_epoch(group, topics)
        if group.group_epoch > group.assignment_epoch:
            self._update_target(group)
        owned = None if r.topic_partitions is None else _from_tps(r.topic_partitions)
        was_unrevoked = member.state is M.UNREVOKED_PARTITIONS
        self._reconcile(group, member, owned)
        member.session_deadline_ms = now_ms + self.config.session_timeout_ms
        if member.state is M.UNREVOKED_PARTITIONS:
            if not was_unrevoked or member.revocation_deadline_ms is None:
                member.revocation_deadline_ms = now_ms + max(member.rebalance_timeout_ms, 0)
        else:
            member.revocation_deadline_ms = None
        response = ConsumerGroupHeartbeatResponse(
            error_code=E.NONE,
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
        )
        if r.member_epoch == 0 or owned is not None or assigned_before != member.assigned:
            response.assignment = ConsumerGroupHeartbeatResponse.Assignment(
                topic_partitions=[
                    TopicPartitions(topic_id=t, partitions=sorted(ps))
                    for t, ps in sorted(member.assigned.items())
                ]
            )
        return response

    def _member_for(
        self, group: ConsumerGroup, r: ConsumerGroupHeartbeatRequest, now_ms: int
    ) -> ConsumerMember:
        """The member the heartbeat is from, creating it on join; epoch checks (fencing)."""
        if r.member_epoch == 0:
            # Kafka 4.0 (KIP-1082): the client generates its member id; older clients send "".
            member_id = r.member_id or self._new_member_id()
            member = group.members.get(member_id)
            if member is not None:
                return member  # a rejoin with the same id keeps its place and assignment
            if r.instance_id is not None and r.instance_id in group.static_members:
                return self._replace_static(group, group.static_members[r.instance_id],
                                            member_id, r)
            if len(group.members) >= self.config.max_size:
                raise ConsumerHeartbeatError(
                    E.GROUP_MAX_SIZE_REACHED,
                    f"The consumer group has reached its maximum capacity of "
                    f"{self.config.max_size} members.",
                )
            return ConsumerMember(member_id, instance_id=r.instance_id)
        member = group.members.get(r.member_id)
        if member is None:
            raise ConsumerHeartbeatError(
                E.UNKNOWN_MEMBER_ID, f"Member {r.member_id} is not a member of the group."
            )
        if r.member_epoch > member.member_epoch:
            raise ConsumerHeartbeatError(
                E.FENCED_MEMBER_EPOCH,
                f"The consumer group member has a greater member epoch ({r.member_epoch}) "
                f"than the one known by the group coordinator ({member.member_epoch}).",
            )
        if r.member_epoch < member.member_epoch:
            # A lost response: the member may retry with the previous epoch as long as it
            # owns nothing beyond what it is assigned now.
            owned = None if r.topic_partitions is None else _from_tps(r.topic_partitions)
            if r.member_epoch != member.previous_member_epoch or (
                owned is not None and not _subset(owned, member.assigned)
            ):
                raise ConsumerHeartbeatError(
                    E.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a smaller member epoch ({r.member_epoch}) "
                    f"than the one known by the group coordinator ({member.member_epoch}).",
                )
        return member

    def _replace_static(
        self, group: ConsumerGroup, old_id: str, new_id: str, r: ConsumerGroupHeartbeatRequest
    ) -> ConsumerMember:
        """KIP-848 static membership: a restarted instance takes over its old assignment."""
        old = group.members[old_id]
        if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise ConsumerHeartbeatError(
                E.UNRELEASED_INSTANCE_ID,
                f"Static member {old_id} with instance id {r.instance_id} is not released yet.",
            )
        target = group.target.get(old_id, {})
        assigned = old.assigned
        gid = group.group_id
        self._write(CURRENT_ASSIGNMENT_KEY,
                    ConsumerGroupCurrentMemberAssignmentKey(group_id=gid, member_id=old_id), None)
        self._write_target(group, old_id, None)
        self._write(MEMBER_METADATA_KEY,
                    ConsumerGroupMemberMetadataKey(group_id=gid, member_id=old_id), None)
        new = ConsumerMember(
            new_id, instance_id=old.instance_id, rack_id=old.rack_id,
            subscribed_topic_names=old.subscribed_topic_names,
            subscribed_topic_regex=old.subscribed_topic_regex,
            rebalance_timeout_ms=old.rebalance_timeout_ms, server_assignor=old.server_assignor,
        )
        self._write_member_metadata(group, new)
        self._write_target(group, new_id, target)
        # Epoch 0: the next reconciliation hands over what is still in the target.
        self._write_current(group, new_id, 0, 0, M.STABLE, assigned, {})
        return group.members[new_id]

    def _update_subscription(
        self, group: ConsumerGroup, member: ConsumerMember, r: ConsumerGroupHeartbeatRequest,
        client_id: str, client_host: str,
    ) -> tuple[ConsumerMember, bool]:
        """Write what the heartbeat changed; the group's member and whether to bump the epoch."""
        is_new = member.member_id not in group.members
        updated = ConsumerMember(
            member.member_id,
            instance_id=r.instance_id if r.instance_id is not None else member.instance_id,
            rack_id=r.rack_id if r.rack_id is not None else member.rack_id,
            client_id=client_id,
            client_host=client_host,
            subscribed_topic_names=(
                tuple(sorted(set(r.subscribed_topic_names)))
                if r.subscribed_topic_names is not None else member.subscribed_topic_names
            ),
            subscribed_topic_regex=(
                (r.subscribed_topic_regex or None)
                if r.subscribed_topic_regex is not None else member.subscribed_topic_regex
            ),
            rebalance_timeout_ms=(
                r.rebalance_timeout_ms if r.rebalance_timeout_ms != -1
                else member.rebalance_timeout_ms
            ),
            server_assignor=(
                r.server_assignor if r.server_assignor is not None else member.server_assignor
            ),
        )
        if not is_new and all(getattr(updated, f) == getattr(member, f) for f in _METADATA):
            return member, False
        bump = is_new or any(getattr(updated, f) != getattr(member, f) for f in _SUBSCRIPTION)
        self._write_member_metadata(group, updated)
        return group.members[member.member_id], bump

    def _leave(
        self, group: ConsumerGroup, r: ConsumerGroupHeartbeatRequest,
        topics: Mapping[str, TopicMetadata],
    ) -> ConsumerGroupHeartbeatResponse:
        member = group.members.get(r.member_id)
        if member is None and r.instance_id is not None:
            known = group.static_members.get(r.instance_id)
            member = group.members.get(known) if known is not None else None
            if member is not None and member.member_id != r.member_id:
                raise ConsumerHeartbeatError(
                    E.FENCED_INSTANCE_ID,
                    f"Static member {r.member_id} with instance id {r.instance_id} was fenced.",
                )
        if member is None:
            raise ConsumerHeartbeatError(
                E.UNKNOWN_MEMBER_ID, f"Member {r.member_id} is not a member of the group."
            )
        if r.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            # The instance will come back: keep its assignment until its session expires.
            self._write_current(group, member.member_id, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
                                member.member_epoch, member.state, member.assigned,
                                member.pending_revocation)
        else:
            self._remove_member(group, member, topics)
        return ConsumerGroupHeartbeatResponse(
            error_code=E.NONE, member_id=r.member_id, member_epoch=r.member_epoch
        )

    # ---- timers ---------------------------------------------------------------------------
    def _schedule(self, group_id: str, member: ConsumerMember) -> None:
        for deadline in (member.session_deadline_ms, member.revocation_deadline_ms):
            if deadline is not None:
                heapq.heappush(self._timers, (deadline, group_id, member.member_id))

    def next_deadline_ms(self) -> int | None:
        while self._timers:
            deadline, gid, mid = self._timers[0]
            group = self._groups.get(gid)
            member = group.members.get(mid) if group is not None else None
            if member is not None and deadline in (
                member.session_deadline_ms, member.revocation_deadline_ms
            ):
                return deadline
            heapq.heappop(self._timers)  # superseded
        return None

    def expire(self, now_ms: int) -> list[GroupRecord]:
        """Fence members whose session or revocation (rebalance) timeout passed."""
        self._records = []
        while (deadline := self.next_deadline_ms()) is not None and deadline <= now_ms:
            _, gid, mid = heapq.heappop(self._timers)
            group = self._groups[gid]
            # The topic snapshot is not at hand here: the partition metadata is refreshed by
            # the next heartbeat of a remaining member.
            self._remove_member(group, group.members[mid], None)
        return self._take_records()

    def finish_loading(self, now_ms: int) -> None:
        """Start the loaded members' session (and pending revocation) timers."""
        for group in self._groups.values():
            for m in group.members.values():
                m.session_deadline_ms = now_ms + self.config.session_timeout_ms
                if m.state is M.UNREVOKED_PARTITIONS:
                    m.revocation_deadline_ms = now_ms + max(m.rebalance_timeout_ms, 0)
                self._schedule(group.group_id, m)

    # ---- offsets (Kafka's ConsumerGroup.validateOffsetCommit / validateOffsetFetch) -------
    def validate_offset_commit(
        self, group: ConsumerGroup, member_id: str, member_epoch: int, api_version: int
    ) -> ErrorCode | None:
        if member_epoch < 0 and not group.members:
            return None  # an admin or manual commit to an empty group
        member = group.members.get(member_id)
        if member is None:
            return E.UNKNOWN_MEMBER_ID
        if api_version < 9:
            return E.UNSUPPORTED_VERSION  # a KIP-848 member commits with OffsetCommit v9+
        if member_epoch != member.member_epoch:
            return E.STALE_MEMBER_EPOCH
        return None

    def validate_offset_fetch(
        self, group_id: str, member_id: str | None, member_epoch: int
    ) -> ErrorCode | None:
        group = self._groups.get(group_id)
        if group is None or (member_id is None and member_epoch < 0):
            return None
        member = group.members.get(member_id or "")
        if member is None:
            return E.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return E.STALE_MEMBER_EPOCH
        return None

    # ---- ConsumerGroupDescribe ------------------------------------------------------------
    def describe(
        self,
        request: ConsumerGroupDescribeRequest,
        operations: int,
        is_classic: Callable[[str], bool],
    ) -> ConsumerGroupDescribeResponse:
        D = ConsumerGroupDescribeResponse
        described = []
        for gid in request.group_ids:
            group = self._groups.get(gid)
            if group is None:
                message = (f"Group {gid} is not a consumer group." if is_classic(gid)
                           else f"Group {gid} not found.")
                described.append(D.DescribedGroup(
                    error_code=E.GROUP_ID_NOT_FOUND, error_message=message, group_id=gid,
                    group_state=GroupState.DEAD.value, authorized_operations=operations,
                ))
                continue
            names = {t.topic_id: t.name for t in group.subscription_metadata.values()}

            def described_assignment(a: Assignment, names: dict[uuid.UUID, str] = names
                                     ) -> DescribedAssignment:
                return DescribedAssignment(topic_partitions=[
                    DescribedTopicPartitions(topic_id=t, topic_name=names.get(t, ""),
                                             partitions=sorted(ps))
                    for t, ps in sorted(a.items())
                ])

            described.append(D.DescribedGroup(
                error_code=E.NONE,
                group_id=gid,
                group_state=group.state.value,
                group_epoch=group.group_epoch,
                assignment_epoch=group.assignment_epoch,
                assignor_name=group.preferred_assignor(self.config.assignors[0]),
                members=[
                    D.Member(
                        member_id=m.member_id,
                        instance_id=m.instance_id,
                        rack_id=m.rack_id,
                        member_epoch=m.member_epoch,
                        client_id=m.client_id,
                        client_host=m.client_host,
                        subscribed_topic_names=list(m.subscribed_topic_names),
                        subscribed_topic_regex=m.subscribed_topic_regex,
                        assignment=described_assignment(m.assigned),
                        target_assignment=described_assignment(group.target.get(m.member_id, {})),
                    )
                    for m in group.members.values()
                ],
                authorized_operations=operations,
            ))
        return D(groups=described)
