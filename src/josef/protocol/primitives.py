"""Kafka protocol primitive types: fixed-width integers, strings, bytes, records, UUIDs,
array lengths and tagged-field sections, in both the classic and the compact (flexible) forms.

Readers take `(buf, pos, end)` and return `(value, next_pos)`. They are bounds-checked
against `end`, check a declared length against the bytes remaining BEFORE allocating, and
raise only `ProtocolError`. `buf` is a memoryview for readers that return zero-copy slices
(`read_records`, `read_compact_records`). Writers append to a bytearray. The generated
message codecs in `josef.protocol._generated` inline fixed-width fields with the `struct`
objects below and call these helpers for everything of variable length.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

from josef.protocol.exceptions import ProtocolError
from josef.protocol.varint import read_uvarint, uvarint_size, write_uvarint

__all__ = [
    "BOOL",
    "DEFAULT",
    "FLOAT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT16",
    "UINT32",
    "ZERO_UUID",
    "Buffer",
    "bytes_size",
    "compact_bytes_size",
    "compact_string_size",
    "read_array_length",
    "read_bool",
    "read_bytes",
    "read_compact_array_length",
    "read_compact_bytes",
    "read_compact_records",
    "read_compact_string",
    "read_float64",
    "read_int8",
    "read_int16",
    "read_int32",
    "read_int64",
    "read_records",
    "read_string",
    "read_uint16",
    "read_uint32",
    "read_uuid",
    "skip_tagged_fields",
    "string_size",
    "truncated",
    "write_array_length",
    "write_bytes",
    "write_compact_array_length",
    "write_compact_bytes",
    "write_compact_string",
    "write_records",
    "write_string",
    "write_uuid",
]

Buffer = bytes | bytearray | memoryview

INT8 = struct.Struct(">b")
BOOL = struct.Struct(">?")
INT16 = struct.Struct(">h")
UINT16 = struct.Struct(">H")
INT32 = struct.Struct(">i")
UINT32 = struct.Struct(">I")
INT64 = struct.Struct(">q")
FLOAT64 = struct.Struct(">d")

# Kafka's Uuid.ZERO_UUID: the "no topic id" value.
ZERO_UUID = uuid.UUID(int=0)


class _DefaultType:
    """Marker for "use the spec default" in generated constructors with mutable defaults."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _DefaultType()


def truncated(what: str, need: int, have: int) -> ProtocolError:
    """The error for a length that runs past the end of the buffer (callers raise it)."""
    return ProtocolError(f"{what}: need {need} bytes, {have} remain")


