"""Typed errors raised by the storage engines (disk and memory).

Every error is a `StorageError` carrying the Kafka `error_code` the broker puts into the
per-partition response, so handlers map errors without knowing which engine raised them.
An operation that raises leaves the log unchanged. Record-batch validation errors from
`josef.records` are converted with `from_records_error` so callers catch one hierarchy.
"""

from __future__ import annotations

from josef.protocol.errors import ErrorCode
from josef.records.errors import RecordsError


class StorageError(Exception):
    """Base class; `error_code` is the Kafka error for the partition in the response."""

    error_code: ErrorCode = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init__(self, message: str, error_code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if error_code is not None:
            self.error_code = error_code


class OffsetOutOfRange(StorageError):
    """A read or lookup outside [log_start_offset, log_end_offset]."""

    error_code = ErrorCode.OFFSET_OUT_OF_RANGE


class CorruptRecord(StorageError):
    """A batch with a bad CRC, impossible lengths or an unreadable header."""

    error_code = ErrorCode.CORRUPT_MESSAGE


class RecordTooLarge(StorageError):
    """A batch larger than max.message.bytes (or a record set larger than a segment)."""

    error_code = ErrorCode.MESSAGE_TOO_LARGE


class InvalidRecord(StorageError):
    """A batch that is well formed but not acceptable here (e.g. offsets not increasing
    in a follower append, as Kafka's OffsetsOutOfOrderException / InvalidRecordException)."""

    error_code = ErrorCode.INVALID_RECORD


class UnexpectedAppendOffset(InvalidRecord):
    """A follower append whose first offset is below log_end_offset (Kafka's
    UnexpectedAppendOffsetException); the replica fetcher truncates and retries."""


class KafkaStorageError(StorageError):
    """The filesystem failed (ENOSPC, EIO): the append was rolled back; retriable."""

    error_code = ErrorCode.KAFKA_STORAGE_ERROR


def from_records_error(err: RecordsError) -> StorageError:
    """The storage error for a batch-validation failure, keeping Kafka's error code."""
    code = ErrorCode(err.error_code)
    cls: type[StorageError]
    if code == ErrorCode.MESSAGE_TOO_LARGE:
        cls = RecordTooLarge
    elif code == ErrorCode.CORRUPT_MESSAGE:
        cls = CorruptRecord
    elif code == ErrorCode.INVALID_RECORD:
        cls = InvalidRecord
    else:
        cls = StorageError
    return cls(str(err), code)
