"""Broker and topic configuration: Kafka's names, types, defaults, validation and resolution.

Contract:
- `BROKER_CONFIGS` and `TOPIC_CONFIGS` list every config Josef accepts, with Kafka 3.9's name,
  type (DescribeConfigs `config_type` codes), default, valid values and importance. Each says
  whether Josef honours it or accepts it without effect (and why); docs/configuration.md is
  generated from these tables (tools/gen_config_docs.py).
- Values are parsed as Kafka's ConfigDef parses them (trimmed; "true"/"false" in any case;
  comma-separated lists; Java integer ranges). Any invalid value, unknown topic config or null
  topic config raises `ConfigError`, whose `error_code` is ErrorCode.INVALID_CONFIG.
- `BrokerConfig` holds one broker's settings in layers, highest precedence first: dynamic
  per-broker, dynamic cluster default, static (properties file < JOSEF_* env < --override, merged
  by `josef.cluster.properties`), Josef's default. Typed attributes: `cfg.num_partitions`,
  `cfg.listeners`, `cfg.log_dirs`, ...
- `resolve_topic_config(broker, overrides)` gives the storage layer's `LogConfig`: a topic
  override wins, else the first broker synonym that has a value (Kafka's synonym order, e.g.
  retention.ms <- log.retention.ms, log.retention.minutes, log.retention.hours), unit-converted.
- `validate_topic_overrides` checks CreateTopics / AlterConfigs overrides; `incremental_alter`
  applies IncrementalAlterConfigs operations (SET, DELETE, APPEND, SUBTRACT) as Kafka does.
- `describe_topic_config` / `describe_broker_config` give DescribeConfigs entries (value,
  source, synonyms, read_only, sensitivity, type, documentation). Synonyms are in Kafka's order:
  topic override first, then per source (dynamic broker, dynamic default, static, default) each
  synonym name in precedence order. Deviation: Kafka drops topic synonyms that come before the
  first occurrence of the primary broker name (so `log.retention.hours=24` in the static file is
  hidden when log.retention.ms is unset); Josef lists them all, and reports as `source` the layer
  that really supplied the value.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from josef.protocol.errors import ErrorCode
from josef.storage.api import LONG_MAX, LogConfig

INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
SHORT_MAX = 2**15 - 1
LONG_MIN = -(2**63)

ConfigValue = bool | int | float | str | tuple[str, ...]


class ConfigType(IntEnum):
    """DescribeConfigs `config_type` codes (KIP-569), named as Kafka's ConfigDef.Type."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs `config_source` codes (KIP-226)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class Importance(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ConfigResourceType(IntEnum):
    """DescribeConfigs / AlterConfigs `resource_type` codes this module describes."""

    TOPIC = 2
    BROKER = 4


class AlterConfigOp(IntEnum):
    """IncrementalAlterConfigs `config_operation` codes (KIP-339)."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class ConfigError(Exception):
    """An invalid config name or value; answered with INVALID_CONFIG (Kafka's
    InvalidConfigurationException) in CreateTopics / AlterConfigs responses."""

    error_code: ErrorCode = ErrorCode.INVALID_CONFIG

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive numeric bounds; None means unbounded (Kafka's Range.atLeast / between)."""

    min: int | float | None = None
    max: int | float | None = None

    def check(self, name: str, value: ConfigValue) -> None:
        assert isinstance(value, int | float)
        if self.min is not None and value < self.min:
            raise ConfigError(
                f"Invalid value {value} for configuration {name}: Value must be at least "
                f"{self.min}", name)
        if self.max is not None and value > self.max:
            raise ConfigError(
                f"Invalid value {value} for configuration {name}: Value must be no more than "
                f"{self.max}", name)

    def __str__(self) -> str:
        if self.max is None:
            return f"[{self.min},...]"
        if self.min is None:
            return f"[...,{self.max}]"
        return f"[{self.min},...,{self.max}]"


@dataclass(frozen=True, slots=True)
class OneOf:
    """Allowed strings (Kafka's ValidString.in); for a LIST, every element must be allowed."""

    values: tuple[str, ...]

    def check(self, name: str, value: ConfigValue) -> None:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in self.values:
                raise ConfigError(
                    f"Invalid value {item} for configuration {name}: String must be one of: "
                    f"{', '.join(self.values)}", name)

    def __str__(self) -> str:
        return f"[{', '.join(self.values)}]"


@dataclass(frozen=True, slots=True)
class Synonym:
    """A broker config that supplies a topic config's default, scaled to the topic's unit."""

    name: str
    scale: int = 1  # e.g. 3_600_000 for log.retention.hours -> retention.ms


@dataclass(frozen=True, slots=True)
class JosefDefault:
    """Where Josef's default differs from Kafka's, Kafka's value and the reason."""

    kafka_default: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    type: ConfigType
    default: str | None  # as Kafka prints it; None = no default (unset)
    doc: str
    importance: Importance
    validator: Range | OneOf | None = None
    synonyms: tuple[Synonym, ...] = ()  # topic configs: broker configs, highest precedence first
    # Broker configs only: may be set as a dynamic broker config (AlterConfigs on a BROKER
    # resource). Josef makes exactly the topic-config synonyms dynamic: they are read each time a
    # topic config is resolved; every other broker config is read once at start-up.
    dynamic: bool = False
    honoured: bool = True
    note: str = ""  # when not honoured: why it has no effect; else an optional remark
    josef_default: JosefDefault | None = None

    @property
    def is_sensitive(self) -> bool:
        return self.type is ConfigType.PASSWORD

    @property
    def status(self) -> str:
        if self.honoured:
            return f"honoured: {self.note}" if self.note else "honoured"
        return f"accepted, no effect: {self.note}"

    def parse(self, raw: str) -> ConfigValue:
        """Parse and validate a value given as text, as Kafka's ConfigDef.parseType does."""
        value = _parse_type(self.name, self.type, raw, self.is_sensitive)
        if self.validator is not None:
            self.validator.check(self.name, value)
        return value

    def default_value(self) -> ConfigValue | None:
        return None if self.default is None else self.parse(self.default)


_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INT_BOUNDS = {
    ConfigType.SHORT: (-(2**15), SHORT_MAX),
    ConfigType.INT: (INT_MIN, INT_MAX),
    ConfigType.LONG: (LONG_MIN, LONG_MAX),
}


