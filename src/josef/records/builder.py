"""Build one magic-2 record batch from records appended in offset order.

`BatchBuilder(...).append(timestamp, key, value, headers)` then `build()` returns the batch's
bytes: offset deltas 0..n-1, base_timestamp = first record's timestamp (deltas may be negative),
max_timestamp = the largest record timestamp, last_offset_delta = n - 1, records compressed with
the chosen codec and a valid CRC-32C. A builder holds at most `max_batch_bytes` of uncompressed
records; `append` refuses past that (RecordTooLargeError) so callers start a new batch, except
for the first record, which always fits (as Kafka's producer does with one oversized record).
"""

from __future__ import annotations

from collections.abc import Iterable

from josef.records.batch import (
    CONTROL_FLAG,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    MAGIC,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_FLAG,
    BatchHeader,
    Compression,
    TimestampType,
)
from josef.records.compression import compress
from josef.records.errors import RecordTooLargeError
from josef.records.records import Header, Record

# Kafka producer's batch.size is 16 KiB, but one record may exceed it up to max.request.size
# (1 MiB); the default here is that 1 MiB, the largest batch a default broker accepts.
DEFAULT_MAX_BATCH_BYTES = 1024 * 1024


class BatchBuilder:
    __slots__ = (
        "_attributes",
        "_base_timestamp",
        "_body",
        "_count",
        "_max_batch_bytes",
        "_max_timestamp",
        "base_offset",
        "base_sequence",
        "compression",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
    )

    def __init__(
        self,
        base_offset: int = 0,
        *,
        producer_id: int = NO_PRODUCER_ID,
        producer_epoch: int = NO_PRODUCER_EPOCH,
        base_sequence: int = NO_SEQUENCE,
        is_transactional: bool = False,
        is_control: bool = False,
        compression: Compression = Compression.NONE,
        timestamp_type: TimestampType = TimestampType.CREATE_TIME,
        partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        self.base_offset = base_offset
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.compression = compression
        self.partition_leader_epoch = partition_leader_epoch
        self._attributes = (
            int(compression)
            | (TIMESTAMP_TYPE_MASK if timestamp_type == TimestampType.LOG_APPEND_TIME else 0)
            | (TRANSACTIONAL_FLAG if is_transactional else 0)
            | (CONTROL_FLAG if is_control else 0)
        )
        self._max_batch_bytes = max_batch_bytes
        self._body = bytearray()
        self._count = 0
        self._base_timestamp = -1
        self._max_timestamp = -1

    def __len__(self) -> int:
        return self._count

    def append(
        self,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[Header] = (),
    ) -> int:
        """Add a record at the next offset; returns its offset delta."""
        if self._count == 0:
            self._base_timestamp = timestamp
        record = Record(
            offset_delta=self._count,
            timestamp_delta=timestamp - self._base_timestamp,
            key=key,
            value=value,
            headers=list(headers),
        )
        encoded = bytearray()
        record.encode(encoded)
        if HEADER_SIZE + len(self._body) + len(encoded) > self._max_batch_bytes and self._count:
            raise RecordTooLargeError(
                f"record of {len(encoded)} bytes does not fit the batch's "
                f"{self._max_batch_bytes} bytes"
            )
        self._body += encoded
        self._count += 1
        self._max_timestamp = max(self._max_timestamp, timestamp)
        return record.offset_delta

    def build(self) -> bytes:
        if self._count == 0:
            raise ValueError("a record batch needs at least one record")
        section = self._body
        if self.compression != Compression.NONE:
            section = compress(self.compression, section)
        out = bytearray(HEADER_SIZE)
        out += section
        HEADER_STRUCT.pack_into(
            out,
            0,
            self.base_offset,
            HEADER_SIZE - LOG_OVERHEAD + len(section),
            self.partition_leader_epoch,
            MAGIC,
            0,
            self._attributes,
            self._count - 1,
            self._base_timestamp,
            self._max_timestamp,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
            self._count,
        )
        BatchHeader(out).update_crc()
        return bytes(out)
