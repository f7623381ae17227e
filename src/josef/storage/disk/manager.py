"""`DiskPartitionLogs`: the partition logs under one or more log dirs (Kafka's LogManager).

Layout of a log dir:

    <log_dir>/<topic>-<partition>/            one DiskPartitionLog, plus partition.metadata
    <log_dir>/recovery-point-offset-checkpoint
    <log_dir>/log-start-offset-checkpoint
    <log_dir>/replication-offset-checkpoint   high watermarks
    <log_dir>/.kafka_cleanshutdown            present only between a clean close and the
                                              next start: recovery is skipped

Contract: opening loads every partition found (recovering what is past its recovery point
unless the marker says the last shutdown was clean) and removes the marker; `checkpoint()`
and `close()` rewrite the checkpoint files atomically; `close()` flushes every log first and
writes the marker last. The periodic checkpoint is split so that only the cheap part runs on
the thread that owns the logs: `checkpoint_snapshot()` there, `write_checkpoints(snapshot)`
(fsyncs) on a worker thread.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from josef.protocol.errors import ErrorCode
from josef.storage.api import LogConfig
from josef.storage.disk.checkpoint import (
    CLEAN_SHUTDOWN_MARKER,
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_CHECKPOINT,
    CorruptCheckpoint,
    TopicPartitionKey,
    read_offsets,
    write_offsets,
)
from josef.storage.disk.log import DiskPartitionLog
from josef.storage.disk.writer import LogDirWriter
from josef.storage.errors import StorageError
from josef.storage.files import fsync_dir, write_atomically
from josef.storage.producer_state import DEFAULT_PRODUCER_ID_EXPIRATION_MS

PARTITION_METADATA = "partition.metadata"
_DELETE_SUFFIX = "-delete"  # Kafka renames a deleted partition's dir to <name>.<uuid>-delete


# Per log dir: (recovery points, log start offsets, high watermarks) by (topic, partition).
_Offsets = dict[TopicPartitionKey, int]
CheckpointSnapshot = dict[str, tuple[_Offsets, _Offsets, _Offsets]]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _default_config(_topic: str) -> LogConfig:
    return LogConfig()


def encode_topic_id(topic_id: bytes) -> str:
    """Kafka's Uuid.toString: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id).decode().rstrip("=")


