"""Server-side partition assignors of the KIP-848 consumer group protocol: "uniform" and "range".

Contract: `assign(members, partitions)` is a pure function. `members` maps member id to a
`MemberSpec` (the topic ids it subscribes to that exist, and its previous *target* assignment);
`partitions` maps every subscribed topic id to its partition count. The result maps EVERY member
id to its new target assignment (topic id -> partitions; topics without partitions for the
member are absent). Each partition of a subscribed topic goes to exactly one member subscribed
to that topic, and no member gets a partition of a topic it does not subscribe to. Both
assignors are deterministic (ties break by member id), so a replayed group computes what the
live one did.

- "uniform" (Kafka's UniformAssignor, the default): balances the number of partitions per member
  across all topics while keeping every partition it can with its previous owner (sticky).
  When every member subscribes to the same topics, member sizes differ by at most one.
- "range" (Kafka's server RangeAssignor): per topic, the members subscribed to it, sorted by
  member id, each get a contiguous range; the first `partitions % members` get one extra, so
  members with the same subscriptions get co-partitioned ranges.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

Assignment = dict[uuid.UUID, frozenset[int]]  # topic id -> partitions


@dataclass(frozen=True, slots=True)
class MemberSpec:
    subscribed_topic_ids: frozenset[uuid.UUID]
    current: Mapping[uuid.UUID, frozenset[int]] = field(default_factory=dict)


class Assignor(Protocol):
    name: str

    def assign(
        self, members: Mapping[str, MemberSpec], partitions: Mapping[uuid.UUID, int]
    ) -> dict[str, Assignment]: ...


def _freeze(raw: dict[uuid.UUID, set[int]]) -> Assignment:
    return {topic: frozenset(parts) for topic, parts in raw.items() if parts}


class RangeAssignor:
    name = "range"

    def assign(
        self, members: Mapping[str, MemberSpec], partitions: Mapping[uuid.UUID, int]
    ) -> dict[str, Assignment]:
        raw: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in members}
        for topic in sorted(partitions):
            subscribers = sorted(m for m, s in members.items() if topic in s.subscribed_topic_ids)
            if not subscribers:
                continue
            count = partitions[topic]
            quota, extra = divmod(count, len(subscribers))
            start = 0
            for i, member_id in enumerate(subscribers):
                size = quota + (1 if i < extra else 0)
                if size:
                    raw[member_id][topic] = set(range(start, start + size))
                start += size
        return {m: _freeze(a) for m, a in raw.items()}


class UniformAssignor:
    name = "uniform"

    def assign(
        self, members: Mapping[str, MemberSpec], partitions: Mapping[uuid.UUID, int]
    ) -> dict[str, Assignment]:
        order = sorted(members)
        owner: dict[tuple[uuid.UUID, int], str] = {}
        count = dict.fromkeys(order, 0)
        # 1. Stickiness: each valid partition stays with its previous owner (first claim wins).
        for member_id in order:
            spec = members[member_id]
            for topic in sorted(spec.current):
                if topic not in spec.subscribed_topic_ids or topic not in partitions:
                    continue
                for p in sorted(spec.current[topic]):
                    if p < partitions[topic] and (topic, p) not in owner:
                        owner[(topic, p)] = member_id
                        count[member_id] += 1
        subscribers = {
            topic: [m for m in order if topic in members[m].subscribed_topic_ids]
            for topic in partitions
        }
        # 2. Partitions nobody kept go to the least loaded subscriber.
        for topic in sorted(partitions):
            eligible = subscribers[topic]
            if not eligible:
                continue
            for p in range(partitions[topic]):
                if (topic, p) not in owner:
                    target = min(eligible, key=lambda m: (count[m], m))
                    owner[(topic, p)] = target
                    count[target] += 1
        # 3. Balance: move a partition from a member holding more than one above the least
        # loaded member that could take it. Each move lowers the sum of squared sizes, so this
        # ends; the bound is a guard, not a tuning knob.
        for _ in range(len(owner) * max(len(order), 1) + 1):
            moved = False
            for tp in sorted(owner, key=lambda k: (-count[owner[k]], owner[k], k)):
                eligible = subscribers[tp[0]]
                target = min(eligible, key=lambda m: (count[m], m))
                source = owner[tp]
                if count[source] > count[target] + 1:
                    owner[tp] = target
                    count[source] -= 1
                    count[target] += 1
                    moved = True
                    break
            if not moved:
                break
        raw: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in order}
        for (topic, p), member_id in owner.items():
            raw[member_id].setdefault(topic, set()).add(p)
        return {m: _freeze(a) for m, a in raw.items()}


ASSIGNORS: dict[str, Assignor] = {a.name: a for a in (UniformAssignor(), RangeAssignor())}
