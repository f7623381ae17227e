"""Records inside a magic-2 batch: decode, encode, and bounded iteration over a batch.

Record layout (https://kafka.apache.org/documentation/#record), all lengths zig-zag varints:

    length varint | attributes int8 | timestamp_delta varlong | offset_delta varint |
    key_length varint | key | value_length varint | value |
    header_count varint | [header_key_length varint | header_key utf-8 |
                           header_value_length varint | header_value] * header_count

A length of -1 is null (key, value, header value); a header key is never null.

Contract: `Record.decode` reads exactly one record inside [pos, end) and never past `end`;
`iter_records` yields exactly `record_count` records and requires the records section to end
there. Malformed records raise `InvalidRecordError` (Kafka's InvalidRecordException); a batch
that cannot be inflated within `max_bytes` raises `CorruptRecordError`. No other exception type
escapes for any input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from josef.protocol.exceptions import ProtocolError
from josef.protocol.varint import read_varint, read_varlong, varint_size, write_varint
from josef.records.batch import BatchHeader, Compression, TimestampType
from josef.records.compression import decompress
from josef.records.errors import InvalidRecordError

Buffer = bytes | bytearray | memoryview
Header = tuple[str, bytes | None]

# Default bound on one batch's inflated records section: fetch.max.bytes (50 MiB), the most a
# Kafka consumer asks for in one fetch, so a legitimate batch always fits.
DEFAULT_MAX_DECOMPRESSED_BYTES = 50 * 1024 * 1024


@dataclass(slots=True)
class Record:
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)
    attributes: int = 0  # unused by Kafka so far; kept to re-encode byte for byte

    def encode(self, out: bytearray) -> None:
        """Append this record, length prefix included."""
        body = bytearray()
        body.append(self.attributes & 0xFF)
        write_varint(body, self.timestamp_delta)
        write_varint(body, self.offset_delta)
        _write_bytes(body, self.key)
        _write_bytes(body, self.value)
        write_varint(body, len(self.headers))
        for key, value in self.headers:
            _write_bytes(body, key.encode())
            _write_bytes(body, value)
        write_varint(out, len(body))
        out += body

    def size(self) -> int:
        """Bytes `encode` appends."""
        body = (
            1
            + varint_size(self.timestamp_delta)
            + varint_size(self.offset_delta)
            + _bytes_size(self.key)
            + _bytes_size(self.value)
            + varint_size(len(self.headers))
        )
        for key, value in self.headers:
            body += _bytes_size(key.encode()) + _bytes_size(value)
        return varint_size(body) + body

    @classmethod
    def decode(cls, buf: Buffer, pos: int, end: int) -> tuple[Record, int]:
        """Decode one record at `pos`; returns it and the position after it."""
        try:
            return cls._decode(buf, pos, end)
        except ProtocolError as e:  # truncated or overlong varint
            raise InvalidRecordError(f"malformed record at position {pos}: {e}") from None

    @classmethod
    def _decode(cls, buf: Buffer, pos: int, end: int) -> tuple[Record, int]:
        length, pos = _varint(buf, pos, end)
        if length < 1 or pos + length > end:  # at least the attributes byte
            raise InvalidRecordError(f"record length {length} out of bounds at {pos}")
        record_end = pos + length
        attributes = buf[pos]
        pos += 1
        timestamp_delta, pos = read_varlong(buf, pos, record_end)
        offset_delta, pos = _varint(buf, pos, record_end)
        key, pos = _read_bytes(buf, pos, record_end, "key")
        value, pos = _read_bytes(buf, pos, record_end, "value")
        count, pos = _varint(buf, pos, record_end)
        # Each header takes at least 2 bytes, so a count beyond that is a lie, not a big list.
        if count < 0 or count * 2 > record_end - pos:
            raise InvalidRecordError(f"invalid record header count {count}")
        headers: list[Header] = []
        for _ in range(count):
            raw_key, pos = _read_bytes(buf, pos, record_end, "header key")
            if raw_key is None:
                raise InvalidRecordError("null record header key")
            try:
                header_key = raw_key.decode()
            except UnicodeDecodeError:
                raise InvalidRecordError("record header key is not UTF-8") from None
            header_value, pos = _read_bytes(buf, pos, record_end, "header value")
            headers.append((header_key, header_value))
        if pos != record_end:
            raise InvalidRecordError(
                f"record declares {length} bytes but its fields take {length - (record_end - pos)}"
            )
        return cls(offset_delta, timestamp_delta, key, value, headers, attributes), pos


def _varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """read_varint with the one-byte case inlined: most record fields are small numbers."""
    if pos < end:
        b = buf[pos]
        if b < 0x80:
            return (b >> 1) ^ -(b & 1), pos + 1
    return read_varint(buf, pos, end)


def _write_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        write_varint(out, -1)
    else:
        write_varint(out, len(data))
        out += data


def _bytes_size(data: bytes | None) -> int:
    return 1 if data is None else varint_size(len(data)) + len(data)


def _read_bytes(buf: Buffer, pos: int, end: int, what: str) -> tuple[bytes | None, int]:
    length, pos = _varint(buf, pos, end)
    if length == -1:
        return None, pos
    if length < 0 or pos + length > end:
        raise InvalidRecordError(f"record {what} length {length} out of bounds")
    return bytes(buf[pos : pos + length]), pos + length


def records_section(
    batch: BatchHeader, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
) -> Buffer:
    """The batch's records section, inflated when compressed (bounded by `max_bytes`).

    An uncompressed section is returned as a view of the batch: it is already in memory, so
    the limit only bounds what inflation may allocate.
    """
    raw = batch.records_view()
    codec = batch.compression
    if codec == Compression.NONE:
        return raw
    return decompress(codec, raw, max_bytes)


def iter_records(
    batch: BatchHeader, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
) -> Iterator[Record]:
    """Decode the batch's `record_count` records; the section must hold exactly those."""
    section = records_section(batch, max_bytes)
    end = len(section)
    count = batch.record_count
    if count < 0:
        raise InvalidRecordError(f"negative record_count {count}")
    pos = 0
    for _ in range(count):
        if pos >= end:
            raise InvalidRecordError(
                f"records section ends before the {count} records the batch declares"
            )
        record, pos = Record.decode(section, pos, end)
        yield record
    if pos != end:
        raise InvalidRecordError(f"{end - pos} bytes left after the batch's {count} records")


def encode_records(records: Sequence[Record]) -> bytearray:
    """The uncompressed records section for `records`."""
    out = bytearray()
    for record in records:
        record.encode(out)
    return out


def record_offset(batch: BatchHeader, record: Record) -> int:
    return batch.base_offset + record.offset_delta


def record_timestamp(batch: BatchHeader, record: Record) -> int:
    """CreateTime: base_timestamp + delta. LogAppendTime: the broker's max_timestamp."""
    if batch.timestamp_type == TimestampType.LOG_APPEND_TIME:
        return batch.max_timestamp
    return batch.base_timestamp + record.timestamp_delta
