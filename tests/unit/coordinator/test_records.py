"""`__consumer_offsets` keys and values, and the group -> partition mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from josef.coordinator.group.records import (
    TopicPartition,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
    encode_group_metadata_value,
    encode_offset_commit_value,
    group_metadata_key,
    java_string_hash,
    offset_commit_key,
    partition_for,
)
from josef.protocol._generated.internal.group_metadata_key import GroupMetadataKey
from josef.protocol._generated.internal.group_metadata_value import (
    GroupMetadataValue,
    MemberMetadata,
)
from josef.protocol._generated.internal.offset_commit_key import OffsetCommitKey
from josef.protocol._generated.internal.offset_commit_value import OffsetCommitValue
from josef.protocol.exceptions import ProtocolError


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("", 0),
        ("hello", 99162322),
        ("Aa", 2112),
        ("BB", 2112),
        ("polygenelubricants", -(1 << 31)),  # Java's famous Integer.MIN_VALUE hash
        ("\U0001f600", 31 * 0xD83D + 0xDE00),  # a surrogate pair: two UTF-16 units
    ],
)
def test_java_string_hash(s: str, expected: int) -> None:
    assert java_string_hash(s) == expected


def test_partition_for_matches_kafka_utils_abs() -> None:
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("Aa", 7) == partition_for("BB", 7)


def test_offset_commit_round_trip_and_versions() -> None:
    key = offset_commit_key("g", TopicPartition("t", 3))
    assert key[:2] == b"\x00\x01"
    assert decode_key(key) == OffsetCommitKey("g", "t", 3)
    plain = OffsetCommitValue(offset=5, leader_epoch=2, metadata="m", commit_timestamp=7)
    raw = encode_offset_commit_value(plain)
    assert raw[:2] == b"\x00\x03" and decode_offset_commit_value(raw) == plain
    expiring = OffsetCommitValue(offset=5, metadata="m", commit_timestamp=7, expire_timestamp=9)
    raw = encode_offset_commit_value(expiring)
    assert raw[:2] == b"\x00\x01" and decode_offset_commit_value(raw) == expiring


def test_group_metadata_round_trip() -> None:
    key = group_metadata_key("g")
    assert key[:2] == b"\x00\x02" and decode_key(key) == GroupMetadataKey("g")
    value = GroupMetadataValue(
        protocol_type="consumer",
        generation=4,
        protocol="range",
        leader="m1",
        current_state_timestamp=123,
        members=[MemberMetadata("m1", "i1", "c", "/h", 300, 10, b"s", b"a")],
    )
    raw = encode_group_metadata_value(value)
    assert raw[:2] == b"\x00\x03" and decode_group_metadata_value(raw) == value


def test_other_record_types_are_skipped() -> None:
    assert decode_key(b"\x00\x03anything") is None  # KIP-848 ConsumerGroupMetadataKey


@given(st.binary(max_size=64))
def test_garbage_raises_only_protocol_error(raw: bytes) -> None:
    for decode in (decode_key, decode_offset_commit_value, decode_group_metadata_value):
        try:
            decode(raw)
        except ProtocolError:
            pass