def decode_topic_id(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse_dir_name(name: str) -> tuple[str, int] | None:
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class DiskPartitionLogs:
    """The partition logs under `log_dirs`; configs come from `config_for(topic)`, and
    `producer_id_expiration_ms` is the broker's producer.id.expiration.ms. With
    `write_behind` (the default) each log dir has one I/O thread that writes the appends
    (`josef.storage.disk.writer`); without, appends write on the caller's thread."""

    def __init__(
        self, log_dirs: Sequence[str | Path], *,
        config_for: Callable[[str], LogConfig] = _default_config,
        clock_ms: Callable[[], int] = _wall_clock_ms, rng: random.Random | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        write_behind: bool = True,
    ) -> None:
        assert log_dirs, "at least one log dir"
        self._log_dirs = [str(d) for d in log_dirs]
        self._writers: dict[str, LogDirWriter | None] = {
            d: LogDirWriter(os.path.basename(d.rstrip("/")) or d) if write_behind else None
            for d in self._log_dirs
        }
        self._clock_ms = clock_ms
        self._producer_id_expiration_ms = producer_id_expiration_ms
        self._rng = rng or random.Random()
        self._logs: dict[tuple[str, int], DiskPartitionLog] = {}
        self._dir_of: dict[tuple[str, int], str] = {}
        self._topic_ids: dict[tuple[str, int], bytes | None] = {}
        for log_dir in self._log_dirs:
            self._load_dir(log_dir, config_for)

    def _load_dir(self, log_dir: str, config_for: Callable[[str], LogConfig]) -> None:
        os.makedirs(log_dir, exist_ok=True)
        marker = os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER)
        clean = os.path.exists(marker)
        try:
            recovery_points = read_offsets(os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT))
            start_offsets = read_offsets(os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT))
            high_watermarks = read_offsets(os.path.join(log_dir, REPLICATION_CHECKPOINT))
        except CorruptCheckpoint:
            # Without trustworthy checkpoints every segment is recovered from offset 0.
            clean, recovery_points, start_offsets, high_watermarks = False, {}, {}, {}
        for name in sorted(os.listdir(log_dir)):
            path = os.path.join(log_dir, name)
            if not os.path.isdir(path):
                continue
            if name.endswith(_DELETE_SUFFIX):
                shutil.rmtree(path, ignore_errors=True)
                continue
            key = _parse_dir_name(name)
            if key is None:
                continue
            self._logs[key] = DiskPartitionLog.open(
                path, config_for(key[0]), now_ms=self._clock_ms(),
                log_start_offset=start_offsets.get(key, 0),
                recovery_point=recovery_points.get(key, 0),
                high_watermark=high_watermarks.get(key, 0),
                clean_shutdown=clean and key in recovery_points, rng=self._rng,
                producer_id_expiration_ms=self._producer_id_expiration_ms,
                writer=self._writers[log_dir],
            )
            self._dir_of[key] = log_dir
            self._topic_ids[key] = _read_topic_id(path)
        if os.path.exists(marker):
            os.unlink(marker)  # a crash from now on must recover
            fsync_dir(log_dir)

    # --- PartitionLogs ------------------------------------------------------------------------
    def get(self, topic: str, partition: int) -> DiskPartitionLog | None:
        return self._logs.get((topic, partition))

    def create(
        self, topic: str, partition: int, config: LogConfig, topic_id: bytes
    ) -> DiskPartitionLog:
        """The existing log of (topic, partition), or a new empty one in the log dir holding
        the fewest partitions (Kafka's default placement)."""
        key = (topic, partition)
        existing = self._logs.get(key)
        if existing is not None:
            known = self._topic_ids.get(key)
            if known is not None and known != topic_id:
                raise StorageError(
                    f"{topic}-{partition} exists with another topic id",
                    ErrorCode.INCONSISTENT_TOPIC_ID,
                )
            return existing
        counts = {d: 0 for d in self._log_dirs}
        for d in self._dir_of.values():
            counts[d] += 1
        log_dir = min(self._log_dirs, key=lambda d: counts[d])
        path = os.path.join(log_dir, f"{topic}-{partition}")
        os.makedirs(path, exist_ok=True)
        fsync_dir(log_dir)  # the new partition directory's entry
        write_atomically(
            os.path.join(path, PARTITION_METADATA),
            f"version: 0\ntopic_id: {encode_topic_id(topic_id)}\n".encode(),
        )
        log = DiskPartitionLog.open(
            path, config, now_ms=self._clock_ms(), rng=self._rng,
            producer_id_expiration_ms=self._producer_id_expiration_ms,
            writer=self._writers[log_dir],
        )
        self._logs[key] = log
        self._dir_of[key] = log_dir
        self._topic_ids[key] = topic_id
        return log

    def delete(self, topic: str, partition: int) -> None:
        key = (topic, partition)
        log = self._logs.pop(key, None)
        if log is None:
            return
        log.close_without_flush()
        log_dir = self._dir_of.pop(key)
        self._topic_ids.pop(key, None)
        doomed = os.path.join(log_dir, f"{topic}-{partition}.{uuid.uuid4().hex}{_DELETE_SUFFIX}")
        os.replace(log.directory, doomed)
        fsync_dir(log_dir)
        shutil.rmtree(doomed, ignore_errors=True)

    def partitions(self) -> Sequence[tuple[str, int]]:
        return sorted(self._logs)

    def checkpoint_snapshot(self) -> CheckpointSnapshot:
        """The offsets the checkpoint files record, per log dir: (recovery points, log start
        offsets, high watermarks). Read them on the thread that owns the logs."""
        snapshot: CheckpointSnapshot = {d: ({}, {}, {}) for d in self._log_dirs}
        for key, log in self._logs.items():
            recovery_points, start_offsets, high_watermarks = snapshot[self._dir_of[key]]
            recovery_points[key] = log.recovery_point
            start_offsets[key] = log.log_start_offset
            high_watermarks[key] = log.high_watermark
        return snapshot

    def write_checkpoints(self, snapshot: CheckpointSnapshot) -> None:
        """Write a snapshot's checkpoint files atomically (blocking: any thread, one at a
        time; the broker writes every log.flush.offset.checkpoint.interval.ms, Kafka's
        default 60 s)."""
        for log_dir, (recovery_points, start_offsets, high_watermarks) in snapshot.items():
            write_offsets(os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT), recovery_points)
            write_offsets(os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT), start_offsets)
            write_offsets(os.path.join(log_dir, REPLICATION_CHECKPOINT), high_watermarks)

    def checkpoint(self) -> None:
        """Snapshot and write the checkpoint files in one go (the owning thread)."""
        self.write_checkpoints(self.checkpoint_snapshot())

    def close(self) -> None:
        """Flush and close every log, checkpoint, then mark the shutdown clean."""
        for log in self._logs.values():
            log.close()
        for writer in self._writers.values():
            if writer is not None:
                writer.close()
        self.checkpoint()
        for log_dir in self._log_dirs:
            write_atomically(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER), b"")


def _read_topic_id(path: str) -> bytes | None:
    try:
        with open(os.path.join(path, PARTITION_METADATA), encoding="utf-8") as f:
            fields = dict(line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
        return decode_topic_id(fields["topic_id"])
    except (OSError, KeyError, ValueError):
        return None
