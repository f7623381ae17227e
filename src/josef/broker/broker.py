"""The state one broker shares between its request handlers.

Contract: `Broker` owns the configuration, the node and cluster identity (meta.properties), the
topic table with its partition logs, the purgatory and the group commit. Handlers receive it
and take no locks: everything runs on one event loop (each partition log has a single writer).
`Broker.open` loads everything from the log dirs; `Broker.close` flushes every log and writes
the checkpoints (clean shutdown: the next start skips recovery).

Produce path durability (`complete_append`): after `PartitionLog.append_as_leader` the bytes
are in the page cache. When the topic's flush.messages / flush.ms ask for an fsync now, the
group commit runs one fsync on a worker thread for everything appended in the same loop turn;
the high watermark moves (single node: the ISR is this broker alone) once the append is
durable as configured, and parked fetches for that partition are woken at that moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

from josef.broker.dynamic_configs import load_dynamic_configs, save_dynamic_configs
from josef.broker.groups import GroupCoordinatorRuntime
from josef.broker.meta import ensure_meta_properties
from josef.broker.producer_ids import ProducerIdManager
from josef.broker.purgatory import Purgatory
from josef.broker.registry import HandlerRegistry
from josef.broker.topics import TopicInfo, TopicPartition, Topics
from josef.cluster.config import BrokerConfig, resolve_topic_config
from josef.storage.api import LONG_MAX, AppendInfo, PartitionLog
from josef.storage.disk.manager import DiskPartitionLogs
from josef.storage.errors import StorageError
from josef.storage.flusher import GroupCommit

log = logging.getLogger(__name__)

# Kafka's log.flush.offset.checkpoint.interval.ms default: recovery points written every minute.
CHECKPOINT_INTERVAL_MS = 60_000
# The scheduler's resolution: flush.ms of idle logs and retention are checked this often.
MAINTENANCE_TICK_MS = 1_000


class Broker:
    def __init__(
        self,
        config: BrokerConfig,
        registry: HandlerRegistry,
        topics: Topics,
        logs: DiskPartitionLogs,
        cluster_id: str,
    ) -> None:
        self.config = config
        self.registry = registry
        self.node_id = config.node_id
        self.cluster_id = cluster_id
        self.logs = logs
        self.topics = topics
        self.purgatory = Purgatory()
        self.group_commit = GroupCommit()
        self.groups = GroupCoordinatorRuntime(self)  # consumer groups on __consumer_offsets
        advertised = config.advertised_listeners[0]
        self.advertised_host = advertised.host
        self.advertised_port = advertised.port
        self._maintenance: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, config: BrokerConfig, registry: HandlerRegistry) -> Broker:
        log_dirs = [Path(d) for d in config.log_dirs]
        cluster_id = ensure_meta_properties(log_dirs, config.node_id)
        config = load_dynamic_configs(config, log_dirs[0])
        topics = Topics(log_dirs[0], lambda overrides: resolve_topic_config(config, overrides))
        topics.load()
        logs = DiskPartitionLogs(log_dirs, config_for=topics.config_for)
        topics.open_logs(logs)
        for topic in topics:
            for plog in topic.logs:
                # Becoming leader with ISR = {self}: Kafka's leader HW is the minimum log end
                # offset of the ISR, i.e. our own (what recovery kept is what there is).
                plog.set_high_watermark(plog.log_end_offset)
        return cls(config, registry, topics, logs, cluster_id)

    # ---- helpers for handlers ------------------------------------------------------------
    @staticmethod
    def now_ms() -> int:
        """Wall clock: timestamps (LogAppendTime, retention)."""
        return time.time_ns() // 1_000_000

    @staticmethod
    def monotonic_ms() -> int:
        """Deadlines (max_wait_ms): immune to wall-clock steps."""
        return time.monotonic_ns() // 1_000_000

    def apply_dynamic_config(self, config: BrokerConfig) -> None:
        """Adopt new dynamic broker configs (AlterConfigs on a BROKER resource): persist them,
        then re-resolve every topic's config against the new defaults. The caller first checks
        that every topic resolves under `config`, since the file is written before anything
        changes in memory."""
        save_dynamic_configs(config, Path(config.log_dirs[0]))
        self.config = config
        self.topics.set_resolver(lambda overrides: resolve_topic_config(config, overrides))

    def set_advertised_port(self, port: int) -> None:
        """A listener on port 0 learns its port only once bound."""
        if self.advertised_port == 0:
            self.advertised_port = port

    def auto_create(self, name: str) -> TopicInfo:
        """Create a topic with the broker defaults (Metadata auto-creation)."""
        return self.topics.create(name, self.config.num_partitions)

    async def complete_append(
        self, tp: TopicPartition, plog: PartitionLog, info: AppendInfo, now_ms: int
    ) -> None:
        """After an append: fsync now if the topic's flush.messages / flush.ms make it due
        (group commit; Kafka flushes inside the append, before any acknowledgement), then
        advance the high watermark and wake the fetches parked on this partition. Returns
        without suspending when no fsync is due. Raises KafkaStorageError if the fsync fails
        (the high watermark then stays where it was)."""
        await self.group_commit.after_append(plog, now_ms)
        end = info.last_offset + 1
        if end > plog.high_watermark:
            plog.set_high_watermark(end)
            self.purgatory.notify(tp)

    # ---- lifecycle -----------------------------------------------------------------------
    def start_maintenance(self) -> None:
        self._maintenance = asyncio.get_running_loop().create_task(self._maintain())
        self.groups.start()  # loads __consumer_offsets in the background

    async def _maintain(self) -> None:
        """Kafka's scheduler tasks, on one timer: flush.ms for idle logs (the produce path
        handles busy ones), retention every log.retention.check.interval.ms, checkpoints
        every minute."""
        retention_every_ms = self.config.log_retention_check_interval_ms
        next_retention = self.now_ms() + retention_every_ms
        next_checkpoint = self.now_ms() + CHECKPOINT_INTERVAL_MS
        while True:
            await asyncio.sleep(MAINTENANCE_TICK_MS / 1000.0)
            now = self.now_ms()
            timed = [
                plog for topic in self.topics for plog in topic.logs
                if plog.config.flush_ms < LONG_MAX
            ]
            if timed:
                try:
                    await self.group_commit.flush_expired(timed, now)
                except StorageError as err:
                    log.error("periodic flush failed: %s", err)
            if now >= next_retention:
                next_retention = now + retention_every_ms
                for topic in self.topics:
                    for plog in topic.logs:
                        plog.apply_retention(now)
            if now >= next_checkpoint:
                next_checkpoint = now + CHECKPOINT_INTERVAL_MS
                # On the loop, not a worker thread: it walks the partition table, which only
                # the loop mutates; three small fsynced files per log dir once a minute.
                self.logs.checkpoint()

    @functools.cached_property
    def producer_ids(self) -> ProducerIdManager:
        """InitProducerId's id allocator, persisted in the first log dir (loaded on first use)."""
        return ProducerIdManager(Path(self.config.log_dirs[0]))

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        await asyncio.to_thread(self.logs.close)
