"""The broker's table of topics and their partition logs, persisted in a small metadata file.

Contract:
- A topic is (name, topic id (uuid4, KIP-516), partition count, config overrides). The table
  lives in `<first log dir>/josef-topics.json`, rewritten atomically on every change (temp file,
  fsync, rename, fsync dir), and is loaded at start. Partition logs are opened or created through
  the storage engine's `PartitionLogs`; the table is written BEFORE logs are created, so a crash
  in between is repaired at the next start (missing logs are created on load).
- Names follow Kafka's rules (`Topic.validate`): 1-249 chars of [a-zA-Z0-9._-], not "." or "..",
  and no collision with an existing name that differs only by '.' vs '_' (metric names would
  clash). Violations raise `TopicError(INVALID_TOPIC_EXCEPTION)`.
- Single node: one leader epoch per partition, 0 since creation (no leadership changes).
- Topic configs are resolved to a `LogConfig` by the injected resolver (broker defaults +
  overrides); it raises for an invalid value and that error propagates unchanged.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from josef.protocol.errors import ErrorCode
from josef.storage.api import LogConfig, PartitionLog, PartitionLogs
from josef.storage.files import write_atomically

log = logging.getLogger(__name__)

TOPICS_FILE = "josef-topics.json"
STORE_VERSION = 1
MAX_TOPIC_NAME_LENGTH = 249  # Kafka's Topic.MAX_NAME_LENGTH
# Kafka caps partitions per CreateTopics/CreatePartitions only by memory; we bound it so one
# request cannot open millions of files (Kafka's docs advise well under 4000 per broker).
MAX_PARTITIONS_PER_TOPIC = 10_000
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]+")
LEADER_EPOCH = 0


class TopicError(Exception):
    """A topic operation refused with a Kafka error code (a protocol outcome, not a bug)."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    num_partitions: int
    configs: dict[str, str]
    log_config: LogConfig
    is_internal: bool = False
    logs: list[PartitionLog] = field(default_factory=list)


def validate_topic_name(name: str | None) -> None:
    """Kafka's topic-name rules; raises TopicError(INVALID_TOPIC_EXCEPTION)."""
    if not name:
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, "Topic name is empty")
    if name in (".", ".."):
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise TopicError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters",
        )
    if not _LEGAL_NAME.fullmatch(name):
        raise TopicError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"Topic name {name!r} is illegal: only ASCII alphanumerics, '.', '_' and '-'",
        )


def _collision_key(name: str) -> str:
    return name.replace(".", "_")


ConfigResolver = Callable[[Mapping[str, str]], LogConfig]


