"""One module per API key, each opening with its behaviour contract (versions, Kafka semantics
followed, deviations, KIPs). `default_registry()` registers every module listed in HANDLERS:
that list is exactly what ApiVersions advertises."""

from __future__ import annotations

import importlib
from types import ModuleType

from josef.broker.registry import HandlerRegistry

_MODULES = (
    "k00_produce",
    "k01_fetch",
    "k02_list_offsets",
    "k03_metadata",
    "k08_offset_commit",
    "k09_offset_fetch",
    "k10_find_coordinator",
    "k11_join_group",
    "k12_heartbeat",
    "k13_leave_group",
    "k14_sync_group",
    "k15_describe_groups",
    "k16_list_groups",
    "k18_api_versions",
    "k19_create_topics",
    "k20_delete_topics",
    "k21_delete_records",
    "k22_init_producer_id",
    "k23_offset_for_leader_epoch",
    "k32_describe_configs",
    "k33_alter_configs",
    "k35_describe_log_dirs",
    "k37_create_partitions",
    "k42_delete_groups",
    "k44_incremental_alter_configs",
    "k47_offset_delete",
    "k60_describe_cluster",
    "k68_consumer_group_heartbeat",
    "k69_consumer_group_describe",
    "k75_describe_topic_partitions",
)
HANDLERS: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"{__name__}.{name}") for name in _MODULES
)


def default_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    for module in HANDLERS:
        registry.register_module(module)
    return registry
