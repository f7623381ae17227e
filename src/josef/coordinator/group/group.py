"""The in-memory model of one classic group: its members, generation and committed offsets.

A `Group` holds both what `__consumer_offsets` persists (generation, protocol type and name,
leader, members with their subscription and assignment, committed offsets) and what lives only
in memory while a rebalance runs (parked JoinGroup/SyncGroup requests, heartbeat deadlines,
members that still owe a SyncGroup, KIP-394 pending member ids). The coordinator drives it;
state changes go through `transition_to`, which enforces the transition table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from josef.coordinator.group.state import GroupState, check_transition
from josef.protocol._generated.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)
from josef.protocol.exceptions import ProtocolError
from josef.storage.api import TopicPartition

CONSUMER_PROTOCOL_TYPE = "consumer"  # Kafka's ConsumerProtocol.PROTOCOL_TYPE

_VERSION = struct.Struct(">h")


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """One committed offset, as OffsetCommitValue stores it (-1 = not set)."""

    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Waiter:
    """A parked JoinGroup or SyncGroup: the broker's ticket and the request's API version."""

    ticket: int
    api_version: int


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocols: list[tuple[str, bytes]]  # (name, metadata) in the member's preference order
    assignment: bytes = b""
    join_waiter: Waiter | None = None
    sync_waiter: Waiter | None = None
    # None while parked in JoinGroup/SyncGroup: Kafka keeps such members alive and bounds the
    # wait with the rebalance timeout instead.
    heartbeat_deadline_ms: int | None = None

    def metadata_for(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise AssertionError(f"member {self.member_id} does not support protocol {protocol}")

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]


@dataclass(slots=True)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    state_timestamp_ms: int = -1  # Kafka's currentStateTimestamp: when `state` was entered
    generation_id: int = 0
    protocol_type: str | None = None  # None: never joined by a member (simple consumer offsets)
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)  # in join order
    static_members: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member_id
    pending_members: dict[str, int] = field(default_factory=dict)  # KIP-394 id -> deadline
    pending_sync: set[str] = field(default_factory=set)  # members owing a SyncGroup
    offsets: dict[TopicPartition, CommittedOffset] = field(default_factory=dict)
    # PreparingRebalance: when the join phase ends; CompletingRebalance: when SyncGroup is due.
    rebalance_deadline_ms: int | None = None
    # group.initial.rebalance.delay.ms: what is left of the rebalance timeout to extend into
    # (None outside an initial delayed join) and whether a member joined during the delay.
    initial_delay_remaining_ms: int | None = None
    new_member_added: bool = False
    scheduled_ms: int | None = None  # the coordinator's timer entry for this group

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        check_transition(self.state, target)
        self.state = target
        self.state_timestamp_ms = now_ms

    def is_full(self, max_size: int) -> bool:
        return len(self.members) + len(self.pending_members) >= max_size

    def rebalance_timeout_ms(self) -> int:
        """Kafka: the largest rebalance timeout of the current members."""
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def candidate_protocols(self) -> list[str]:
        """Protocols every member supports, in the leader's (else first member's) order."""
        if not self.members:
            return []
        first = self.members.get(self.leader_id or "") or next(iter(self.members.values()))
        common = set(first.protocol_names())
        for member in self.members.values():
            common &= set(member.protocol_names())
        return [name for name in first.protocol_names() if name in common]

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        """Kafka's supportsProtocols: may a member with these protocols join?"""
        if not protocol_type or not names:
            return False
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        candidates = set(self.candidate_protocols())
        return any(name in candidates for name in names)

    def select_protocol(self) -> str:
        """Each member votes for its first choice among the candidates; most votes wins.

        Kafka breaks ties arbitrarily; here the earlier candidate (leader's preference) wins.
        """
        candidates = self.candidate_protocols()
        if not candidates:
            raise AssertionError(f"group {self.group_id}: members share no protocol")
        votes = dict.fromkeys(candidates, 0)
        for member in self.members.values():
            choice = next(name for name in member.protocol_names() if name in votes)
            votes[choice] += 1
        return max(candidates, key=lambda name: votes[name])

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(
            m.join_waiter is not None for m in self.members.values()
        )

    def next_deadline_ms(self) -> int | None:
        deadlines = [
            m.heartbeat_deadline_ms
            for m in self.members.values()
            if m.heartbeat_deadline_ms is not None
        ]
        deadlines.extend(self.pending_members.values())
        if self.rebalance_deadline_ms is not None:
            deadlines.append(self.rebalance_deadline_ms)
        return min(deadlines, default=None)

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members of a consumer group subscribe to; None if not known.

        Parsed from each member's ConsumerProtocolSubscription for the selected protocol. None
        (treat every topic as subscribed, as Kafka does) when the group is not a consumer
        group, has no selected protocol, or any subscription fails to parse.
        """
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            # A member that joined after the last generation may not offer its protocol.
            metadata = dict(member.protocols).get(self.protocol_name)
            parsed = None if metadata is None else parse_subscription(metadata)
            if parsed is None:
                return None
            topics.update(parsed.topics)
        return topics


def parse_subscription(metadata: bytes) -> ConsumerProtocolSubscription | None:
    """A ConsumerProtocolSubscription, or None when the bytes are not one.

    Like Kafka's ConsumerProtocol, a version newer than the generated class knows is read as the
    newest known version and the trailing bytes are ignored.
    """
    if len(metadata) < 2:
        return None
    (version,) = _VERSION.unpack_from(metadata, 0)
    if version < 0:
        return None
    version = min(version, ConsumerProtocolSubscription.MAX_VERSION)
    try:
        subscription, _ = ConsumerProtocolSubscription.read(metadata, 2, len(metadata), version)
    except ProtocolError:
        return None
    return subscription