def _fixed(s: struct.Struct, what: str, buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    nxt = pos + s.size
    if nxt > end or pos < 0:
        raise truncated(what, s.size, end - pos)
    return s.unpack_from(buf, pos)[0], nxt


def read_int8(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    return _fixed(INT8, "int8", buf, pos, end)


def read_int16(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    return _fixed(INT16, "int16", buf, pos, end)


def read_uint16(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    return _fixed(UINT16, "uint16", buf, pos, end)


def read_int32(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    return _fixed(INT32, "int32", buf, pos, end)


def read_uint32(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    return _fixed(UINT32, "uint32", buf, pos, end)


def read_int64(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    return _fixed(INT64, "int64", buf, pos, end)


def read_float64(buf: Buffer, pos: int, end: int) -> tuple[float, int]:
    nxt = pos + 8
    if nxt > end:
        raise truncated("float64", 8, end - pos)
    return FLOAT64.unpack_from(buf, pos)[0], nxt


def read_bool(buf: Buffer, pos: int, end: int) -> tuple[bool, int]:
    # Kafka reads any non-zero byte as true.
    if pos >= end:
        raise truncated("bool", 1, end - pos)
    return buf[pos] != 0, pos + 1


def read_uuid(buf: Buffer, pos: int, end: int) -> tuple[uuid.UUID, int]:
    nxt = pos + 16
    if nxt > end:
        raise truncated("uuid", 16, end - pos)
    return uuid.UUID(bytes=bytes(buf[pos:nxt])), nxt


def write_uuid(out: bytearray, value: uuid.UUID) -> None:
    out += value.bytes


def _classic_length(
    s: struct.Struct, what: str, buf: Buffer, pos: int, end: int
) -> tuple[int, int]:
    nxt = pos + s.size
    if nxt > end:
        raise truncated(f"{what} length", s.size, end - pos)
    return s.unpack_from(buf, pos)[0], nxt


def _compact_length(what: str, buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """A compact length: uvarint N+1, so 0 is null (-1 here)."""
    if pos < end and buf[pos] < 0x80:
        return buf[pos] - 1, pos + 1
    n, pos = read_uvarint(buf, pos, end)
    return n - 1, pos


def _check(what: str, n: int, nullable: bool, pos: int, end: int) -> None:
    if n < 0 and (n != -1 or not nullable):
        raise ProtocolError(f"{what}: invalid length {n}")
    if n > end - pos:
        raise truncated(what, n, end - pos)


def _decode_utf8(raw: Buffer) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"string is not valid UTF-8: {e}") from None


def read_string(buf: Buffer, pos: int, end: int, nullable: bool = False) -> tuple[str | None, int]:
    """A STRING / NULLABLE_STRING: int16 length (-1 = null) and UTF-8 bytes."""
    n, pos = _classic_length(INT16, "string", buf, pos, end)
    _check("string", n, nullable, pos, end)
    if n < 0:
        return None, pos
    return _decode_utf8(buf[pos : pos + n]), pos + n


def read_compact_string(
    buf: Buffer, pos: int, end: int, nullable: bool = False
) -> tuple[str | None, int]:
    """A COMPACT_STRING / COMPACT_NULLABLE_STRING: uvarint length+1 and UTF-8 bytes."""
    n, pos = _compact_length("compact string", buf, pos, end)
    _check("compact string", n, nullable, pos, end)
    if n < 0:
        return None, pos
    return _decode_utf8(buf[pos : pos + n]), pos + n


def read_bytes(buf: Buffer, pos: int, end: int, nullable: bool = False) -> tuple[bytes | None, int]:
    """BYTES / NULLABLE_BYTES: int32 length (-1 = null), returned as a copy."""
    n, pos = _classic_length(INT32, "bytes", buf, pos, end)
    _check("bytes", n, nullable, pos, end)
    if n < 0:
        return None, pos
    return bytes(buf[pos : pos + n]), pos + n


def read_compact_bytes(
    buf: Buffer, pos: int, end: int, nullable: bool = False
) -> tuple[bytes | None, int]:
    n, pos = _compact_length("compact bytes", buf, pos, end)
    _check("compact bytes", n, nullable, pos, end)
    if n < 0:
        return None, pos
    return bytes(buf[pos : pos + n]), pos + n


def read_records(
    buf: memoryview, pos: int, end: int, nullable: bool = True
) -> tuple[memoryview | None, int]:
    """RECORDS: like NULLABLE_BYTES, but a zero-copy slice of `buf`."""
    n, pos = _classic_length(INT32, "records", buf, pos, end)
    _check("records", n, nullable, pos, end)
    if n < 0:
        return None, pos
    return buf[pos : pos + n], pos + n


def read_compact_records(
    buf: memoryview, pos: int, end: int, nullable: bool = True
) -> tuple[memoryview | None, int]:
    n, pos = _compact_length("compact records", buf, pos, end)
    _check("compact records", n, nullable, pos, end)
    if n < 0:
        return None, pos
    return buf[pos : pos + n], pos + n


def read_array_length(
    buf: Buffer, pos: int, end: int, nullable: bool = False, min_item_size: int = 1
) -> tuple[int, int]:
    """An ARRAY length: int32 (-1 = null). Each element takes at least `min_item_size` bytes
    (at least 1 is assumed even for empty structs), so a hostile count cannot allocate more
    than the bytes actually present."""
    n, pos = _classic_length(INT32, "array", buf, pos, end)
    if n < 0 and (n != -1 or not nullable):
        raise ProtocolError(f"array: invalid length {n}")
    if n * max(min_item_size, 1) > end - pos:
        raise truncated("array", n * max(min_item_size, 1), end - pos)
    return n, pos


def read_compact_array_length(
    buf: Buffer, pos: int, end: int, nullable: bool = False, min_item_size: int = 1
) -> tuple[int, int]:
    """A COMPACT_ARRAY length: uvarint N+1 (0 = null, returned as -1)."""
    n, pos = _compact_length("compact array", buf, pos, end)
    if n < 0 and not nullable:
        raise ProtocolError("compact array: null where not nullable")
    if n * max(min_item_size, 1) > end - pos:
        raise truncated("compact array", n * max(min_item_size, 1), end - pos)
    return n, pos


def skip_tagged_fields(buf: Buffer, pos: int, end: int) -> int:
    """Skip a tagged-field section (uvarint count, then tag, size, data per field)."""
    count, pos = read_uvarint(buf, pos, end)
    for _ in range(count):  # each field takes >= 2 bytes, so the loop ends by error or data
        _tag, pos = read_uvarint(buf, pos, end)
        size, pos = read_uvarint(buf, pos, end)
        if size > end - pos:
            raise truncated("tagged field", size, end - pos)
        pos += size
    return pos


def write_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += b"\xff\xff"
        return
    raw = value.encode("utf-8")
    out += INT16.pack(len(raw))
    out += raw


def write_compact_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out.append(0)
        return
    raw = value.encode("utf-8")
    n = len(raw) + 1
    if n < 0x80:
        out.append(n)
    else:
        write_uvarint(out, n)
    out += raw


def write_bytes(out: bytearray, value: Buffer | None) -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
        return
    out += INT32.pack(len(value))
    out += value


def write_compact_bytes(out: bytearray, value: Buffer | None) -> None:
    if value is None:
        out.append(0)
        return
    write_uvarint(out, len(value) + 1)
    out += value


def write_records(
    out: bytearray, chunks: list[Buffer] | None, value: Buffer | None, compact: bool
) -> None:
    """RECORDS. With `chunks` (encode_chunks), the record bytes become their own chunk
    instead of being copied into `out`: what `out` holds so far is flushed first."""
    if value is None:
        if compact:
            out.append(0)
        else:
            out += b"\xff\xff\xff\xff"
        return
    if compact:
        write_uvarint(out, len(value) + 1)
    else:
        out += INT32.pack(len(value))
    if chunks is None:
        out += value
    else:
        chunks.append(bytes(out))
        out.clear()
        chunks.append(value)


def write_array_length(out: bytearray, n: int | None) -> None:
    """n is None for a null array."""
    out += INT32.pack(-1 if n is None else n)


def write_compact_array_length(out: bytearray, n: int | None) -> None:
    if n is None:
        out.append(0)
    elif n < 0x7F:
        out.append(n + 1)
    else:
        write_uvarint(out, n + 1)


def _utf8_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8"))


def string_size(value: str | None) -> int:
    return 2 if value is None else 2 + _utf8_len(value)


def compact_string_size(value: str | None) -> int:
    if value is None:
        return 1
    n = _utf8_len(value)
    return uvarint_size(n + 1) + n


def bytes_size(value: Buffer | None) -> int:
    return 4 if value is None else 4 + len(value)


def compact_bytes_size(value: Buffer | None) -> int:
    return 1 if value is None else uvarint_size(len(value) + 1) + len(value)
