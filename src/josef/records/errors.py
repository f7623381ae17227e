"""Errors raised by josef.records, each carrying the Kafka error code a broker answers with.

Malformed record batches are a per-partition outcome in Kafka (the produce response carries the
error code), not a reason to drop the connection, so these are not `ProtocolError`s: a handler
catches `RecordsError` and puts `error_code` into that partition's response. Any lower-level
decoding failure inside a batch (bad varint, bad length) is re-raised as one of these.
"""

from __future__ import annotations

from josef.protocol.errors import ErrorCode


class RecordsError(Exception):
    """A record batch that cannot be accepted; `error_code` is what Kafka returns for it."""

    error_code: ErrorCode = ErrorCode.CORRUPT_MESSAGE


class CorruptRecordError(RecordsError):
    """Truncated batch, impossible length, bad CRC, undecodable records (CorruptRecordException)."""

    error_code = ErrorCode.CORRUPT_MESSAGE


class InvalidRecordError(RecordsError):
    """A well-formed batch that breaks a produce rule (Kafka's InvalidRecordException).

    Examples: zero records, lastOffsetDelta inconsistent with the record count, a control batch
    sent by a client, a producer id with no base sequence, magic 0/1 in produce v3+.
    """

    error_code = ErrorCode.INVALID_RECORD


class UnsupportedMagicError(InvalidRecordError):
    """Magic 0 or 1 (or unknown). Kafka's produce v3+ rejects them with INVALID_RECORD
    ("only allowed to contain record batches with magic version 2"); Kafka 4.0 has no
    message-format conversion at all (KIP-724)."""

    error_code = ErrorCode.INVALID_RECORD


class RecordTooLargeError(RecordsError):
    """A batch larger than max.message.bytes (RecordTooLargeException)."""

    error_code = ErrorCode.MESSAGE_TOO_LARGE


class UnsupportedCompressionError(RecordsError):
    """A compression codec id outside 0..4 (UnsupportedCompressionTypeException)."""

    error_code = ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


class DecompressedSizeError(CorruptRecordError):
    """A compressed records section that inflates beyond the caller's limit (a zip bomb), or
    that cannot be inflated at all within it."""
