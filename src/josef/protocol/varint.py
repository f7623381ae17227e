"""Varints as Kafka writes them: unsigned LEB128 (protocol) and zig-zag signed (records).

Decoders take a buffer and a position and return (value, next_position); they never read past
`end` and raise `ProtocolError` on truncation or on more bytes than the type allows, so a
hostile length cannot make them loop or allocate.
"""

from __future__ import annotations

from josef.protocol.exceptions import ProtocolError

_MAX_UVARINT_BYTES = 5  # 32-bit values
_MAX_UVARLONG_BYTES = 10  # 64-bit values


def write_uvarint(out: bytearray, value: int) -> None:
    """Append an unsigned varint (0 <= value < 2**64)."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def uvarint_size(value: int) -> int:
    size = 1
    while value > 0x7F:
        value >>= 7
        size += 1
    return size


def read_uvarint(
    buf: bytes | bytearray | memoryview, pos: int, end: int | None = None
) -> tuple[int, int]:
    """Read an unsigned 32-bit varint at `pos`."""
    return _read(buf, pos, len(buf) if end is None else end, _MAX_UVARINT_BYTES)


def read_uvarlong(
    buf: bytes | bytearray | memoryview, pos: int, end: int | None = None
) -> tuple[int, int]:
    """Read an unsigned 64-bit varint at `pos`."""
    return _read(buf, pos, len(buf) if end is None else end, _MAX_UVARLONG_BYTES)


def _read(
    buf: bytes | bytearray | memoryview, pos: int, end: int, max_bytes: int
) -> tuple[int, int]:
    if pos < end:
        b = buf[pos]
        if b < 0x80:  # the common one-byte case, without the loop
            return b, pos + 1
    result = 0
    shift = 0
    limit = min(end, pos + max_bytes)
    while pos < limit:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    if pos >= end:
        raise ProtocolError("truncated varint")
    raise ProtocolError(f"varint longer than {max_bytes} bytes")


def zigzag_encode(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def zigzag_decode(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def write_varint(out: bytearray, value: int) -> None:
    """Append a zig-zag signed varint (records use these for lengths, deltas and counts)."""
    write_uvarint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def varint_size(value: int) -> int:
    return uvarint_size(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def read_varint(
    buf: bytes | bytearray | memoryview, pos: int, end: int | None = None
) -> tuple[int, int]:
    """Read a zig-zag signed 32-bit varint."""
    raw, pos = _read(buf, pos, len(buf) if end is None else end, _MAX_UVARINT_BYTES)
    return (raw >> 1) ^ -(raw & 1), pos


def read_varlong(
    buf: bytes | bytearray | memoryview, pos: int, end: int | None = None
) -> tuple[int, int]:
    """Read a zig-zag signed 64-bit varint."""
    raw, pos = _read(buf, pos, len(buf) if end is None else end, _MAX_UVARLONG_BYTES)
    return (raw >> 1) ^ -(raw & 1), pos
