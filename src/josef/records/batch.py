"""A zero-copy view over magic-2 record batch headers, and the checks the produce path needs.

Layout (https://kafka.apache.org/documentation/#recordbatch), big-endian, 61 bytes:

    base_offset int64 | batch_length int32 | partition_leader_epoch int32 | magic int8 |
    crc uint32 | attributes int16 | last_offset_delta int32 | base_timestamp int64 |
    max_timestamp int64 | producer_id int64 | producer_epoch int16 | base_sequence int32 |
    record_count int32 | records...

`batch_length` counts the bytes after itself, so a batch occupies batch_length + LOG_OVERHEAD
bytes. The CRC-32C covers attributes..end, so base_offset and partition_leader_epoch may be
rewritten in place (offset assignment, leader epoch stamping) without touching the CRC.

Contract: nothing here decodes a record. `BatchHeader` unpacks the 61 header bytes once;
`iter_batches` walks batches by length only; `validate_batches` adds Kafka's produce-side checks
(CRC, size, offsets/count, control and sequence rules). Errors are `josef.records.errors` types.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum

from crc32c import crc32c

from josef.records.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordsError,
    RecordTooLargeError,
    UnsupportedCompressionError,
    UnsupportedMagicError,
)

Buffer = bytes | bytearray | memoryview

# Field positions, relative to the start of the batch.
BASE_OFFSET_OFFSET = 0
BATCH_LENGTH_OFFSET = 8
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
LAST_OFFSET_DELTA_OFFSET = 23
BASE_TIMESTAMP_OFFSET = 27
MAX_TIMESTAMP_OFFSET = 35
PRODUCER_ID_OFFSET = 43
PRODUCER_EPOCH_OFFSET = 51
BASE_SEQUENCE_OFFSET = 53
RECORD_COUNT_OFFSET = 57
RECORDS_OFFSET = 61

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length, the part batch_length does not count
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # a batch with no records
MAGIC = 2

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

# Attribute bits.
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_FLAG = 0x10
CONTROL_FLAG = 0x20
DELETE_HORIZON_FLAG = 0x40  # KIP-534: base_timestamp holds the tombstone delete horizon

_INT32_MAX = 2**31 - 1
_MAX_CODEC = 4  # Compression.ZSTD, as a plain int for the hot path

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
assert HEADER_STRUCT.size == HEADER_SIZE


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class BatchHeader:
    """The header of the batch that starts at `buf[pos]`; the buffer is referenced, not copied.

    The stored fields are unpacked once at construction into plain attributes (every produce
    and fetch reads them; a property costs several times an attribute load). Treat them as
    read-only: the `set_*` writers update both the buffer (which must then be writable:
    bytearray or a writable memoryview) and the attribute. The caller guarantees the whole
    batch (`size` bytes) is in `buf`, as `iter_batches` does.
    """

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int  # Kafka's firstTimestamp (the delete horizon when has_delete_horizon)
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    buf: Buffer
    pos: int

    __slots__ = (
        "attributes",
        "base_offset",
        "base_sequence",
        "base_timestamp",
        "batch_length",
        "buf",
        "crc",
        "last_offset_delta",
        "magic",
        "max_timestamp",
        "partition_leader_epoch",
        "pos",
        "producer_epoch",
        "producer_id",
        "record_count",
    )

    def __init__(self, buf: Buffer, pos: int = 0) -> None:
        try:
            (
                self.base_offset,
                self.batch_length,
                self.partition_leader_epoch,
                self.magic,
                self.crc,
                self.attributes,
                self.last_offset_delta,
                self.base_timestamp,
                self.max_timestamp,
                self.producer_id,
                self.producer_epoch,
                self.base_sequence,
                self.record_count,
            ) = HEADER_STRUCT.unpack_from(buf, pos)
        except struct.error:
            raise CorruptRecordError(
                f"record batch header truncated at position {pos} of {len(buf)}"
            ) from None
        self.buf = buf
        self.pos = pos

    # --- derived ------------------------------------------------------------------------------
    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def end(self) -> int:
        """Position in `buf` just past this batch."""
        return self.pos + self.batch_length + LOG_OVERHEAD

    @property
    def compression(self) -> Compression:
        codec = self.attributes & COMPRESSION_MASK
        if codec > Compression.ZSTD:
            raise UnsupportedCompressionError(f"unknown compression codec id {codec}")
        return Compression(codec)

    @property
    def timestamp_type(self) -> TimestampType:
        if self.attributes & TIMESTAMP_TYPE_MASK:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_FLAG)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_FLAG)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_FLAG)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id > NO_PRODUCER_ID

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record; sequences wrap from 2**31-1 to 0 like Kafka's."""
        base, delta = self.base_sequence, self.last_offset_delta
        if base == NO_SEQUENCE:
            return NO_SEQUENCE
        if base > _INT32_MAX - delta:
            return delta - (_INT32_MAX - base) - 1
        return base + delta

    def view(self) -> memoryview:
        """The whole batch, without copying."""
        return memoryview(self.buf)[self.pos : self.end]

    def records_view(self) -> memoryview:
        """The records section (compressed when `compression` is not NONE), without copying."""
        return memoryview(self.buf)[self.pos + RECORDS_OFFSET : self.end]

    # --- CRC ----------------------------------------------------------------------------------
    def compute_crc(self) -> int:
        """CRC-32C of attributes..end of batch, as the crc field should hold it."""
        return crc32c(memoryview(self.buf)[self.pos + ATTRIBUTES_OFFSET : self.end])

    def crc_valid(self) -> bool:
        return self.compute_crc() == self.crc

    # --- in-place writers (writable buffers only) ---------------------------------------------
    def set_base_offset(self, base_offset: int) -> None:
        """Assign offsets (outside the CRC, so the CRC stays valid)."""
        _INT64.pack_into(self.buf, self.pos + BASE_OFFSET_OFFSET, base_offset)
        self.base_offset = base_offset

    def set_partition_leader_epoch(self, epoch: int) -> None:
        """Stamp the leader epoch (outside the CRC, so the CRC stays valid)."""
        _INT32.pack_into(self.buf, self.pos + PARTITION_LEADER_EPOCH_OFFSET, epoch)
        self.partition_leader_epoch = epoch

    def set_max_timestamp_and_type(self, max_timestamp: int, ts_type: TimestampType) -> None:
        """For LogAppendTime topics: max_timestamp becomes every record's timestamp.

        Both fields are inside the CRC: call `update_crc()` afterwards.
        """
        attributes = (self.attributes & ~TIMESTAMP_TYPE_MASK) | (
            TIMESTAMP_TYPE_MASK if ts_type == TimestampType.LOG_APPEND_TIME else 0
        )
        _INT16.pack_into(self.buf, self.pos + ATTRIBUTES_OFFSET, attributes)
        _INT64.pack_into(self.buf, self.pos + MAX_TIMESTAMP_OFFSET, max_timestamp)
        self.attributes = attributes
        self.max_timestamp = max_timestamp

    def update_crc(self) -> None:
        crc = self.compute_crc()
        _UINT32.pack_into(self.buf, self.pos + CRC_OFFSET, crc)
        self.crc = crc

    def __repr__(self) -> str:
        return (
            f"BatchHeader(base_offset={self.base_offset}, last_offset={self.last_offset}, "
            f"size={self.size}, record_count={self.record_count}, "
            f"attributes={self.attributes:#x}, producer_id={self.producer_id}, "
            f"producer_epoch={self.producer_epoch}, base_sequence={self.base_sequence})"
        )


