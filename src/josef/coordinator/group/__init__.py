"""The classic group coordinator (JoinGroup/SyncGroup/Heartbeat/LeaveGroup and offsets).

`GroupCoordinator` in `coordinator.py` documents the broker-facing contract; `state.py` holds the
state table, `group.py` the group model, `records.py` the `__consumer_offsets` formats.
"""

from josef.coordinator.group.coordinator import (
    Completion,
    GroupConfig,
    GroupCoordinator,
    Result,
)
from josef.coordinator.group.group import CommittedOffset, Group, Member
from josef.coordinator.group.records import GroupRecord, partition_for
from josef.coordinator.group.state import GroupState, IllegalStateTransition
from josef.storage.api import TopicPartition

__all__ = [
    "CommittedOffset",
    "Completion",
    "Group",
    "GroupConfig",
    "GroupCoordinator",
    "GroupRecord",
    "GroupState",
    "IllegalStateTransition",
    "Member",
    "Result",
    "TopicPartition",
    "partition_for",
]
