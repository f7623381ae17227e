"""Classic group states and the one table of legal transitions between them.

The states and the table are Kafka's (GroupMetadata.scala / ClassicGroupState): a group is born
Empty, rebalances through PreparingRebalance (members rejoin) and CompletingRebalance (the
leader's assignment is awaited), is Stable once it arrives, and is Dead once deleted or expired.
`check_transition` raises on anything else: an illegal transition is a coordinator bug.
"""

from __future__ import annotations

from enum import Enum


class GroupState(Enum):
    """A classic group's state; the value is the name Kafka shows in DescribeGroups/ListGroups."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


S = GroupState

# state -> the states it may move to. Dead -> Dead is legal in Kafka (deleting a group twice).
TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    S.EMPTY: frozenset({S.PREPARING_REBALANCE, S.DEAD}),
    S.PREPARING_REBALANCE: frozenset({S.COMPLETING_REBALANCE, S.EMPTY, S.DEAD}),
    S.COMPLETING_REBALANCE: frozenset({S.PREPARING_REBALANCE, S.STABLE, S.DEAD}),
    S.STABLE: frozenset({S.PREPARING_REBALANCE, S.DEAD}),
    S.DEAD: frozenset({S.DEAD}),
}


class IllegalStateTransition(RuntimeError):
    """A transition outside TRANSITIONS was attempted: a broken coordinator invariant."""


def check_transition(current: GroupState, target: GroupState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalStateTransition(f"group state {current.value} -> {target.value}")


def parse_state(name: str) -> GroupState | None:
    """The state named `name`, case-insensitively as Kafka's ListGroups states filter reads it."""
    lowered = name.lower()
    for state in GroupState:
        if state.value.lower() == lowered:
            return state
    return None