def iter_batches(
    buf: Buffer, pos: int = 0, end: int | None = None, *, allow_truncated_tail: bool = False
) -> Iterator[BatchHeader]:
    """Yield a header view for each batch in buf[pos:end], walking by batch_length only.

    Raises `CorruptRecordError` for a truncated header or batch or an impossible batch_length,
    `UnsupportedMagicError` for magic other than 2. Neither CRC nor records are checked.
    `allow_truncated_tail=True` is for fetch responses, whose last batch may be cut short by
    the fetch size limit (Kafka consumers skip it): iteration then stops quietly there.
    """
    if end is None:
        end = len(buf)
    # The magic byte sits at offset 16 in every message format (v0/v1 too), so a legacy
    # message set is recognised as such instead of being misread as a corrupt v2 batch.
    while pos < end:
        if end - pos < MAGIC_OFFSET + 1:
            if allow_truncated_tail:
                return
            raise CorruptRecordError(f"truncated record batch header at position {pos}")
        batch_length = _INT32.unpack_from(buf, pos + BATCH_LENGTH_OFFSET)[0]
        magic = buf[pos + MAGIC_OFFSET]
        if magic != MAGIC:
            raise UnsupportedMagicError(
                f"record batch at position {pos} has magic {magic}; only magic 2 is supported"
            )
        if batch_length < MIN_BATCH_LENGTH:
            raise CorruptRecordError(
                f"batch_length {batch_length} at position {pos} is below the minimum "
                f"{MIN_BATCH_LENGTH}"
            )
        if pos + LOG_OVERHEAD + batch_length > end:
            if allow_truncated_tail:
                return
            raise CorruptRecordError(
                f"record batch at position {pos} of {batch_length + LOG_OVERHEAD} bytes is "
                f"truncated at {end - pos}"
            )
        header = BatchHeader(buf, pos)
        yield header
        pos += LOG_OVERHEAD + batch_length


