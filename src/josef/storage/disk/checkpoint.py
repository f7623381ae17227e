"""Kafka's offset checkpoint files, replaced atomically.

Format (Kafka's OffsetCheckpointFile, version 0), one file per log dir and kind:

    0
    <count>
    <topic> <partition> <offset>
    ...

Contract: `write_offsets` writes a temporary file, fsyncs it, renames it over the target and
fsyncs the directory, so a reader sees the old or the new file, never a mix. `read_offsets`
returns {} for a missing file and raises `CorruptCheckpoint` for one it cannot parse (Kafka
fails the log dir then; callers decide).
"""

from __future__ import annotations

from collections.abc import Mapping

from josef.storage.errors import KafkaStorageError
from josef.storage.files import write_atomically

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_CHECKPOINT = "replication-offset-checkpoint"  # high watermarks
CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"
_VERSION = 0

TopicPartitionKey = tuple[str, int]


class CorruptCheckpoint(KafkaStorageError):
    """A checkpoint file that does not follow the format."""


def write_offsets(path: str, offsets: Mapping[TopicPartitionKey, int]) -> None:
    lines = [str(_VERSION), str(len(offsets))]
    lines += [f"{topic} {partition} {offset}" for (topic, partition), offset in offsets.items()]
    write_atomically(path, ("\n".join(lines) + "\n").encode())


def read_offsets(path: str) -> dict[TopicPartitionKey, int]:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="strict")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptCheckpoint(f"cannot read {path}: {err}") from err
    lines = text.splitlines()
    try:
        if len(lines) < 2 or int(lines[0]) != _VERSION:
            raise ValueError("bad header")
        count = int(lines[1])
        if count != len(lines) - 2:
            raise ValueError(f"declares {count} entries, holds {len(lines) - 2}")
        offsets: dict[TopicPartitionKey, int] = {}
        for line in lines[2:]:
            topic, partition, offset = line.split(" ")
            offsets[(topic, int(partition))] = int(offset)
    except ValueError as err:
        raise CorruptCheckpoint(f"{path} is not an offset checkpoint: {err}") from err
    return offsets
