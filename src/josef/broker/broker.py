"""The state one broker shares between its request handlers.

Contract: `Broker` owns the configuration, the node and cluster identity (meta.properties), the
topic table with its partition logs, the purgatory and the group commit. Handlers receive it
and take no locks: everything runs on one event loop (each partition log has a single writer).
`Broker.open` loads everything from the log dirs; `Broker.close` flushes every log and writes
the checkpoints (clean shutdown: the next start skips recovery).

Produce path durability (`complete_append`): after `PartitionLog.append_as_leader` the bytes
are queued for the log dir's I/O thread (write-behind), and the answer waits until they are in
the file (the page cache). When the topic's flush.messages / flush.ms ask for an fsync now, the
group commit runs one fsync on a worker thread for everything appended in the same loop turn;
the high watermark moves (single node: the ISR is this broker alone) once the append is
written and durable as configured, and parked fetches for that partition are woken then.

Scheduled work (`start_maintenance`): one timer task runs Kafka's scheduler jobs (flush.ms,
retention, offset checkpoints - snapshotted on the loop, written on a worker thread -, producer
expiry) at their configured intervals; a second task is Kafka's log cleaner thread
(log.cleaner.enable): compaction rounds whose I/O runs on a dedicated one-thread executor.
A cleaning round and a topic deletion (`delete_topic`) exclude each other with one lock, so a
round never writes into a partition directory that is being removed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from josef.broker.dynamic_configs import load_dynamic_configs, save_dynamic_configs
from josef.broker.groups import OFFSETS_TOPIC, GroupCoordinatorRuntime
from josef.broker.meta import ensure_meta_properties
from josef.broker.producer_ids import ProducerIdManager
from josef.broker.purgatory import Purgatory
from josef.broker.registry import HandlerRegistry
from josef.broker.topics import TopicInfo, Topics
from josef.cluster.config import BrokerConfig, resolve_topic_config
from josef.storage.api import LONG_MAX, AppendInfo, PartitionLog, TopicPartition
from josef.storage.disk.cleaner import LogCleaner
from josef.storage.disk.log import DiskPartitionLog
from josef.storage.disk.manager import DiskPartitionLogs
from josef.storage.errors import StorageError
from josef.storage.flusher import GroupCommit, pending_write

log = logging.getLogger(__name__)

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
        # Completions of appends whose request was cancelled (at most one per such append).
        self._abandoned_appends: set[asyncio.Task[None]] = set()
        self.groups = GroupCoordinatorRuntime(self)  # consumer groups on __consumer_offsets
        advertised = config.advertised_listeners[0]
        self.advertised_host = advertised.host
        self.advertised_port = advertised.port
        self.cleaner = LogCleaner(logs)
        # Kafka's log.cleaner.threads default: one cleaner thread, kept off the shared pool
        # so that a long round never delays a group-commit fsync.
        self._cleaner_executor = ThreadPoolExecutor(1, thread_name_prefix="josef-cleaner")
        # Held by a cleaning round and by topic deletion: never both at once.
        self._log_removal = asyncio.Lock()
        self._maintenance: list[asyncio.Task[None]] = []
        self._checkpoint_write: asyncio.Future[None] | None = None

    @classmethod
    def open(cls, config: BrokerConfig, registry: HandlerRegistry) -> Broker:
        log_dirs = [Path(d) for d in config.log_dirs]
        cluster_id = ensure_meta_properties(log_dirs, config.node_id)
        config = load_dynamic_configs(config, log_dirs[0])
        topics = Topics(log_dirs[0], lambda overrides: resolve_topic_config(config, overrides))
        topics.load()
        logs = DiskPartitionLogs(
            log_dirs, config_for=topics.config_for,
            producer_id_expiration_ms=config.producer_id_expiration_ms,
        )
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

    def complete_append(
        self, tp: TopicPartition, plog: PartitionLog, info: AppendInfo, now_ms: int
    ) -> Coroutine[None, None, None]:
        """Call right after an append (it takes the append's pending write now); await the
        result. It waits until the append is in the file (write-behind), or fsynced when the
        topic's flush.messages / flush.ms make an fsync due (group commit; Kafka flushes
        inside the append, before any acknowledgement), then advances the high watermark and
        wakes the fetches parked on this partition. Raises KafkaStorageError if the write or
        the fsync fails (the high watermark then stays where it was)."""
        return self._complete_append(tp, plog, info, now_ms, pending_write(plog))

    async def _complete_append(
        self, tp: TopicPartition, plog: PartitionLog, info: AppendInfo, now_ms: int,
        write: object | None,
    ) -> None:
        try:
            await self.group_commit.after_append(plog, now_ms, write)
        except asyncio.CancelledError:
            # The request went away (its connection closed; acks=0 producers do that right
            # after sending). The append stands, so its high watermark must still move.
            task = asyncio.ensure_future(self._finish_abandoned_append(tp, plog, info, write))
            self._abandoned_appends.add(task)
            task.add_done_callback(self._abandoned_appends.discard)
            raise
        self._advance_high_watermark(tp, plog, info.last_offset + 1)

    async def _finish_abandoned_append(
        self, tp: TopicPartition, plog: PartitionLog, info: AppendInfo, write: object | None
    ) -> None:
        end = info.last_offset + 1
        config = plog.config
        try:
            if write is not None:
                await self.group_commit.after_append(plog, self.now_ms(), write)
            if config.flush_messages < LONG_MAX or config.flush_ms < LONG_MAX:
                await self.group_commit.wait_durable(plog, min(end, plog.log_end_offset))
        except StorageError:
            return  # not written: the log rolled back, nothing to advance
        self._advance_high_watermark(tp, plog, end)

    def _advance_high_watermark(self, tp: TopicPartition, plog: PartitionLog, end: int) -> None:
        if end > plog.high_watermark:
            plog.set_high_watermark(end)
            self.purgatory.notify(tp)

    # ---- topic deletion ------------------------------------------------------------------
    async def delete_topic(self, info: TopicInfo) -> bool:
        """DeleteTopics: remove `info` from the persisted table, then delete its partition
        logs. Waits for a cleaning round in progress first (Kafka's abortCleaning before a
        log is deleted): the round writes into partition directories and must not outlive
        them. False when another request deleted the topic meanwhile."""
        async with self._log_removal:
            if self.topics.get(info.name) is not info:
                return False
            self.topics.delete(info.name)
            for plog in info.logs:
                if isinstance(plog, DiskPartitionLog):
                    # Deletion truncates everything: a topic created later under the same
                    # name starts with nothing counted as cleaned.
                    self.cleaner.truncate_checkpoint(plog, 0)
            for partition in range(info.num_partitions):
                self.logs.delete(info.name, partition)
                self.cleaner.uncleanable.pop(TopicPartition(info.name, partition), None)
            # Drop the deleted partitions from cleaner-offset-checkpoint now: a stale entry
            # would count a same-named topic's records as cleaned after a restart.
            await asyncio.get_running_loop().run_in_executor(
                self._cleaner_executor, self.cleaner.write_checkpoints
            )
            if info.name == OFFSETS_TOPIC:
                self.groups.resign()
        return True

    # ---- lifecycle -----------------------------------------------------------------------
    def start_maintenance(self) -> None:
        loop = asyncio.get_running_loop()
        self._maintenance = [loop.create_task(self._maintain())]
        if self.config.log_cleaner_enable:
            self._maintenance.append(loop.create_task(self._run_cleaner()))
        self.groups.start()  # loads __consumer_offsets in the background

    async def _maintain(self) -> None:
        """Kafka's scheduler tasks, on one timer: flush.ms for idle logs (the produce path
        handles busy ones), retention every log.retention.check.interval.ms, checkpoints
        every log.flush.offset.checkpoint.interval.ms, idle producers expired every
        producer.id.expiration.check.interval.ms."""
        config = self.config
        retention_every_ms = config.log_retention_check_interval_ms
        checkpoint_every_ms = config.log_flush_offset_checkpoint_interval_ms
        expiration_every_ms = config.producer_id_expiration_check_interval_ms
        next_retention = self.now_ms() + retention_every_ms
        next_checkpoint = self.now_ms() + checkpoint_every_ms
        next_expiration = self.now_ms() + expiration_every_ms
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
                next_checkpoint = now + checkpoint_every_ms
                await self._write_checkpoints()
            if now >= next_expiration:
                next_expiration = now + expiration_every_ms
                for topic in self.topics:
                    for plog in topic.logs:
                        plog.remove_expired_producers(now)

    async def _write_checkpoints(self) -> None:
        """The offsets are read on the loop (the only writer of the partition table); the
        files are written and fsynced on a worker thread. Shielded, so that `close` can
        wait for a write in progress instead of racing it on the same files."""
        snapshot = self.logs.checkpoint_snapshot()
        self._checkpoint_write = asyncio.get_running_loop().run_in_executor(
            None, self.logs.write_checkpoints, snapshot
        )
        try:
            await asyncio.shield(self._checkpoint_write)
        except OSError as err:
            log.error("writing the offset checkpoints failed: %s", err)

    async def _run_cleaner(self) -> None:
        """Kafka's cleaner thread: clean the filthiest due compacted log, at once again after
        a round that cleaned something, else after log.cleaner.backoff.ms. A failed round
        marks its log uncleanable (logged) and the others go on."""
        backoff_s = self.config.log_cleaner_backoff_ms / 1000.0
        while True:
            started = time.monotonic()
            try:
                async with self._log_removal:
                    stats = await self.cleaner.clean_once(self.now_ms(), self._cleaner_executor)
            except (StorageError, OSError) as err:  # OSError: cleaner-offset-checkpoint
                log.error("log cleaner: %s", err)
                stats = None
            if stats is None:
                await asyncio.sleep(backoff_s)
                continue
            log.info(
                "log cleaner: offsets %d-%d, %d records removed, %d -> %d bytes, "
                "%d segments replaced in %.0f ms", stats.first_dirty_offset, stats.end_offset,
                stats.records_removed, stats.bytes_read, stats.bytes_written,
                stats.segments_replaced, (time.monotonic() - started) * 1000,
            )
            await asyncio.sleep(0)

    @functools.cached_property
    def producer_ids(self) -> ProducerIdManager:
        """InitProducerId's id allocator, persisted in the first log dir (loaded on first use)."""
        return ProducerIdManager(Path(self.config.log_dirs[0]))

    async def close(self) -> None:
        """Stop the scheduled tasks, let a checkpoint write in progress end, then flush and
        close every log (clean-shutdown marker last). A cleaning round in progress on the
        cleaner thread is abandoned: its files are new ones only, and the next open
        completes or discards them (see josef.storage.disk.cleaner)."""
        for task in self._maintenance:
            task.cancel()
        await asyncio.gather(*self._maintenance, return_exceptions=True)
        self._cleaner_executor.shutdown(wait=False, cancel_futures=True)
        if self._checkpoint_write is not None:
            await asyncio.gather(self._checkpoint_write, return_exceptions=True)
        await asyncio.to_thread(self.logs.close)
