"""Control records: the transaction markers (COMMIT / ABORT) a transaction coordinator writes.

A control batch has the transactional and control attribute bits and exactly one record
(Kafka's EndTransactionMarker):

    key   = version int16 (0) | type int16 (ABORT=0, COMMIT=1)
    value = version int16 (0) | coordinator_epoch int32

Readers accept newer versions by reading the version-0 prefix, as Kafka does; shorter keys or
values raise `InvalidRecordError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from josef.records.batch import NO_PARTITION_LEADER_EPOCH, BatchHeader
from josef.records.builder import BatchBuilder
from josef.records.errors import InvalidRecordError
from josef.records.records import iter_records

CONTROL_KEY_VERSION = 0
END_TXN_MARKER_VERSION = 0
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")
# A marker batch is one tiny record; this bounds what reading one may inflate.
_MAX_MARKER_SECTION_BYTES = 64 * 1024


class ControlRecordType(IntEnum):
    ABORT = 0
    COMMIT = 1


@dataclass(frozen=True, slots=True)
class EndTransactionMarker:
    control_type: ControlRecordType
    coordinator_epoch: int


def control_key(control_type: ControlRecordType) -> bytes:
    return _KEY.pack(CONTROL_KEY_VERSION, control_type)


def parse_control_type(key: bytes | None) -> int:
    """The control record type in a control record's key (an int: unknown types exist)."""
    if key is None or len(key) < _KEY.size:
        raise InvalidRecordError("control record key shorter than 4 bytes")
    return _KEY.unpack_from(key)[1]


def build_marker_batch(
    base_offset: int,
    producer_id: int,
    producer_epoch: int,
    marker: EndTransactionMarker,
    timestamp: int,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """A transactional control batch holding one COMMIT or ABORT marker."""
    builder = BatchBuilder(
        base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )
    builder.append(
        timestamp,
        control_key(marker.control_type),
        _VALUE.pack(END_TXN_MARKER_VERSION, marker.coordinator_epoch),
    )
    return builder.build()


def parse_marker(batch: BatchHeader) -> EndTransactionMarker:
    """The marker in a control batch; InvalidRecordError if it is not an ABORT/COMMIT batch."""
    if not batch.is_control:
        raise InvalidRecordError("not a control batch")
    records = list(iter_records(batch, _MAX_MARKER_SECTION_BYTES))
    if len(records) != 1:
        raise InvalidRecordError(f"control batch holds {len(records)} records, expected 1")
    record = records[0]
    type_id = parse_control_type(record.key)
    if type_id not in (ControlRecordType.ABORT, ControlRecordType.COMMIT):
        raise InvalidRecordError(f"control record type {type_id} is not a transaction marker")
    if record.value is None or len(record.value) < _VALUE.size:
        raise InvalidRecordError("end transaction marker value shorter than 6 bytes")
    coordinator_epoch = _VALUE.unpack_from(record.value)[1]
    return EndTransactionMarker(ControlRecordType(type_id), coordinator_epoch)