def _parse_type(name: str, config_type: ConfigType, raw: str, sensitive: bool) -> ConfigValue:
    if not isinstance(raw, str):
        raise ConfigError(f"Invalid value for configuration {name}: expected a string", name)
    text = raw.strip()
    # Never echo a secret, nor an unbounded amount of a peer's input, into an error message.
    shown = "[hidden]" if sensitive else text if len(text) <= 100 else text[:100] + "..."
    if config_type is ConfigType.BOOLEAN:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ConfigError(
                f"Invalid value {shown} for configuration {name}: Expected value to be either "
                "true or false", name)
        return lowered == "true"
    if config_type in _INT_BOUNDS:
        low, high = _INT_BOUNDS[config_type]
        # The length check keeps int() within Python's digit limit (and cheap) for any input.
        if len(text) > 25 or not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
            raise ConfigError(
                f"Invalid value {shown} for configuration {name}: Not a number of type "
                f"{config_type.name}", name)
        return int(text)
    if config_type is ConfigType.DOUBLE:
        if len(text) > 100 or not _DECIMAL.fullmatch(text):
            raise ConfigError(
                f"Invalid value {shown} for configuration {name}: Not a number of type DOUBLE",
                name)
        return float(text)
    if config_type is ConfigType.LIST:
        # Kafka keeps empty elements ("a,,b" has three); validators reject them where it matters.
        return () if not text else tuple(item.strip() for item in text.split(","))
    return text


