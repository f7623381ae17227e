"""Records: encode/decode, bounded iteration, hostile record bytes, control markers."""

from __future__ import annotations

import struct

import pytest

from josef.protocol.varint import write_varint
from josef.records.batch import BatchHeader, Compression, TimestampType, validate_batches
from josef.records.builder import BatchBuilder
from josef.records.control import (
    ControlRecordType,
    EndTransactionMarker,
    build_marker_batch,
    parse_control_type,
    parse_marker,
)
from josef.records.errors import (
    DecompressedSizeError,
    InvalidRecordError,
    RecordsError,
    RecordTooLargeError,
)
from josef.records.records import (
    Record,
    encode_records,
    iter_records,
    record_offset,
    record_timestamp,
)


def test_record_round_trip_and_size() -> None:
    record = Record(3, -5, None, b"v" * 200, [("a", b"1"), ("ключ", None)], 0)
    out = bytearray(b"..")
    record.encode(out)
    assert len(out) - 2 == record.size()
    decoded, end = Record.decode(out, 2, len(out))
    assert decoded == record and end == len(out)


def test_absolute_offsets_and_timestamps() -> None:
    builder = BatchBuilder(50)
    builder.append(2000, b"a", b"1")
    builder.append(1500, b"b", b"2")  # out of order timestamps: negative delta
    raw = bytearray(builder.build())
    h = BatchHeader(raw)
    records = list(iter_records(h))
    assert [record_offset(h, r) for r in records] == [50, 51]
    assert [record_timestamp(h, r) for r in records] == [2000, 1500]
    assert h.max_timestamp == 2000
    h.set_max_timestamp_and_type(9999, TimestampType.LOG_APPEND_TIME)
    assert [record_timestamp(h, r) for r in records] == [9999, 9999]


def _batch_with_section(section: bytes, count: int) -> BatchHeader:
    builder = BatchBuilder()
    builder.append(0, None, None)
    raw = bytearray(builder.build())
    raw[61:] = section
    struct.pack_into(">i", raw, 8, 49 + len(section))
    struct.pack_into(">i", raw, 57, count)
    h = BatchHeader(raw)
    h.update_crc()
    return h


def _record_bytes(*fields: int, tail: bytes = b"") -> bytes:
    body = bytearray([0])
    for value in fields:
        write_varint(body, value)
    body += tail
    out = bytearray()
    write_varint(out, len(body))
    return bytes(out + body)


@pytest.mark.parametrize(
    "section",
    [
        _record_bytes(0, 0, -2, -1, 0),  # negative key length
        _record_bytes(0, 0, 100, -1, 0),  # key longer than the record
        _record_bytes(0, 0, -1, -1, 1_000_000),  # header count far above what fits
        _record_bytes(0, 0, -1, -1, 1, -1, -1),  # null header key
        _record_bytes(0, 0, -1, -1, 1, 2, tail=b"\xff\xfe\x00"),  # header key not UTF-8
        _record_bytes(0, 0, -1, -1, 0, tail=b"extra"),  # bytes beyond the fields
        b"\x7f",  # record length beyond the section
        b"\x00",  # zero-length record
        b"\xff\xff\xff\xff\xff\xff",  # overlong varint
        b"",  # fewer records than record_count
    ],
)
def test_hostile_records_raise_invalid_record(section: bytes) -> None:
    with pytest.raises(InvalidRecordError):
        list(iter_records(_batch_with_section(section, 1)))


def test_records_left_over_after_record_count() -> None:
    one = bytearray()
    Record(0, 0, None, b"v").encode(one)
    with pytest.raises(InvalidRecordError):
        list(iter_records(_batch_with_section(bytes(one) * 2, 1)))
    assert len(list(iter_records(_batch_with_section(bytes(one) * 2, 2)))) == 2


@pytest.mark.parametrize("codec", [c for c in Compression if c != Compression.NONE])
def test_decompression_limit_applies(codec: Compression) -> None:
    builder = BatchBuilder(compression=codec)
    builder.append(0, None, b"\0" * 100_000)
    h = BatchHeader(builder.build())
    assert len(list(iter_records(h, 200_000))) == 1
    with pytest.raises(DecompressedSizeError):
        list(iter_records(h, 50_000))


def test_builder_limits_and_empty() -> None:
    builder = BatchBuilder(max_batch_bytes=200)
    builder.append(0, None, b"x" * 500)  # the first record always fits
    with pytest.raises(RecordTooLargeError):
        builder.append(0, None, b"y")
    assert len(builder) == 1
    with pytest.raises(ValueError):
        BatchBuilder().build()


def test_encode_records_matches_builder_section() -> None:
    records = [Record(i, i, b"k", b"v", [("h", None)]) for i in range(3)]
    builder = BatchBuilder()
    for _ in range(3):
        builder.append(0, b"k", b"v", [("h", None)])
    builder_section = bytes(BatchHeader(builder.build()).records_view())
    ours = encode_records([Record(i, 0, b"k", b"v", [("h", None)]) for i in range(3)])
    assert bytes(ours) == builder_section
    assert len(encode_records(records)) == sum(r.size() for r in records)


@pytest.mark.parametrize("control_type", list(ControlRecordType))
def test_transaction_marker_round_trip(control_type: ControlRecordType) -> None:
    marker = EndTransactionMarker(control_type, coordinator_epoch=17)
    raw = build_marker_batch(40, producer_id=9, producer_epoch=2, marker=marker, timestamp=123)
    (h,) = validate_batches(raw, 1 << 20, from_client=False)
    assert h.is_control and h.is_transactional and h.record_count == 1
    assert (h.base_offset, h.producer_id, h.producer_epoch) == (40, 9, 2)
    assert parse_marker(h) == marker
    (record,) = iter_records(h)
    assert record.key == struct.pack(">hh", 0, control_type)
    assert record.value == struct.pack(">hi", 0, 17)
    with pytest.raises(InvalidRecordError):  # clients may not write control batches
        validate_batches(raw, 1 << 20)


def test_marker_parsing_rejects_malformed() -> None:
    with pytest.raises(InvalidRecordError):
        parse_control_type(b"\x00")
    assert parse_control_type(struct.pack(">hh", 1, 7)) == 7  # newer versions read as v0
    for key, value in [
        (struct.pack(">hh", 0, 5), struct.pack(">hi", 0, 1)),  # not a marker type
        (struct.pack(">hh", 0, 1), b"\x00"),  # value too short
        (struct.pack(">hh", 0, 1), None),
    ]:
        builder = BatchBuilder(is_control=True, is_transactional=True)
        builder.append(0, key, value)
        with pytest.raises(InvalidRecordError):
            parse_marker(BatchHeader(builder.build()))
    plain = BatchBuilder()
    plain.append(0, b"k", b"v")
    with pytest.raises(RecordsError):
        parse_marker(BatchHeader(plain.build()))
