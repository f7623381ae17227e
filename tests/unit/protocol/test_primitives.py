"""Primitive codecs: boundaries, null handling, truncation and hostile lengths."""

from __future__ import annotations

import uuid

import pytest

from josef.protocol import primitives as p
from josef.protocol.exceptions import ProtocolError

INTS = [
    (p.read_int8, p.INT8, -128, 127),
    (p.read_int16, p.INT16, -(2**15), 2**15 - 1),
    (p.read_uint16, p.UINT16, 0, 2**16 - 1),
    (p.read_int32, p.INT32, -(2**31), 2**31 - 1),
    (p.read_uint32, p.UINT32, 0, 2**32 - 1),
    (p.read_int64, p.INT64, -(2**63), 2**63 - 1),
]


@pytest.mark.parametrize(("read", "s", "lo", "hi"), INTS)
def test_fixed_width_boundaries_and_truncation(read, s, lo, hi):
    for value in (lo, -1 if lo < 0 else 0, 0, 1, hi):
        raw = b"\xaa" + s.pack(value)
        assert read(raw, 1, len(raw)) == (value, len(raw))
        with pytest.raises(ProtocolError):
            read(raw, 1, len(raw) - 1)  # end stops short even though the buffer is longer


def test_float64_bool_uuid():
    raw = p.FLOAT64.pack(-1.5)
    assert p.read_float64(raw, 0, 8) == (-1.5, 8)
    assert p.read_bool(b"\x00\x01\x07", 0, 3) == (False, 1)
    assert p.read_bool(b"\x00\x01\x07", 2, 3) == (True, 3)  # any non-zero byte is true
    with pytest.raises(ProtocolError):
        p.read_bool(b"\x01", 1, 1)
    u = uuid.uuid4()
    out = bytearray()
    p.write_uuid(out, u)
    assert p.read_uuid(bytes(out), 0, 16) == (u, 16)
    with pytest.raises(ProtocolError):
        p.read_uuid(bytes(out), 0, 15)
    assert uuid.UUID(int=0) == p.ZERO_UUID


@pytest.mark.parametrize("value", ["", "a", "héllo", "x" * 200, None])
def test_strings_roundtrip(value):
    for write, read, size in (
        (p.write_string, p.read_string, p.string_size),
        (p.write_compact_string, p.read_compact_string, p.compact_string_size),
    ):
        out = bytearray()
        write(out, value)
        assert size(value) == len(out)
        assert read(bytes(out), 0, len(out), nullable=True) == (value, len(out))
        if value is None:
            with pytest.raises(ProtocolError):
                read(bytes(out), 0, len(out), nullable=False)
        else:
            with pytest.raises(ProtocolError):
                read(bytes(out), 0, len(out) - 1)


def test_string_golden_layouts():
    out = bytearray()
    p.write_string(out, "ab")
    assert bytes(out) == b"\x00\x02ab"
    out = bytearray()
    p.write_compact_string(out, "ab")
    assert bytes(out) == b"\x03ab"
    out = bytearray()
    p.write_string(out, None)
    p.write_compact_string(out, None)
    assert bytes(out) == b"\xff\xff\x00"


def test_invalid_utf8_and_negative_lengths():
    with pytest.raises(ProtocolError):
        p.read_string(b"\x00\x01\xff", 0, 3)
    with pytest.raises(ProtocolError):
        p.read_compact_string(b"\x02\xc3", 0, 2)
    with pytest.raises(ProtocolError):
        p.read_string(b"\xff\xfe", 0, 2, nullable=True)  # -2 is never valid
    with pytest.raises(ProtocolError):
        p.read_bytes(p.INT32.pack(-5), 0, 4, nullable=True)
    with pytest.raises(ProtocolError):
        p.read_array_length(p.INT32.pack(-2), 0, 4, nullable=True)


@pytest.mark.parametrize("value", [b"", b"\x00", bytes(range(256)), None])
def test_bytes_roundtrip(value):
    for write, read, size in (
        (p.write_bytes, p.read_bytes, p.bytes_size),
        (p.write_compact_bytes, p.read_compact_bytes, p.compact_bytes_size),
    ):
        out = bytearray()
        write(out, value)
        assert size(value) == len(out)
        got, pos = read(bytes(out), 0, len(out), nullable=True)
        assert (got, pos) == (value, len(out))
        assert got is None or type(got) is bytes


def test_records_are_zero_copy_and_chunked():
    payload = bytes(range(100))
    out = bytearray(b"hd")
    chunks: list[p.Buffer] = []
    p.write_records(out, chunks, payload, compact=False)
    assert chunks[1] is payload  # the record bytes are their own chunk, not copied
    assert chunks[0] == b"hd" + p.INT32.pack(100) and out == b""
    whole = bytearray()
    p.write_records(whole, None, payload, compact=True)
    view = memoryview(bytes(whole))
    got, pos = p.read_compact_records(view, 0, len(view))
    assert isinstance(got, memoryview) and got.obj is view.obj and got == payload
    assert pos == len(view)
    null = bytearray()
    p.write_records(null, None, None, compact=False)
    assert p.read_records(memoryview(bytes(null)), 0, 4) == (None, 4)


def test_hostile_lengths_fail_before_allocating():
    huge = p.INT32.pack(2**31 - 1)
    with pytest.raises(ProtocolError):
        p.read_bytes(huge + b"abc", 0, 7)
    with pytest.raises(ProtocolError):
        p.read_array_length(huge, 0, 4)
    with pytest.raises(ProtocolError):
        p.read_array_length(p.INT32.pack(3) + bytes(8), 0, 12, min_item_size=4)
    assert p.read_array_length(p.INT32.pack(3) + bytes(12), 0, 16, min_item_size=4) == (3, 4)
    with pytest.raises(ProtocolError):
        p.read_compact_array_length(b"\xff\xff\xff\xff\x07", 0, 5)
    with pytest.raises(ProtocolError):
        p.read_compact_array_length(b"\x00", 0, 1, nullable=False)
    assert p.read_compact_array_length(b"\x00", 0, 1, nullable=True) == (-1, 1)


@pytest.mark.parametrize("n", [None, 0, 1, 126, 127, 128, 20000])
def test_array_lengths(n):
    out = bytearray()
    p.write_array_length(out, n)
    p.write_compact_array_length(out, n)
    body = bytes(out) + bytes(4 * 20000)
    got, pos = p.read_array_length(body, 0, len(body), nullable=True)
    assert got == (-1 if n is None else n)
    got, pos = p.read_compact_array_length(body, pos, len(body), nullable=True)
    assert got == (-1 if n is None else n)
    assert pos == len(out)


def test_tagged_field_sections():
    assert p.skip_tagged_fields(b"\x00", 0, 1) == 1
    section = b"\x02" + b"\x00\x02ab" + b"\x05\x00"
    assert p.skip_tagged_fields(section, 0, len(section)) == len(section)
    with pytest.raises(ProtocolError):
        p.skip_tagged_fields(b"\x01\x00\x05ab", 0, 5)
    with pytest.raises(ProtocolError):
        p.skip_tagged_fields(b"\x03\x00\x00", 0, 3)