def to_string(value: ConfigValue | None) -> str | None:
    """A value as Kafka prints it in DescribeConfigs (ConfigDef.convertToString)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _table(*defs: ConfigDef) -> dict[str, ConfigDef]:
    table: dict[str, ConfigDef] = {}
    for d in defs:
        assert d.name not in table, f"config {d.name} defined twice"
        if d.default is not None:
            d.parse(d.default)  # a default must satisfy its own validator
        table[d.name] = d
    return table


# Short names keep the tables below one config per few lines.
_H, _M, _L = Importance.HIGH, Importance.MEDIUM, Importance.LOW
_BOOL, _STR, _INT, _SHORT, _LONG, _DOUBLE, _LIST = (
    ConfigType.BOOLEAN, ConfigType.STRING, ConfigType.INT, ConfigType.SHORT, ConfigType.LONG,
    ConfigType.DOUBLE, ConfigType.LIST,
)
AT_LEAST_0, AT_LEAST_1 = Range(0), Range(1)
HOUR_MS, MINUTE_MS = 3_600_000, 60_000
_LONG_MAX = str(LONG_MAX)
_INT_MAX = str(INT_MAX)
CLEANUP_POLICIES = OneOf(("compact", "delete"))
COMPRESSION_TYPES = OneOf(("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"))
TIMESTAMP_TYPES = OneOf(("CreateTime", "LogAppendTime"))
SINGLE_NODE = "single node: the ISR is always this broker alone"
NO_TXN = "transactions are not built yet"
NO_DELETE_DELAY = ("segment files are deleted at once, without Kafka's .deleted rename and "
                   "delay")
NO_RECOMPRESSION = "batches are stored as the producer compressed them; no broker recompression"
SINGLE_NODE_RF = JosefDefault("3", "a single node cannot host 3 replicas; Kafka's default would "
                              "make the internal topic impossible to create")

BROKER_CONFIGS: dict[str, ConfigDef] = _table(
    # --- network -------------------------------------------------------------------------
    ConfigDef(
        "listeners", _STR, "PLAINTEXT://localhost:9092",
        "Comma-separated NAME://host:port addresses to accept connections on; an empty host "
        "means every interface. Listener names are security protocols; only PLAINTEXT is "
        "supported so far.", _H,
        josef_default=JosefDefault(
            "PLAINTEXT://:9092", "binds to loopback only, so a development broker is not "
            "exposed to the network by accident")),
    ConfigDef(
        "advertised.listeners", _STR, None,
        "Addresses given to clients in Metadata responses when they differ from `listeners` "
        "(NAT, containers). Unset: the listeners themselves, with an empty host replaced by "
        "this machine's name.", _H),
    ConfigDef(
        "node.id", _INT, "1",
        "This broker's id in Metadata responses and in meta.properties.", _H, AT_LEAST_0,
        josef_default=JosefDefault(
            "none (required)", "a single node needs no planning; 1 is what Kafka's quick-start "
            "uses")),
    ConfigDef(
        "broker.id", _INT, "-1",
        "Older name for node.id; used when node.id is not set, and must equal it when both "
        "are. -1 means unset.", _H, Range(-1)),
    ConfigDef(
        "socket.request.max.bytes", _INT, "104857600",
        "Largest request frame the broker accepts (100 MiB); a bigger size prefix closes the "
        "connection.", _H, AT_LEAST_1),
    ConfigDef(
        "queued.max.requests", _INT, "500",
        "Requests a connection may have in flight before the broker stops reading from it "
        "(backpressure).", _H, AT_LEAST_1, honoured=False,
        note="Josef has no shared request queue; a per-connection in-flight limit bounds "
        "memory instead"),
    ConfigDef(
        "max.connections", _INT, _INT_MAX,
        "Connections the broker accepts at once; further ones are closed at accept.", _M,
        AT_LEAST_0),
    ConfigDef(
        "max.connections.per.ip", _INT, _INT_MAX,
        "Connections one client IP address may hold at once.", _M, AT_LEAST_0),
    ConfigDef(
        "connections.max.idle.ms", _LONG, "600000",
        "A connection with no traffic for this long (10 minutes) is closed.", _M),
    ConfigDef(
        "fetch.max.bytes", _INT, "57671680",
        "Upper bound on the bytes one Fetch response returns, whatever the request asks "
        "(55 MiB).", _M, AT_LEAST_0),
    # --- topics ----------------------------------------------------------------------------
    ConfigDef(
        "num.partitions", _INT, "1",
        "Partitions of a topic created without an explicit count (auto-creation, or -1 in "
        "CreateTopics).", _M, AT_LEAST_1),
    ConfigDef(
        "default.replication.factor", _INT, "1",
        "Replication factor of a topic created without an explicit one; a single node accepts "
        "only 1.", _M, AT_LEAST_1),
    ConfigDef(
        "auto.create.topics.enable", _BOOL, "true",
        "Create a topic when a Metadata request names an unknown one and allows creation.", _H),
    ConfigDef(
        "delete.topic.enable", _BOOL, "true",
        "Allow DeleteTopics; when false it answers TOPIC_DELETION_DISABLED.", _H),
    # --- log storage -----------------------------------------------------------------------
    ConfigDef(
        "log.dir", _STR, "./data",
        "Directory holding the partition logs, used when log.dirs is not set.", _H,
        josef_default=JosefDefault(
            "/tmp/kafka-logs", "/tmp is emptied on reboot on many systems; Josef keeps data "
            "beside where it was started")),
    ConfigDef(
        "log.dirs", _STR, None,
        "Comma-separated directories holding the partition logs; overrides log.dir.", _H),
    ConfigDef(
        "message.max.bytes", _INT, "1048588",
        "Largest record batch the broker accepts (after compression); default for the topic "
        "config max.message.bytes.", _H, AT_LEAST_0, dynamic=True),
    ConfigDef(
        "log.segment.bytes", _INT, "1073741824",
        "Size at which a segment file is rolled (1 GiB); default for segment.bytes.", _H,
        Range(14), dynamic=True),
    ConfigDef(
        "log.roll.ms", _LONG, None,
        "Age at which a segment is rolled even if not full; default for segment.ms, "
        "overrides log.roll.hours.", _H, AT_LEAST_1, dynamic=True),
    ConfigDef(
        "log.roll.hours", _INT, "168",
        "log.roll.ms in hours (7 days); used when log.roll.ms is not set.", _H, AT_LEAST_1,
        dynamic=True),
    ConfigDef(
        "log.roll.jitter.ms", _LONG, None,
        "Largest random amount subtracted from the roll age, to spread rolls out; default "
        "for segment.jitter.ms.", _H, AT_LEAST_0, dynamic=True),
    ConfigDef(
        "log.roll.jitter.hours", _INT, "0",
        "log.roll.jitter.ms in hours; used when log.roll.jitter.ms is not set.", _H, AT_LEAST_0,
        dynamic=True),
    ConfigDef(
        "log.retention.ms", _LONG, None,
        "How long a closed segment is kept before deletion; -1 keeps it forever. Default for "
        "retention.ms; overrides log.retention.minutes and log.retention.hours.", _H,
        dynamic=True),
    ConfigDef(
        "log.retention.minutes", _INT, None,
        "log.retention.ms in minutes; used when log.retention.ms is not set.", _H, dynamic=True),
    ConfigDef(
        "log.retention.hours", _INT, "168",
        "log.retention.ms in hours (7 days); used when neither log.retention.ms nor "
        "log.retention.minutes is set.", _H, dynamic=True),
    ConfigDef(
        "log.retention.bytes", _LONG, "-1",
        "Largest size a partition log may grow to before its oldest segments are deleted; -1 "
        "is unlimited. Default for retention.bytes.", _H, dynamic=True),
    ConfigDef(
        "log.retention.check.interval.ms", _LONG, "300000",
        "How often logs are checked for segments to delete by retention (5 minutes).", _M,
        AT_LEAST_1),
    ConfigDef(
        "log.flush.offset.checkpoint.interval.ms", _INT, "60000",
        "How often the recovery-point, log-start-offset and high-watermark checkpoint files "
        "are rewritten (1 minute); a shorter interval shortens recovery after a crash.", _H,
        AT_LEAST_0,
        note="0 is taken as every maintenance tick (1 s); Kafka's separate "
        "log.flush.start.offset.checkpoint.interval.ms is covered by it"),
    ConfigDef(
        "log.cleaner.enable", _BOOL, "true",
        "Run the log cleaner, which compacts topics whose cleanup.policy includes compact "
        "(__consumer_offsets among them).", _M),
    ConfigDef(
        "log.cleaner.backoff.ms", _LONG, "15000",
        "How long the cleaner sleeps when no log needs cleaning (15 s).", _M, AT_LEAST_0),
    ConfigDef(
        "log.segment.delete.delay.ms", _LONG, "60000",
        "How long a deleted segment's files stay on disk (renamed .deleted) before removal, "
        "so in-progress reads finish. Default for file.delete.delay.ms.", _H, AT_LEAST_0,
        dynamic=True, honoured=False, note=NO_DELETE_DELAY),
    ConfigDef(
        "log.index.interval.bytes", _INT, "4096",
        "Bytes of log between two offset-index entries; default for index.interval.bytes.", _M,
        AT_LEAST_0, dynamic=True),
    ConfigDef(
        "log.index.size.max.bytes", _INT, "10485760",
        "Largest size of an offset or time index; a full index rolls the segment. Default for "
        "segment.index.bytes.", _M, Range(4), dynamic=True),
    ConfigDef(
        "log.flush.interval.messages", _LONG, _LONG_MAX,
        "fsync a partition log after this many appended records; 1 means fsync before every "
        "acknowledgement (group commit). Default for flush.messages.", _H, AT_LEAST_1,
        dynamic=True),
    ConfigDef(
        "log.flush.interval.ms", _LONG, None,
        "fsync a partition log when its oldest unflushed append is this old; default for "
        "flush.ms, overrides log.flush.scheduler.interval.ms.", _H, dynamic=True),
    ConfigDef(
        "log.flush.scheduler.interval.ms", _LONG, _LONG_MAX,
        "Fallback for log.flush.interval.ms when that is not set.", _H, dynamic=True,
        note="used only as that fallback; Josef's flusher has no separate polling interval"),
    ConfigDef(
        "log.cleanup.policy", _LIST, "delete",
        "delete, compact or both: what happens to old segments. Default for cleanup.policy.",
        _M, CLEANUP_POLICIES, dynamic=True),
    ConfigDef(
        "log.cleaner.delete.retention.ms", _LONG, "86400000",
        "How long tombstones stay in a compacted log (1 day); default for delete.retention.ms.",
        _M, AT_LEAST_0, dynamic=True),
    ConfigDef(
        "log.cleaner.min.compaction.lag.ms", _LONG, "0",
        "Records younger than this are never compacted; default for min.compaction.lag.ms.",
        _M, AT_LEAST_0, dynamic=True),
    ConfigDef(
        "log.cleaner.max.compaction.lag.ms", _LONG, _LONG_MAX,
        "A record older than this makes its segment eligible for compaction whatever the "
        "dirty ratio; default for max.compaction.lag.ms.", _M, AT_LEAST_1, dynamic=True),
    ConfigDef(
        "log.cleaner.min.cleanable.ratio", _DOUBLE, "0.5",
        "Share of a log that must be uncompacted before it is compacted; default for "
        "min.cleanable.dirty.ratio.", _M, Range(0, 1), dynamic=True),
    ConfigDef(
        "log.message.timestamp.type", _STR, "CreateTime",
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the "
        "broker's clock. Default for message.timestamp.type.", _M, TIMESTAMP_TYPES,
        dynamic=True),
    ConfigDef(
        "log.message.timestamp.before.max.ms", _LONG, _LONG_MAX,
        "Largest amount a CreateTime timestamp may lie in the past; default for "
        "message.timestamp.before.max.ms.", _M, AT_LEAST_0, dynamic=True, honoured=False,
        note="timestamps are not checked yet (LogConfig has no field for it)"),
    ConfigDef(
        "log.message.timestamp.after.max.ms", _LONG, _LONG_MAX,
        "Largest amount a CreateTime timestamp may lie in the future; default for "
        "message.timestamp.after.max.ms.", _M, AT_LEAST_0, dynamic=True, honoured=False,
        note="timestamps are not checked yet (LogConfig has no field for it)"),
    ConfigDef(
        "log.preallocate", _BOOL, "false",
        "Create segment files at full size up front; default for preallocate.", _M,
        dynamic=True, honoured=False,
        note="segments grow as written; preallocation helps only some Windows file systems"),
    ConfigDef(
        "log.message.downconversion.enable", _BOOL, "true",
        "Allow converting batches to old message formats for old consumers; default for "
        "message.downconversion.enable.", _L, dynamic=True, honoured=False,
        note="Josef serves only magic-2 batches to clients that read them; nothing to convert"),
    ConfigDef(
        "compression.type", _STR, "producer",
        "Final compression of stored batches: producer keeps what the producer chose. "
        "Default for the topic config of the same name.", _H, COMPRESSION_TYPES, dynamic=True,
        honoured=False, note=NO_RECOMPRESSION),
    ConfigDef(
        "min.insync.replicas", _INT, "1",
        "Replicas that must have a batch before an acks=all produce succeeds.", _H, AT_LEAST_1,
        dynamic=True, honoured=False, note=SINGLE_NODE),
    ConfigDef(
        "unclean.leader.election.enable", _BOOL, "false",
        "Allow a replica outside the ISR to become leader, losing data.", _H, dynamic=True,
        honoured=False, note=SINGLE_NODE),
    # --- groups, offsets, producers, transactions --------------------------------------------
    ConfigDef(
        "offsets.topic.num.partitions", _INT, "50",
        "Partitions of __consumer_offsets; do not change it after the topic exists.", _H,
        AT_LEAST_1),
    ConfigDef(
        "offsets.topic.replication.factor", _SHORT, "1",
        "Replication factor of __consumer_offsets.", _H, AT_LEAST_1, honoured=False,
        note=SINGLE_NODE, josef_default=SINGLE_NODE_RF),
    ConfigDef(
        "offsets.retention.minutes", _INT, "10080",
        "How long committed offsets of an empty group are kept (7 days).", _H, AT_LEAST_1),
    ConfigDef(
        "group.min.session.timeout.ms", _INT, "6000",
        "Smallest session timeout a consumer may ask for.", _M),
    ConfigDef(
        "group.max.session.timeout.ms", _INT, "1800000",
        "Largest session timeout a consumer may ask for (30 minutes).", _M),
    ConfigDef(
        "group.max.size", _INT, _INT_MAX,
        "Largest number of members in one consumer group.", _M, AT_LEAST_1),
    ConfigDef(
        "group.consumer.session.timeout.ms", _INT, "45000",
        "Session timeout of a KIP-848 consumer-group member (group.protocol=consumer).", _M,
        AT_LEAST_1),
    ConfigDef(
        "group.consumer.heartbeat.interval.ms", _INT, "5000",
        "Heartbeat interval the broker tells KIP-848 consumer-group members to use.", _M,
        AT_LEAST_1),
    ConfigDef(
        "group.consumer.max.size", _INT, _INT_MAX,
        "Largest number of members in one KIP-848 consumer group.", _M, AT_LEAST_1),
    ConfigDef(
        "group.consumer.assignors", _LIST, "uniform,range",
        "Server-side assignors of KIP-848 groups; the first is the default.", _M,
        OneOf(("uniform", "range"))),
    ConfigDef(
        "group.initial.rebalance.delay.ms", _INT, "3000",
        "How long the first rebalance of a new group waits for more members to join.", _M),
    ConfigDef(
        "producer.id.expiration.ms", _INT, "86400000",
        "How long the broker keeps an idle idempotent producer's state (1 day).", _L,
        AT_LEAST_1),
    ConfigDef(
        "producer.id.expiration.check.interval.ms", _INT, "600000",
        "How often producer states older than producer.id.expiration.ms are removed "
        "(10 minutes).", _L, AT_LEAST_1),
    ConfigDef(
        "transaction.max.timeout.ms", _INT, "900000",
        "Largest transaction timeout a producer may ask for (15 minutes).", _H, AT_LEAST_1,
        honoured=False, note="InitProducerId checks it; " + NO_TXN),
    ConfigDef(
        "transaction.state.log.num.partitions", _INT, "50",
        "Partitions of __transaction_state.", _H, AT_LEAST_1, honoured=False, note=NO_TXN),
    ConfigDef(
        "transaction.state.log.replication.factor", _SHORT, "1",
        "Replication factor of __transaction_state.", _H, AT_LEAST_1, honoured=False,
        note=NO_TXN, josef_default=SINGLE_NODE_RF),
    ConfigDef(
        "transaction.state.log.min.isr", _INT, "1",
        "min.insync.replicas of __transaction_state.", _H, AT_LEAST_1, honoured=False,
        note=NO_TXN, josef_default=JosefDefault(
            "2", "a single node has one in-sync replica")),
    ConfigDef(
        "transactional.id.expiration.ms", _INT, "604800000",
        "How long an idle transactional id is kept (7 days).", _H, AT_LEAST_1, honoured=False,
        note=NO_TXN),
)


def _synonyms(*synonyms: Synonym | str) -> tuple[Synonym, ...]:
    return tuple(s if isinstance(s, Synonym) else Synonym(s) for s in synonyms)


TOPIC_CONFIGS: dict[str, ConfigDef] = _table(
    ConfigDef(
        "cleanup.policy", _LIST, "delete",
        "delete removes old segments by retention; compact keeps the latest record of each "
        "key; both may be given.", _M, CLEANUP_POLICIES,
        _synonyms("log.cleanup.policy")),
    ConfigDef(
        "compression.type", _STR, "producer",
        "Compression of stored batches; producer keeps what the producer chose.", _M,
        COMPRESSION_TYPES, _synonyms("compression.type"), honoured=False,
        note=NO_RECOMPRESSION),
    ConfigDef(
        "delete.retention.ms", _LONG, "86400000",
        "How long tombstones stay in a compacted log, so slow readers still see deletes.", _M,
        AT_LEAST_0, _synonyms("log.cleaner.delete.retention.ms")),
    ConfigDef(
        "file.delete.delay.ms", _LONG, "60000",
        "How long a deleted segment's files stay on disk before removal.", _M, AT_LEAST_0,
        _synonyms("log.segment.delete.delay.ms"), honoured=False, note=NO_DELETE_DELAY),
    ConfigDef(
        "flush.messages", _LONG, _LONG_MAX,
        "fsync after this many records; 1 means fsync before every acknowledgement.", _M,
        AT_LEAST_1, _synonyms("log.flush.interval.messages")),
    ConfigDef(
        "flush.ms", _LONG, _LONG_MAX,
        "fsync when the oldest unflushed append is this old.", _M, AT_LEAST_0,
        _synonyms("log.flush.interval.ms", "log.flush.scheduler.interval.ms")),
    ConfigDef(
        "index.interval.bytes", _INT, "4096",
        "Bytes of log between two offset-index entries.", _M, AT_LEAST_0,
        _synonyms("log.index.interval.bytes")),
    ConfigDef(
        "max.compaction.lag.ms", _LONG, _LONG_MAX,
        "Longest time a record may stay uncompacted.", _M, AT_LEAST_1,
        _synonyms("log.cleaner.max.compaction.lag.ms")),
    ConfigDef(
        "max.message.bytes", _INT, "1048588",
        "Largest record batch accepted (after compression); bigger ones get "
        "MESSAGE_TOO_LARGE.", _M, AT_LEAST_0, _synonyms("message.max.bytes")),
    ConfigDef(
        "message.downconversion.enable", _BOOL, "true",
        "Allow converting batches to old message formats for old consumers.", _L,
        synonyms=_synonyms("log.message.downconversion.enable"),
        honoured=False,
        note="Josef serves only magic-2 batches to clients that read them; nothing to convert"),
    ConfigDef(
        "message.timestamp.after.max.ms", _LONG, _LONG_MAX,
        "Largest amount a CreateTime timestamp may lie in the future.", _M, AT_LEAST_0,
        _synonyms("log.message.timestamp.after.max.ms"),
        honoured=False, note="timestamps are not checked yet (LogConfig has no field for it)"),
    ConfigDef(
        "message.timestamp.before.max.ms", _LONG, _LONG_MAX,
        "Largest amount a CreateTime timestamp may lie in the past.", _M, AT_LEAST_0,
        _synonyms("log.message.timestamp.before.max.ms"),
        honoured=False, note="timestamps are not checked yet (LogConfig has no field for it)"),
    ConfigDef(
        "message.timestamp.type", _STR, "CreateTime",
        "CreateTime keeps the producer's timestamps; LogAppendTime uses the broker's clock.", _M,
        TIMESTAMP_TYPES,
        _synonyms("log.message.timestamp.type")),
    ConfigDef(
        "min.cleanable.dirty.ratio", _DOUBLE, "0.5",
        "Share of the log that must be uncompacted before compaction runs.", _M, Range(0, 1),
        _synonyms("log.cleaner.min.cleanable.ratio")),
    ConfigDef(
        "min.compaction.lag.ms", _LONG, "0",
        "Records younger than this are never compacted.", _M, AT_LEAST_0,
        _synonyms("log.cleaner.min.compaction.lag.ms")),
    ConfigDef(
        "min.insync.replicas", _INT, "1",
        "Replicas that must have a batch before an acks=all produce succeeds.", _M, AT_LEAST_1,
        _synonyms("min.insync.replicas"), honoured=False,
        note=SINGLE_NODE),
    ConfigDef(
        "preallocate", _BOOL, "false",
        "Create segment files at full size up front.", _M,
        synonyms=_synonyms("log.preallocate"), honoured=False,
        note="segments grow as written; preallocation helps only some Windows file systems"),
    ConfigDef(
        "retention.bytes", _LONG, "-1",
        "Largest size of a partition log before its oldest segments are deleted; -1 is "
        "unlimited.", _M, synonyms=_synonyms("log.retention.bytes")),
    ConfigDef(
        "retention.ms", _LONG, "604800000",
        "How long a closed segment is kept (7 days); -1 keeps it forever.", _M, Range(-1),
        _synonyms("log.retention.ms", Synonym("log.retention.minutes", MINUTE_MS),
                  Synonym("log.retention.hours", HOUR_MS))),
    ConfigDef(
        "segment.bytes", _INT, "1073741824",
        "Size at which a segment file is rolled.", _M, Range(14),
        _synonyms("log.segment.bytes")),
    ConfigDef(
        "segment.index.bytes", _INT, "10485760",
        "Largest size of a segment's offset or time index; a full index rolls the segment.",
        _M, Range(4), _synonyms("log.index.size.max.bytes")),
    ConfigDef(
        "segment.jitter.ms", _LONG, "0",
        "Largest random amount subtracted from segment.ms, so segments do not all roll at "
        "once.", _M, AT_LEAST_0,
        _synonyms("log.roll.jitter.ms", Synonym("log.roll.jitter.hours", HOUR_MS))),
    ConfigDef(
        "segment.ms", _LONG, "604800000",
        "Age at which a segment is rolled even if not full (7 days).", _M, AT_LEAST_1,
        _synonyms("log.roll.ms", Synonym("log.roll.hours", HOUR_MS))),
    ConfigDef(
        "unclean.leader.election.enable", _BOOL, "false",
        "Allow a replica outside the ISR to become leader, losing data.", _M,
        synonyms=_synonyms("unclean.leader.election.enable"),
        honoured=False, note=SINGLE_NODE),
)

# Every broker synonym of a topic config is itself a broker config and dynamic.
assert all(
    s.name in BROKER_CONFIGS and BROKER_CONFIGS[s.name].dynamic
    for d in TOPIC_CONFIGS.values() for s in d.synonyms
)
_BROKER_DEFAULTS = MappingProxyType({n: d.default_value() for n, d in BROKER_CONFIGS.items()})
# Security protocols Josef's listeners speak (Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).
SUPPORTED_SECURITY_PROTOCOLS = frozenset({"PLAINTEXT"})
KAFKA_SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


class Listener(NamedTuple):
    name: str  # listener name == security protocol (no listener.security.protocol.map yet)
    host: str  # "" = every interface; IPv6 without brackets
    port: int


_LISTENER = re.compile(r"([A-Za-z0-9_]+)://(\[[0-9A-Fa-f:.]+\]|[^:/\[\]\s]*):([0-9]{1,5})")


def parse_listeners(name: str, text: str) -> tuple[Listener, ...]:
    """Parse Kafka's `NAME://host:port[,NAME://host:port]` listener syntax."""
    listeners: list[Listener] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = _LISTENER.fullmatch(item)
        if match is None:
            raise ConfigError(
                f"Invalid value {item} for configuration {name}: expected NAME://host:port",
                name)
        listener_name, host, port = match.group(1).upper(), match.group(2), int(match.group(3))
        if port > 65535:
            raise ConfigError(f"Invalid port {port} in {name}: {item}", name)
        if listener_name not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"No security protocol defined for listener {listener_name} in {name}", name)
        if listener_name not in SUPPORTED_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"Listener {listener_name} in {name}: Josef supports only "
                f"{', '.join(sorted(SUPPORTED_SECURITY_PROTOCOLS))} so far", name)
        if any(existing.name == listener_name for existing in listeners):
            raise ConfigError(f"Each listener must have a different name, {name}: {text}", name)
        listeners.append(Listener(listener_name, host.strip("[]"), port))
    if not listeners:
        raise ConfigError(f"{name} must name at least one listener", name)
    return tuple(listeners)