class Topics:
    """Name -> TopicInfo, the partition logs, and their persistence. Event-loop single writer."""

    def __init__(self, data_dir: Path, resolve_config: ConfigResolver) -> None:
        self._path = Path(data_dir) / TOPICS_FILE
        self._resolve = resolve_config
        self._logs: PartitionLogs | None = None
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        self._collisions: dict[str, str] = {}

    # ---- lookups -------------------------------------------------------------------------
    def get(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def __iter__(self) -> Iterator[TopicInfo]:
        return iter(list(self._topics.values()))

    def __len__(self) -> int:
        return len(self._topics)

    def partition_log(self, topic: str, partition: int) -> PartitionLog | None:
        info = self._topics.get(topic)
        if info is None or not 0 <= partition < info.num_partitions:
            return None
        return info.logs[partition]

    # ---- persistence ---------------------------------------------------------------------
    def load(self) -> None:
        """Read the table (before the storage engine opens: it needs `config_for`)."""
        if not self._path.exists():
            return
        doc = json.loads(self._path.read_text(encoding="utf-8"))
        if doc.get("version") != STORE_VERSION:
            raise RuntimeError(f"{self._path}: unsupported version {doc.get('version')!r}")
        for entry in doc["topics"]:
            configs = {str(k): str(v) for k, v in entry["configs"].items()}
            self._add(
                TopicInfo(
                    name=entry["name"],
                    topic_id=uuid.UUID(entry["topic_id"]),
                    num_partitions=int(entry["partitions"]),
                    configs=configs,
                    log_config=self._resolve(configs),
                    is_internal=bool(entry.get("internal", False)),
                )
            )

    def config_for(self, topic: str) -> LogConfig:
        """The LogConfig the storage engine opens a partition of `topic` with."""
        info = self._topics.get(topic)
        return info.log_config if info is not None else self._resolve({})

    def open_logs(self, logs: PartitionLogs) -> None:
        """Attach the storage engine and open (or create, after a crash) every partition."""
        self._logs = logs
        for info in self._topics.values():
            self._open_logs(info)
        known = {(t.name, p) for t in self._topics.values() for p in range(t.num_partitions)}
        for topic, partition in logs.partitions():
            if (topic, partition) not in known:
                log.warning("partition %s-%d on disk belongs to no topic", topic, partition)

    def _save(self) -> None:
        doc = {
            "version": STORE_VERSION,
            "topics": [
                {
                    "name": t.name,
                    "topic_id": str(t.topic_id),
                    "partitions": t.num_partitions,
                    "configs": t.configs,
                    "internal": t.is_internal,
                }
                for t in self._topics.values()
            ],
        }
        write_atomically(self._path, json.dumps(doc, indent=1, sort_keys=True).encode())

    def _open_logs(self, info: TopicInfo) -> None:
        assert self._logs is not None, "open_logs() first"
        for partition in range(len(info.logs), info.num_partitions):
            plog = self._logs.get(info.name, partition)
            if plog is None:
                plog = self._logs.create(info.name, partition, info.log_config, info.topic_id.bytes)
            # Kafka's Partition.makeLeader: the leader's epoch starts at its log end offset
            # (a no-op when the cache already ends with LEADER_EPOCH).
            plog.leader_epoch_cache.assign(LEADER_EPOCH, plog.log_end_offset)
            info.logs.append(plog)

    def _add(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self._by_id[info.topic_id] = info
        self._collisions[_collision_key(info.name)] = info.name

    # ---- changes -------------------------------------------------------------------------
    def validate_create(
        self, name: str, num_partitions: int, configs: Mapping[str, str]
    ) -> LogConfig:
        """Every check CreateTopics makes, without side effects (validate_only uses it)."""
        validate_topic_name(name)
        if name in self._topics:
            raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        clash = self._collisions.get(_collision_key(name))
        if clash is not None:
            raise TopicError(
                ErrorCode.INVALID_TOPIC_EXCEPTION,
                f"Topic '{name}' collides with existing topic: {clash}",
            )
        if not 1 <= num_partitions <= MAX_PARTITIONS_PER_TOPIC:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"Number of partitions must be in [1, {MAX_PARTITIONS_PER_TOPIC}]: "
                f"{num_partitions}",
            )
        return self._resolve(configs)

    def create(
        self,
        name: str,
        num_partitions: int,
        configs: Mapping[str, str] | None = None,
        is_internal: bool = False,
    ) -> TopicInfo:
        configs = dict(configs or {})
        log_config = self.validate_create(name, num_partitions, configs)
        info = TopicInfo(
            name=name,
            topic_id=uuid.uuid4(),
            num_partitions=num_partitions,
            configs=configs,
            log_config=log_config,
            is_internal=is_internal,
        )
        self._add(info)
        try:
            self._save()
        except BaseException:
            self._remove(info)
            raise
        self._open_logs(info)
        log.info("created topic %s (%d partitions, id %s)", name, num_partitions, info.topic_id)
        return info

    def _remove(self, info: TopicInfo) -> None:
        self._topics.pop(info.name, None)
        self._by_id.pop(info.topic_id, None)
        self._collisions.pop(_collision_key(info.name), None)

    # ---- config changes (AlterConfigs / IncrementalAlterConfigs) --------------------------
    def resolve_config(self, configs: Mapping[str, str]) -> LogConfig:
        """The LogConfig these overrides give under the current broker defaults; raises the
        resolver's ConfigError when one is invalid (validate_only uses it)."""
        return self._resolve(configs)

    def set_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        """Replace a topic's whole override set: validate, persist, then apply the new
        LogConfig to its open partition logs. Raises (changing nothing) when invalid."""
        info = self._topics[name]
        log_config = self._resolve(configs)
        previous = (info.configs, info.log_config)
        info.configs, info.log_config = dict(configs), log_config
        try:
            self._save()
        except BaseException:
            info.configs, info.log_config = previous
            raise
        for plog in info.logs:
            plog.update_config(log_config)
        log.info("altered configs of topic %s: %s", name, info.configs)
        return info

    def set_resolver(self, resolve_config: ConfigResolver) -> None:
        """New broker defaults (dynamic broker configs): re-resolve every topic and apply the
        result to its open logs. Raises (changing nothing) if any topic would become invalid."""
        resolved = {name: resolve_config(info.configs) for name, info in self._topics.items()}
        self._resolve = resolve_config
        for name, log_config in resolved.items():
            info = self._topics[name]
            info.log_config = log_config
            for plog in info.logs:
                plog.update_config(log_config)

    # ---- lifecycle (DeleteTopics / CreatePartitions) --------------------------------------
    def delete(self, name: str) -> TopicInfo:
        """Remove a topic from the table (persisted first: a crash after it leaves only
        orphan partition dirs, which the next start reports) and return it; the caller
        deletes its partition logs."""
        info = self._topics[name]
        self._remove(info)
        try:
            self._save()
        except BaseException:
            self._add(info)
            raise
        log.info("deleted topic %s (id %s)", name, info.topic_id)
        return info

    def validate_add_partitions(self, name: str, count: int) -> TopicInfo:
        """Every check CreatePartitions makes on the new total `count`, without side effects."""
        info = self._topics.get(name)
        if info is None:
            raise TopicError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"This server does not host topic {name}."
            )
        if count == info.num_partitions:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS, f"Topic already has {count} partition(s)."
            )
        if count < info.num_partitions:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"The topic {name} currently has {info.num_partitions} partition(s); "
                f"{count} would not be an increase.",
            )
        if count > MAX_PARTITIONS_PER_TOPIC:
            raise TopicError(
                ErrorCode.INVALID_PARTITIONS,
                f"Number of partitions must be in [1, {MAX_PARTITIONS_PER_TOPIC}]: {count}",
            )
        return info

    def add_partitions(self, name: str, count: int) -> TopicInfo:
        """Grow a topic to `count` partitions: persist the new count, then create the logs."""
        info = self.validate_add_partitions(name, count)
        previous = info.num_partitions
        info.num_partitions = count
        try:
            self._save()
        except BaseException:
            info.num_partitions = previous
            raise
        self._open_logs(info)
        log.info("topic %s: %d -> %d partitions", name, previous, count)
        return info
