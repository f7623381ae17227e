"""Keys and values of `__consumer_offsets` records, in Kafka's own formats.

Every key and value is an int16 version followed by the generated internal struct of that
version (Kafka's GroupCoordinatorRecordSerde): key versions 0-1 are OffsetCommitKey, 2 is
GroupMetadataKey; versions 3+ belong to the KIP-848 consumer-group records, which this module
reports as `None` so that the classic coordinator skips them. A value of `None` is a tombstone.

Written versions follow Kafka 2.3+: OffsetCommitKey v1, GroupMetadataKey v2, GroupMetadataValue
v3, OffsetCommitValue v3, or v1 when the commit carries an explicit expire timestamp (the only
version with that field). Decoding accepts every version. Malformed bytes raise ProtocolError.

`partition_for` maps a group id to its `__consumer_offsets` partition exactly as Kafka does
(Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions), so tools that read the topic find
the group where they expect it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from josef.protocol._generated.internal.group_metadata_key import GroupMetadataKey
from josef.protocol._generated.internal.group_metadata_value import GroupMetadataValue
from josef.protocol._generated.internal.offset_commit_key import OffsetCommitKey
from josef.protocol._generated.internal.offset_commit_value import OffsetCommitValue
from josef.protocol.exceptions import ProtocolError
from josef.storage.api import TopicPartition

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
GROUP_METADATA_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE = 1

_VERSION = struct.Struct(">h")


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One record for `__consumer_offsets`: key bytes and value bytes (None = tombstone)."""

    key: bytes
    value: bytes | None


def java_string_hash(s: str) -> int:
    """Java's String.hashCode: h = 31*h + c over UTF-16 code units, as a signed int32."""
    raw = s.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(raw), 2):
        h = (31 * h + ((raw[i] << 8) | raw[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """The `__consumer_offsets` partition of a group (Kafka's Utils.abs maps INT_MIN to 0)."""
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % num_partitions


def _versioned(version: int, body: bytes) -> bytes:
    return _VERSION.pack(version) + body


def offset_commit_key(group_id: str, tp: TopicPartition) -> bytes:
    key = OffsetCommitKey(group=group_id, topic=tp.topic, partition=tp.partition)
    return _versioned(OFFSET_COMMIT_KEY_VERSION, key.encode(OFFSET_COMMIT_KEY_VERSION))


def group_metadata_key(group_id: str) -> bytes:
    key = GroupMetadataKey(group=group_id)
    return _versioned(GROUP_METADATA_KEY_VERSION, key.encode(GROUP_METADATA_KEY_VERSION))


def encode_offset_commit_value(value: OffsetCommitValue) -> bytes:
    version = (
        OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRE
        if value.expire_timestamp != -1
        else OFFSET_COMMIT_VALUE_VERSION
    )
    return _versioned(version, value.encode(version))


def encode_group_metadata_value(value: GroupMetadataValue) -> bytes:
    return _versioned(GROUP_METADATA_VALUE_VERSION, value.encode(GROUP_METADATA_VALUE_VERSION))


def _split(buf: bytes | memoryview, what: str) -> tuple[int, memoryview]:
    view = memoryview(buf)
    if len(view) < 2:
        raise ProtocolError(f"{what} of {len(view)} bytes has no version")
    (version,) = _VERSION.unpack_from(view, 0)
    return version, view[2:]


def decode_key(buf: bytes | memoryview) -> OffsetCommitKey | GroupMetadataKey | None:
    """The key's struct; None for key versions of other record types (KIP-848, 3+)."""
    version, body = _split(buf, "key")
    if 0 <= version <= 1:
        return OffsetCommitKey.decode(body, version)
    if version == GROUP_METADATA_KEY_VERSION:
        return GroupMetadataKey.decode(body, version)
    if version < 0:
        raise ProtocolError(f"negative __consumer_offsets key version {version}")
    return None


def decode_offset_commit_value(buf: bytes | memoryview) -> OffsetCommitValue:
    version, body = _split(buf, "OffsetCommitValue")
    return OffsetCommitValue.decode(body, version)


def decode_group_metadata_value(buf: bytes | memoryview) -> GroupMetadataValue:
    version, body = _split(buf, "GroupMetadataValue")
    return GroupMetadataValue.decode(body, version)