class BrokerConfig:
    """One broker's resolved settings. Immutable; `with_dynamic` returns an updated copy.

    `static` holds the merged properties file, JOSEF_* environment and --override values
    (Kafka calls all of them STATIC_BROKER_CONFIG); `origins` says for the start-up banner where
    each static value came from. Unknown names are kept in `unknown` (Kafka logs and ignores
    them) so the caller can warn.
    """

    def __init__(
        self,
        static: Mapping[str, str] | None = None,
        *,
        origins: Mapping[str, str] | None = None,
        dynamic_broker: Mapping[str, str] | None = None,
        dynamic_default: Mapping[str, str] | None = None,
    ) -> None:
        self._static_raw = dict(static or {})
        self.static = MappingProxyType(self._parse_layer(self._static_raw, dynamic_only=False))
        self.dynamic_broker = MappingProxyType(
            self._parse_layer(dynamic_broker or {}, dynamic_only=True))
        self.dynamic_default = MappingProxyType(
            self._parse_layer(dynamic_default or {}, dynamic_only=True))
        self.origins = MappingProxyType(dict(origins or {}))
        self.unknown: tuple[str, ...] = tuple(
            sorted(name for name in (static or {}) if name not in BROKER_CONFIGS))
        self._defaults = _BROKER_DEFAULTS
        self.listeners = parse_listeners("listeners", self._str("listeners"))
        self._advertised = self._check_advertised()
        self._resolved_advertised: tuple[Listener, ...] | None = None
        self.node_id = self._resolve_node_id()
        self.log_dirs = self._resolve_log_dirs()

    @staticmethod
    def _parse_layer(raw: Mapping[str, str], dynamic_only: bool) -> dict[str, ConfigValue]:
        parsed: dict[str, ConfigValue] = {}
        for name, text in raw.items():
            definition = BROKER_CONFIGS.get(name)
            if definition is None:
                if dynamic_only:
                    raise ConfigError(f"Unknown broker config name: {name}", name)
                continue
            if dynamic_only and not definition.dynamic:
                raise ConfigError(f"Cannot update these configs dynamically: {name}", name)
            parsed[name] = definition.parse(text)
        return parsed

    def with_dynamic(
        self,
        dynamic_broker: Mapping[str, str] | None = None,
        dynamic_default: Mapping[str, str] | None = None,
    ) -> BrokerConfig:
        """A copy with these dynamic layers (each replaces the previous one entirely)."""
        return BrokerConfig(
            self._static_raw, origins=self.origins,
            dynamic_broker=dynamic_broker if dynamic_broker is not None else
            {n: str(to_string(v)) for n, v in self.dynamic_broker.items()},
            dynamic_default=dynamic_default if dynamic_default is not None else
            {n: str(to_string(v)) for n, v in self.dynamic_default.items()},
        )

    # --- generic access -------------------------------------------------------------------
    def layers(self) -> tuple[tuple[ConfigSource, Mapping[str, ConfigValue | None]], ...]:
        """The value layers, highest precedence first, as DescribeConfigs names them."""
        return (
            (ConfigSource.DYNAMIC_BROKER_CONFIG, self.dynamic_broker),
            (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, self.dynamic_default),
            (ConfigSource.STATIC_BROKER_CONFIG, self.static),
            (ConfigSource.DEFAULT_CONFIG, self._defaults),
        )

    def lookup(self, name: str) -> tuple[ConfigValue | None, ConfigSource]:
        """The effective value of a broker config and the layer it came from."""
        if name not in BROKER_CONFIGS:
            raise KeyError(name)
        for source, layer in self.layers():
            value = layer.get(name)
            if value is not None:
                return value, source
        return None, ConfigSource.DEFAULT_CONFIG

    def get(self, name: str) -> ConfigValue | None:
        return self.lookup(name)[0]

    def _int(self, name: str) -> int:
        value = self.get(name)
        assert isinstance(value, int) and not isinstance(value, bool), name
        return value

    def _bool(self, name: str) -> bool:
        value = self.get(name)
        assert isinstance(value, bool), name
        return value

    def _str(self, name: str) -> str:
        value = self.get(name)
        assert isinstance(value, str), name
        return value

    # --- cross-field resolution -----------------------------------------------------------
    def _check_advertised(self) -> tuple[Listener, ...] | None:
        text = self.get("advertised.listeners")
        if text is None:
            advertised = None
            candidates = self.listeners
        else:
            assert isinstance(text, str)
            advertised = parse_listeners("advertised.listeners", text)
            names = {listener.name for listener in self.listeners}
            extra = [a.name for a in advertised if a.name not in names]
            if extra:
                raise ConfigError(
                    "advertised.listeners listener names must be equal to or a subset of the "
                    f"ones defined in listeners; not in listeners: {', '.join(extra)}",
                    "advertised.listeners")
            candidates = advertised
        for listener in candidates:
            if listener.host in ("0.0.0.0", "::"):
                raise ConfigError(
                    f"advertised.listeners cannot use the nonroutable meta-address "
                    f"{listener.host}; set advertised.listeners to a routable address",
                    "advertised.listeners")
        return advertised

    def _resolve_node_id(self) -> int:
        node_value, node_source = self.lookup("node.id")
        broker_id = self._int("broker.id")
        assert isinstance(node_value, int)
        if broker_id == -1:
            return node_value
        if node_source is ConfigSource.DEFAULT_CONFIG:
            return broker_id
        if broker_id != node_value:
            raise ConfigError(
                f"If both node.id ({node_value}) and broker.id ({broker_id}) are set they "
                "must be equal", "broker.id")
        return node_value

    def _resolve_log_dirs(self) -> tuple[Path, ...]:
        text = self.get("log.dirs")
        if text is None:
            return (Path(self._str("log.dir")),)
        assert isinstance(text, str)
        dirs = tuple(Path(part.strip()) for part in text.split(",") if part.strip())
        if not dirs:
            raise ConfigError("log.dirs names no directory", "log.dirs")
        return dirs

    # --- typed attributes -----------------------------------------------------------------
    @property
    def advertised_listeners(self) -> tuple[Listener, ...]:
        """What Metadata tells clients: advertised.listeners, else the listeners with an
        empty host replaced by this machine's fully qualified name (as Kafka does)."""
        if self._advertised is not None:
            return self._advertised
        if self._resolved_advertised is None:  # resolve the host name once: it may hit DNS
            self._resolved_advertised = tuple(
                listener._replace(host=listener.host or socket.getfqdn())
                for listener in self.listeners
            )
        return self._resolved_advertised

    @property
    def num_partitions(self) -> int:
        return self._int("num.partitions")

    @property
    def default_replication_factor(self) -> int:
        return self._int("default.replication.factor")

    @property
    def auto_create_topics_enable(self) -> bool:
        return self._bool("auto.create.topics.enable")

    @property
    def delete_topic_enable(self) -> bool:
        return self._bool("delete.topic.enable")

    @property
    def message_max_bytes(self) -> int:
        return self._int("message.max.bytes")

    @property
    def socket_request_max_bytes(self) -> int:
        return self._int("socket.request.max.bytes")

    @property
    def queued_max_requests(self) -> int:
        return self._int("queued.max.requests")

    @property
    def max_connections(self) -> int:
        return self._int("max.connections")

    @property
    def max_connections_per_ip(self) -> int:
        return self._int("max.connections.per.ip")

    @property
    def connections_max_idle_ms(self) -> int:
        return self._int("connections.max.idle.ms")

    @property
    def fetch_max_bytes(self) -> int:
        return self._int("fetch.max.bytes")

    @property
    def log_retention_check_interval_ms(self) -> int:
        return self._int("log.retention.check.interval.ms")

    @property
    def log_flush_offset_checkpoint_interval_ms(self) -> int:
        return self._int("log.flush.offset.checkpoint.interval.ms")

    @property
    def log_cleaner_enable(self) -> bool:
        return self._bool("log.cleaner.enable")

    @property
    def log_cleaner_backoff_ms(self) -> int:
        return self._int("log.cleaner.backoff.ms")

    @property
    def offsets_topic_num_partitions(self) -> int:
        return self._int("offsets.topic.num.partitions")

    @property
    def offsets_topic_replication_factor(self) -> int:
        return self._int("offsets.topic.replication.factor")

    @property
    def offsets_retention_minutes(self) -> int:
        return self._int("offsets.retention.minutes")

    @property
    def group_min_session_timeout_ms(self) -> int:
        return self._int("group.min.session.timeout.ms")

    @property
    def group_max_session_timeout_ms(self) -> int:
        return self._int("group.max.session.timeout.ms")

    @property
    def group_max_size(self) -> int:
        return self._int("group.max.size")

    @property
    def group_initial_rebalance_delay_ms(self) -> int:
        return self._int("group.initial.rebalance.delay.ms")

    @property
    def group_consumer_session_timeout_ms(self) -> int:
        return self._int("group.consumer.session.timeout.ms")

    @property
    def group_consumer_heartbeat_interval_ms(self) -> int:
        return self._int("group.consumer.heartbeat.interval.ms")

    @property
    def group_consumer_max_size(self) -> int:
        return self._int("group.consumer.max.size")

    @property
    def group_consumer_assignors(self) -> tuple[str, ...]:
        value = self.get("group.consumer.assignors")
        assert isinstance(value, list | tuple) and value, "group.consumer.assignors"
        return tuple(str(a) for a in value)

    @property
    def producer_id_expiration_ms(self) -> int:
        return self._int("producer.id.expiration.ms")

    @property
    def producer_id_expiration_check_interval_ms(self) -> int:
        return self._int("producer.id.expiration.check.interval.ms")

    @property
    def transaction_max_timeout_ms(self) -> int:
        return self._int("transaction.max.timeout.ms")

    @property
    def transaction_state_log_num_partitions(self) -> int:
        return self._int("transaction.state.log.num.partitions")

    @property
    def transaction_state_log_replication_factor(self) -> int:
        return self._int("transaction.state.log.replication.factor")

    @property
    def transaction_state_log_min_isr(self) -> int:
        return self._int("transaction.state.log.min.isr")

    @property
    def transactional_id_expiration_ms(self) -> int:
        return self._int("transactional.id.expiration.ms")

    @property
    def default_log_config(self) -> LogConfig:
        """The LogConfig of a topic without overrides."""
        return resolve_topic_config(self, {})