def validate_batches(
    buf: Buffer, max_batch_bytes: int, *, from_client: bool = True
) -> list[BatchHeader]:
    """Check a produce request's records the way Kafka's broker does, without decoding records.

    In Kafka's order (UnifiedLog.analyzeAndValidateRecords, then LogValidator.validateBatch):
    no batch at all -> InvalidRecordError; base_offset != 0 from a client -> InvalidRecordError;
    size > max_batch_bytes (max.message.bytes, header included) -> RecordTooLargeError;
    CRC mismatch -> CorruptRecordError; unknown codec -> UnsupportedCompressionError; then, for
    client batches: record_count <= 0 or != last_offset_delta + 1 (compressed or not), a control
    batch, or a producer id without a base sequence -> InvalidRecordError.
    `from_client=False` (replication, internal writers) keeps only the integrity checks.
    Produce v3+ also requires exactly one batch per partition; that is the handler's call.
    """
    # Every produce runs this: one header unpack per batch, fields read from the slots
    # directly, no generator; a malformed frame falls back to iter_batches for its error.
    headers: list[BatchHeader] = []
    end = len(buf)
    pos = 0
    while pos < end:
        if end - pos < HEADER_SIZE:
            raise _frame_error(buf, pos, end)
        header = BatchHeader(buf, pos)
        size = header.batch_length + LOG_OVERHEAD
        if header.magic != MAGIC or size < HEADER_SIZE or pos + size > end:
            raise _frame_error(buf, pos, end)
        if from_client and header.base_offset != 0:
            raise InvalidRecordError(
                f"the base_offset of a produced record batch should be 0, not "
                f"{header.base_offset}"
            )
        if size > max_batch_bytes:
            raise RecordTooLargeError(
                f"record batch of {size} bytes exceeds the maximum {max_batch_bytes}"
            )
        crc = crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + size])
        if crc != header.crc:
            raise CorruptRecordError(
                f"record batch at position {pos} is corrupt: stored crc {header.crc:#010x}"
                f", computed {crc:#010x}"
            )
        if header.attributes & COMPRESSION_MASK > _MAX_CODEC:
            raise UnsupportedCompressionError(
                f"unknown compression codec id {header.attributes & COMPRESSION_MASK}"
            )
        # One combined test for the valid case; _client_batch_error names the first failure.
        if from_client and (
            header.record_count != header.last_offset_delta + 1
            or header.record_count <= 0
            or header.attributes & CONTROL_FLAG
            or (header.producer_id > NO_PRODUCER_ID and header.base_sequence < 0)
        ):
            raise _client_batch_error(header)
        headers.append(header)
        pos += size
    if not headers:
        raise InvalidRecordError("a produce request must carry at least one record batch")
    return headers



# Attribute bits that keep a client batch off the plain path: validate_batches decides those.
_NOT_PLAIN = TIMESTAMP_TYPE_MASK | TRANSACTIONAL_FLAG | CONTROL_FLAG


def plain_client_batch(buf: Buffer, max_batch_bytes: int) -> tuple[int, int, int, int, int] | None:
    """The common produce in one pass: when `buf` is exactly one batch that validate_batches
    would accept from a client, CreateTime, with no producer id and not transactional, its
    (batch_length, last_offset_delta, base_timestamp, max_timestamp, record_count); else None,
    and validate_batches takes the batch and names any error. Skipping the BatchHeader and
    the list saves about a quarter of a small append's CPU; the checks are the same."""
    if len(buf) < HEADER_SIZE:
        return None
    (
        base_offset, batch_length, _epoch, magic, crc, attributes, last_offset_delta,
        base_timestamp, max_timestamp, producer_id, _producer_epoch, _sequence, record_count,
    ) = HEADER_STRUCT.unpack_from(buf)
    size = batch_length + LOG_OVERHEAD
    if (
        size != len(buf)
        or magic != MAGIC
        or base_offset != 0
        or producer_id != NO_PRODUCER_ID
        or attributes & _NOT_PLAIN
        or attributes & COMPRESSION_MASK > _MAX_CODEC
        or record_count != last_offset_delta + 1
        or record_count <= 0
        or size > max_batch_bytes
        or crc32c(memoryview(buf)[ATTRIBUTES_OFFSET:size]) != crc
    ):
        return None
    return batch_length, last_offset_delta, base_timestamp, max_timestamp, record_count

def _frame_error(buf: Buffer, pos: int, end: int) -> RecordsError:
    """The error `iter_batches` reports for the malformed batch frame at `pos`."""
    try:
        next(iter_batches(buf, pos, end))
    except RecordsError as err:
        return err
    return CorruptRecordError(f"malformed record batch frame at position {pos}")


def _client_batch_error(header: BatchHeader) -> InvalidRecordError:
    """Kafka's check order for a client batch that failed validate_batches' combined test."""
    count_from_offsets = header.last_offset_delta + 1
    record_count = header.record_count
    if count_from_offsets <= 0:
        return InvalidRecordError(
            f"record batch has an invalid offset range [{header.base_offset}, {header.last_offset}]"
        )
    if record_count <= 0:
        return InvalidRecordError(f"invalid record_count {record_count} for a record batch")
    if count_from_offsets != record_count:
        return InvalidRecordError(
            f"inconsistent record batch offset range [{header.base_offset}, {header.last_offset}]"
            f" and record_count {record_count}"
        )
    if header.attributes & CONTROL_FLAG:
        return InvalidRecordError("clients are not allowed to write control records")
    return InvalidRecordError(
        f"invalid sequence number {header.base_sequence} in a record batch with "
        f"producer_id {header.producer_id}"
    )
