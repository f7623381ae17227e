"""The partition-log interface that every storage engine implements.

Two engines implement it: `josef.storage.disk` (segments on disk) and `josef.storage.memory`
(reference semantics). One conformance suite (tests/storage) runs against both. The broker,
the internal topics and replication use only what is declared here.

Vocabulary is Kafka's: log_start_offset, log_end_offset (the next offset to assign),
high_watermark (last offset + 1 that consumers may read; single node: advanced by the broker
once an append is durable as `acks` asks), recovery_point, base_offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from josef.storage.leader_epoch import LeaderEpochCache
from josef.storage.producer_state import AppendOrigin

LONG_MAX = 2**63 - 1


class TopicPartition(NamedTuple):
    """One partition of a topic: the key of logs, fetch sessions, purgatory and committed
    offsets, in every layer from storage up."""

    topic: str
    partition: int


# Kafka's default for a topic config when neither the topic nor the broker sets it.
# Each value is Kafka's own default (TopicConfig / ServerLogConfigs, Kafka 3.9).
@dataclass(frozen=True, slots=True)
class LogConfig:
    segment_bytes: int = 1024 * 1024 * 1024  # segment.bytes: 1 GiB
    segment_ms: int = 7 * 24 * 3600 * 1000  # segment.ms: 7 days
    segment_jitter_ms: int = 0  # segment.jitter.ms
    segment_index_bytes: int = 10 * 1024 * 1024  # segment.index.bytes: 10 MiB, index-full rolls
    index_interval_bytes: int = 4096  # index.interval.bytes: one index entry per 4 KiB of log
    flush_messages: int = LONG_MAX  # flush.messages: 1 = fsync before every ack (group commit)
    flush_ms: int = LONG_MAX  # flush.ms
    retention_ms: int = 7 * 24 * 3600 * 1000  # retention.ms: 7 days; -1 = unlimited
    retention_bytes: int = -1  # retention.bytes: -1 = unlimited
    cleanup_policy: frozenset[str] = frozenset({"delete"})  # cleanup.policy: delete|compact|both
    delete_retention_ms: int = 24 * 3600 * 1000  # delete.retention.ms: tombstones kept 1 day
    min_compaction_lag_ms: int = 0  # min.compaction.lag.ms
    max_compaction_lag_ms: int = LONG_MAX  # max.compaction.lag.ms
    min_cleanable_dirty_ratio: float = 0.5  # min.cleanable.dirty.ratio
    message_timestamp_type: str = "CreateTime"  # message.timestamp.type: CreateTime|LogAppendTime
    max_message_bytes: int = 1048588  # max.message.bytes: 1 MiB + record-batch overhead
    file_delete_delay_ms: int = 60_000  # file.delete.delay.ms

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 µs per append (hot path)
class AppendInfo:
    """What an append did: the offsets it assigned and the timestamps the log now holds."""

    first_offset: int
    last_offset: int
    max_timestamp: int  # -1 when no record has a timestamp
    offset_of_max_timestamp: int
    log_append_time: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    record_count: int
    duplicate: bool = False  # idempotent retry: offsets are those of the original append


@dataclass(slots=True)
class FetchData:
    """Whole record batches, as stored, covering [first batch base_offset, next_offset)."""

    records: list[bytes | memoryview] = field(default_factory=list)
    size: int = 0  # sum of len(records)
    high_watermark: int = 0
    log_start_offset: int = 0
    log_end_offset: int = 0


@dataclass(frozen=True, slots=True)
class TimestampAndOffset:
    timestamp: int
    offset: int
    leader_epoch: int  # -1 when unknown


class PartitionLog(Protocol):
    """One partition's log. Single writer: the broker's event loop; no locks are taken."""

    @property
    def config(self) -> LogConfig: ...
    @property
    def log_start_offset(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    @property
    def high_watermark(self) -> int: ...
    @property
    def recovery_point(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...

    def update_config(self, config: LogConfig) -> None: ...

    def append_as_leader(
        self, records: bytes | memoryview, leader_epoch: int, now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        """Validate every batch (lengths, magic 2, CRC-32C, record count, producer state),
        assign offsets from log_end_offset in the headers, set the partition leader epoch
        (and LogAppendTime if configured), write to the active segment (rolling first when
        needed) and return. Raises a `StorageError` subclass and leaves the log unchanged when
        any batch is invalid. The bytes are in the OS page cache on return, not yet fsynced.
        `origin` is Kafka's AppendOrigin: CLIENT batches (Produce) get the client checks and
        idempotent deduplication (a retried batch returns AppendInfo(duplicate=True) with the
        original offsets and writes nothing); COORDINATOR batches (transaction markers,
        internal topics) only epoch checks. The leader epoch is recorded in
        `leader_epoch_cache`."""
        ...

    def append_as_follower(self, records: bytes | memoryview, now_ms: int) -> AppendInfo:
        """Append batches whose offsets are already assigned (replication, internal topics).
        Offsets must start at log_end_offset or later and increase."""
        ...

    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> FetchData:
        """Whole batches from the one containing fetch_offset, stopping before max_offset
        (exclusive, e.g. the high watermark) and within max_bytes, except that the first batch
        is returned whole even if larger when min_one_batch (KIP-74). Never decodes records.
        Raises OffsetOutOfRange outside [log_start_offset, log_end_offset]."""
        ...

    def offset_for_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """The first offset whose batch max timestamp >= timestamp (ListOffsets by time)."""
        ...

    def offset_of_max_timestamp(self) -> TimestampAndOffset | None:
        """ListOffsets MAX_TIMESTAMP (-3, KIP-734)."""
        ...

    def set_high_watermark(self, offset: int) -> None: ...

    @property
    def leader_epoch_cache(self) -> LeaderEpochCache:
        """Which leader epoch started at which offset (OffsetForLeaderEpoch, KIP-101)."""
        ...

    @property
    def last_stable_offset(self) -> int:
        """The first offset of an open transaction, else the high watermark (read_committed
        consumers read below it)."""
        ...

    def remove_expired_producers(self, now_ms: int) -> int:
        """Forget producers idle for producer.id.expiration.ms (the broker calls it every
        producer.id.expiration.check.interval.ms); returns how many."""
        ...

    def truncate_to(self, offset: int) -> None:
        """Remove everything at and after offset (replication divergence)."""
        ...

    def delete_records_before(self, offset: int) -> int:
        """Move log_start_offset to offset (DeleteRecords); returns the new log_start_offset.
        Whole segments below it are deleted."""
        ...

    def roll(self, now_ms: int) -> None: ...

    def flush(self) -> None:
        """fsync everything appended so far and advance the recovery point (blocking: run it
        on a worker thread, see `josef.storage.flusher`)."""
        ...

    def apply_retention(self, now_ms: int) -> int:
        """Delete whole segments by retention.ms / retention.bytes; returns segments deleted."""
        ...

    def close(self) -> None: ...


class PartitionLogs(Protocol):
    """A set of partition logs under one or more log dirs (Kafka's LogManager)."""

    def get(self, topic: str, partition: int) -> PartitionLog | None: ...

    def create(
        self, topic: str, partition: int, config: LogConfig, topic_id: bytes
    ) -> PartitionLog: ...

    def delete(self, topic: str, partition: int) -> None: ...

    def partitions(self) -> Sequence[tuple[str, int]]: ...

    def close(self) -> None: ...