# --- topic configs --------------------------------------------------------------------------

def validate_topic_overrides(overrides: Mapping[str, str | None]) -> dict[str, ConfigValue]:
    """Parse a topic's overrides one by one (CreateTopics configs, AlterConfigs on a TOPIC
    resource). Raises ConfigError for an unknown name, a null value or an invalid value.
    `resolve_topic_config` also checks constraints between configs: use it before storing."""
    parsed: dict[str, ConfigValue] = {}
    for name, text in overrides.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise ConfigError(f"Unknown topic config name: {name}", name)
        if text is None:
            raise ConfigError(f"Null value not supported for topic configs: {name}", name)
        parsed[name] = definition.parse(text)
    return parsed


def _broker_default_for(
    broker: BrokerConfig, definition: ConfigDef
) -> tuple[ConfigValue | None, ConfigSource]:
    """The first synonym with a value (name-major, as Kafka's KafkaConfig resolves them)."""
    for synonym in definition.synonyms:
        value, source = broker.lookup(synonym.name)
        if value is None:
            continue
        if synonym.scale != 1:
            assert isinstance(value, int)
            # Kafka: a negative retention in minutes/hours means unlimited (-1).
            value = -1 if value < 0 else value * synonym.scale
        return value, source
    return definition.default_value(), ConfigSource.DEFAULT_CONFIG


def resolve_topic_values(
    broker: BrokerConfig, overrides: Mapping[str, str | None]
) -> dict[str, tuple[ConfigValue | None, ConfigSource]]:
    """Every topic config's effective value and the layer that supplied it."""
    parsed = validate_topic_overrides(overrides)
    values: dict[str, tuple[ConfigValue | None, ConfigSource]] = {}
    for name, definition in TOPIC_CONFIGS.items():
        if name in parsed:
            values[name] = (parsed[name], ConfigSource.DYNAMIC_TOPIC_CONFIG)
        else:
            values[name] = _broker_default_for(broker, definition)
    minimum = values["min.compaction.lag.ms"][0]
    maximum = values["max.compaction.lag.ms"][0]
    assert isinstance(minimum, int) and isinstance(maximum, int)
    if minimum > maximum:
        raise ConfigError(
            f"conflict topic config setting min.compaction.lag.ms ({minimum}) > "
            f"max.compaction.lag.ms ({maximum})", "min.compaction.lag.ms")
    return values


def resolve_topic_config(broker: BrokerConfig, overrides: Mapping[str, str | None]) -> LogConfig:
    """The storage layer's LogConfig for a topic with these overrides (ConfigError if any is
    invalid or unknown)."""
    v = {name: value for name, (value, _) in resolve_topic_values(broker, overrides).items()}
    return LogConfig(
        segment_bytes=_as_int(v["segment.bytes"]),
        segment_ms=_as_int(v["segment.ms"]),
        segment_jitter_ms=_as_int(v["segment.jitter.ms"]),
        segment_index_bytes=_as_int(v["segment.index.bytes"]),
        index_interval_bytes=_as_int(v["index.interval.bytes"]),
        flush_messages=_as_int(v["flush.messages"]),
        flush_ms=_as_int(v["flush.ms"]),
        retention_ms=_as_int(v["retention.ms"]),
        retention_bytes=_as_int(v["retention.bytes"]),
        cleanup_policy=frozenset(_as_tuple(v["cleanup.policy"])),
        delete_retention_ms=_as_int(v["delete.retention.ms"]),
        min_compaction_lag_ms=_as_int(v["min.compaction.lag.ms"]),
        max_compaction_lag_ms=_as_int(v["max.compaction.lag.ms"]),
        min_cleanable_dirty_ratio=float(_as_number(v["min.cleanable.dirty.ratio"])),
        message_timestamp_type=str(v["message.timestamp.type"]),
        max_message_bytes=_as_int(v["max.message.bytes"]),
        file_delete_delay_ms=_as_int(v["file.delete.delay.ms"]),
    )


def _as_int(value: ConfigValue | None) -> int:
    assert isinstance(value, int) and not isinstance(value, bool)
    return value


def _as_number(value: ConfigValue | None) -> int | float:
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return value


def _as_tuple(value: ConfigValue | None) -> tuple[str, ...]:
    assert isinstance(value, tuple)
    return value


# --- IncrementalAlterConfigs ---------------------------------------------------------------

def incremental_alter(
    resource_type: ConfigResourceType,
    current: Mapping[str, str],
    operations: Iterable[tuple[str, AlterConfigOp, str | None]],
) -> dict[str, str]:
    """Apply IncrementalAlterConfigs operations (name, op, value) to a resource's current
    overrides (a topic's overrides, or a broker's dynamic layer) and return the new overrides,
    unvalidated: pass them to `validate_topic_overrides` / `BrokerConfig.with_dynamic`.
    As Kafka: APPEND and SUBTRACT apply only to LIST configs and start from the config's
    default when it has no override; APPEND adds only values not yet present; SUBTRACT removes
    every listed value; DELETE of an absent override is not an error."""
    table = TOPIC_CONFIGS if resource_type is ConfigResourceType.TOPIC else BROKER_CONFIGS
    scope = "topic" if resource_type is ConfigResourceType.TOPIC else "broker"
    result = dict(current)
    for name, op, value in operations:
        definition = table.get(name)
        if definition is None:
            raise ConfigError(f"Unknown {scope} config name: {name}", name)
        if op is AlterConfigOp.DELETE:
            result.pop(name, None)
            continue
        if value is None:
            raise ConfigError(f"Null value not supported for {scope} configs: {name}", name)
        if op is AlterConfigOp.SET:
            result[name] = value
            continue
        if definition.type is not ConfigType.LIST:
            verb = "append" if op is AlterConfigOp.APPEND else "subtract"
            raise ConfigError(f"Config value {verb} is not allowed for config key: {name}", name)
        old = result.get(name, definition.default)
        old_items = [item for item in (old or "").split(",") if item]
        given = [item.strip() for item in value.split(",") if item.strip()]
        if op is AlterConfigOp.APPEND:
            new_items = old_items + [item for item in given if item not in old_items]
        else:
            new_items = [item for item in old_items if item not in given]
        result[name] = ",".join(new_items)
    return result


# --- DescribeConfigs ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ConfigSynonymEntry:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One DescribeConfigs result entry (fields named as in DescribeConfigsResponse)."""

    name: str
    value: str | None  # None for sensitive configs and unset ones
    source: ConfigSource
    is_default: bool  # v0 field: source is DEFAULT_CONFIG
    read_only: bool
    is_sensitive: bool
    synonyms: tuple[ConfigSynonymEntry, ...]
    config_type: ConfigType
    documentation: str


def _documentation(definition: ConfigDef) -> str:
    if definition.honoured:
        return definition.doc
    return f"{definition.doc} (Josef: accepted, no effect: {definition.note}.)"


def _broker_synonyms(
    broker: BrokerConfig, names: Iterable[str], sensitive: bool, sources: Collection[ConfigSource]
) -> list[ConfigSynonymEntry]:
    entries: list[ConfigSynonymEntry] = []
    for source, layer in broker.layers():
        if source not in sources:
            continue
        for name in names:
            value = layer.get(name)
            if value is not None:
                entries.append(
                    ConfigSynonymEntry(name, None if sensitive else to_string(value), source))
    return entries


_ALL_BROKER_SOURCES = frozenset(
    {ConfigSource.DYNAMIC_BROKER_CONFIG, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
     ConfigSource.STATIC_BROKER_CONFIG, ConfigSource.DEFAULT_CONFIG})


def describe_topic_config(
    broker: BrokerConfig,
    overrides: Mapping[str, str | None],
    names: Collection[str] | None = None,
) -> list[ConfigEntry]:
    """DescribeConfigs entries for a TOPIC resource, sorted by name. `names` filters (unknown
    names are left out, as Kafka does); None means every topic config."""
    values = resolve_topic_values(broker, overrides)
    entries: list[ConfigEntry] = []
    for name, definition in sorted(TOPIC_CONFIGS.items()):
        if names is not None and name not in names:
            continue
        value, source = values[name]
        sensitive = definition.is_sensitive
        text = None if sensitive else to_string(value)
        synonyms = _broker_synonyms(
            broker, [s.name for s in definition.synonyms], sensitive, _ALL_BROKER_SOURCES)
        if source is ConfigSource.DYNAMIC_TOPIC_CONFIG:
            synonyms.insert(0, ConfigSynonymEntry(name, text, source))
        entries.append(ConfigEntry(
            name=name, value=text, source=source,
            is_default=source is ConfigSource.DEFAULT_CONFIG, read_only=False,
            is_sensitive=sensitive, synonyms=tuple(synonyms), config_type=definition.type,
            documentation=_documentation(definition),
        ))
    return entries


def _broker_synonym_names(name: str) -> list[str]:
    """Kafka's brokerConfigSynonyms: the names that feed the same setting, precedence order."""
    for group in (
        ("log.roll.ms", "log.roll.hours"),
        ("log.roll.jitter.ms", "log.roll.jitter.hours"),
        ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
        ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    ):
        if name in group:
            return list(group)
    return [name]


def describe_broker_config(
    broker: BrokerConfig, names: Collection[str] | None = None, per_broker: bool = True
) -> list[ConfigEntry]:
    """DescribeConfigs entries for a BROKER resource, sorted by name. `per_broker` False
    describes the cluster-default resource (empty resource name): only dynamic defaults."""
    sources = _ALL_BROKER_SOURCES if per_broker else {ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG}
    entries: list[ConfigEntry] = []
    for name, definition in sorted(BROKER_CONFIGS.items()):
        if names is not None and name not in names:
            continue
        if not per_broker and name not in broker.dynamic_default:
            continue
        sensitive = definition.is_sensitive
        synonyms = _broker_synonyms(broker, _broker_synonym_names(name), sensitive, sources)
        # As Kafka: drop higher-precedence synonyms listed before this config's own name.
        while synonyms and synonyms[0].name != name:
            synonyms.pop(0)
        source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
        value = (broker.dynamic_default.get(name) if not per_broker else broker.get(name))
        entries.append(ConfigEntry(
            name=name, value=None if sensitive else to_string(value), source=source,
            is_default=source is ConfigSource.DEFAULT_CONFIG, read_only=not definition.dynamic,
            is_sensitive=sensitive, synonyms=tuple(synonyms), config_type=definition.type,
            documentation=_documentation(definition),
        ))
    return entries
