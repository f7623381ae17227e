"""BatchHeader, iter_batches and validate_batches against hand-built and builder-made batches."""

from __future__ import annotations

import struct

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from josef.protocol.errors import ErrorCode
from josef.records.batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    Compression,
    TimestampType,
    iter_batches,
    plain_client_batch,
    validate_batches,
)
from josef.records.builder import BatchBuilder
from josef.records.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordsError,
    RecordTooLargeError,
    UnsupportedCompressionError,
    UnsupportedMagicError,
)

MAX = 1024 * 1024


def golden_batch() -> bytes:
    """One record (key b"k", value b"v", timestamp 1000) laid out by hand from the spec."""
    record = bytes([0x10, 0x00, 0x00, 0x00, 0x02]) + b"k" + bytes([0x02]) + b"v" + bytes([0x00])
    after_crc = struct.pack(">hiqqqhii", 0, 0, 1000, 1000, -1, -1, -1, 1) + record
    crc = crc32c.crc32c(after_crc)
    return struct.pack(">qiibI", 0, 49 + len(record), -1, 2, crc) + after_crc


def simple_batch(n: int = 3, **kwargs: object) -> bytes:
    builder = BatchBuilder(**kwargs)  # type: ignore[arg-type]
    for i in range(n):
        builder.append(1000 + i, b"key%d" % i, b"value%d" % i, [("h", b"x")])
    return builder.build()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_golden_bytes_match_builder_and_kafka_python() -> None:
    builder = BatchBuilder(0)
    builder.append(1000, b"k", b"v")
    assert builder.build() == golden_batch()
    # kafka-python is an independent implementation; it stamps partition_leader_epoch 0, which
    # the CRC does not cover, so only those 4 bytes differ.
    from kafka.record.default_records import DefaultRecordBatchBuilder

    theirs = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=MAX,
    )
    theirs.append(0, 1000, b"k", b"v", [])
    other = bytes(theirs.build())
    ours = golden_batch()
    assert other[:12] == ours[:12] and other[16:] == ours[16:]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("codec", [Compression.NONE, Compression.GZIP])
def test_kafka_python_reads_our_batches(codec: Compression) -> None:
    from kafka.record.default_records import DefaultRecordBatch

    builder = BatchBuilder(10, compression=codec)
    builder.append(1000, b"k1", b"v1", [("h", b"x")])
    builder.append(1001, None, b"v2")
    theirs = DefaultRecordBatch(builder.build())
    assert theirs.validate_crc()
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in theirs]
    assert got == [(10, 1000, b"k1", b"v1", [("h", b"x")]), (11, 1001, None, b"v2", [])]


def test_header_fields() -> None:
    raw = bytearray(
        simple_batch(
            4, base_offset=100, producer_id=7, producer_epoch=3, base_sequence=10,
            is_transactional=True, compression=Compression.ZSTD, partition_leader_epoch=5,
        )
    )
    h = BatchHeader(raw)
    assert (h.base_offset, h.last_offset_delta, h.last_offset, h.next_offset) == (100, 3, 103, 104)
    assert h.size == len(raw) == h.batch_length + LOG_OVERHEAD
    assert (h.magic, h.partition_leader_epoch, h.record_count) == (2, 5, 4)
    assert (h.base_timestamp, h.max_timestamp) == (1000, 1003)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (7, 3, 10, 13)
    assert h.compression is Compression.ZSTD
    assert h.timestamp_type is TimestampType.CREATE_TIME
    assert h.is_transactional and not h.is_control and not h.has_delete_horizon
    assert h.crc_valid() and h.crc == h.compute_crc()
    assert bytes(h.view()) == bytes(raw)
    assert len(h.records_view()) == len(raw) - HEADER_SIZE


def test_last_sequence_wraps_like_kafka() -> None:
    h = BatchHeader(simple_batch(3, producer_id=1, producer_epoch=0, base_sequence=2**31 - 2))
    assert h.last_sequence == 0
    assert BatchHeader(simple_batch(1)).last_sequence == -1


def test_in_place_writers_keep_crc_valid() -> None:
    raw = bytearray(simple_batch(2) * 2)
    second = list(iter_batches(raw))[1]
    second.set_base_offset(42)
    second.set_partition_leader_epoch(9)
    assert second.crc_valid()  # both fields are outside the CRC
    second.set_max_timestamp_and_type(5555, TimestampType.LOG_APPEND_TIME)
    assert not second.crc_valid()
    second.update_crc()
    again = list(iter_batches(raw))[1]
    assert (again.base_offset, again.partition_leader_epoch, again.max_timestamp) == (42, 9, 5555)
    assert again.timestamp_type is TimestampType.LOG_APPEND_TIME and again.crc_valid()
    first = BatchHeader(memoryview(raw))
    assert first.crc_valid() and first.base_offset == 0


def test_writers_need_a_writable_buffer() -> None:
    with pytest.raises(TypeError):
        BatchHeader(simple_batch(1)).set_base_offset(1)


def test_flipping_any_byte_after_crc_field_breaks_crc() -> None:
    raw = simple_batch(2)
    for i in range(21, len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        assert not BatchHeader(bad).crc_valid(), i
        with pytest.raises(CorruptRecordError):
            validate_batches(bad, MAX)


def test_iter_batches_walks_by_length_with_bounds() -> None:
    a, b = simple_batch(1), simple_batch(5)
    buf = b"xx" + a + b
    assert [h.record_count for h in iter_batches(buf, 2)] == [1, 5]
    assert [h.record_count for h in iter_batches(buf, 2, 2 + len(a))] == [1]
    assert list(iter_batches(b"")) == []


def test_truncation_at_every_position_is_corrupt() -> None:
    raw = simple_batch(2) + simple_batch(1)
    first = len(simple_batch(2))
    for cut in range(1, len(raw)):
        if cut == first:
            assert len(list(iter_batches(raw[:cut]))) == 1
            continue
        with pytest.raises(CorruptRecordError):
            list(iter_batches(raw[:cut]))
        with pytest.raises(CorruptRecordError):
            validate_batches(raw[:cut], MAX)


def test_truncated_tail_may_be_skipped_for_fetch_responses() -> None:
    raw = simple_batch(2) + simple_batch(1)
    first = len(simple_batch(2))
    for cut in range(first, len(raw)):
        headers = list(iter_batches(raw[:cut], allow_truncated_tail=True))
        assert [h.record_count for h in headers] == [2]
    bad = bytearray(raw)
    struct.pack_into(">i", bad, first + 8, 3)  # a wrong length is still corruption
    with pytest.raises(CorruptRecordError):
        list(iter_batches(bad, allow_truncated_tail=True))


def test_batch_length_below_minimum_is_corrupt() -> None:
    raw = bytearray(simple_batch(1))
    for length in (-1, 0, 48):
        struct.pack_into(">i", raw, 8, length)
        with pytest.raises(CorruptRecordError):
            list(iter_batches(raw))


@pytest.mark.parametrize("magic", [0, 1, 3, 255])
def test_other_magic_is_rejected_as_invalid_record(magic: int) -> None:
    raw = bytearray(simple_batch(1))
    raw[16] = magic
    with pytest.raises(UnsupportedMagicError) as info:
        list(iter_batches(raw))
    assert info.value.error_code == ErrorCode.INVALID_RECORD


def test_legacy_v1_message_set_is_recognised() -> None:
    # offset, size, crc, magic=1, attributes, timestamp, key=-1, value=b"v"
    message = struct.pack(">IbbqiI", 0, 1, 0, 1000, -1, 1) + b"v"
    legacy = struct.pack(">qi", 0, len(message)) + message
    with pytest.raises(UnsupportedMagicError):
        validate_batches(legacy, MAX)


def test_validate_accepts_well_formed_client_batches() -> None:
    raw = simple_batch(3, producer_id=5, producer_epoch=0, base_sequence=0)
    (h,) = validate_batches(raw, MAX)
    assert h.record_count == 3
    assert len(validate_batches(raw + raw, MAX)) == 2


def test_validate_size_limit() -> None:
    raw = simple_batch(3)
    assert validate_batches(raw, len(raw))
    with pytest.raises(RecordTooLargeError) as info:
        validate_batches(raw, len(raw) - 1)
    assert info.value.error_code == ErrorCode.MESSAGE_TOO_LARGE


def _rewrite(raw: bytes, fmt: str, pos: int, value: int) -> bytearray:
    out = bytearray(raw)
    struct.pack_into(fmt, out, pos, value)
    BatchHeader(out).update_crc()
    return out


@pytest.mark.parametrize(
    ("fmt", "pos", "value"),
    [
        (">i", 57, 0),  # record_count 0
        (">i", 57, -1),
        (">i", 57, 2),  # count != last_offset_delta + 1
        (">i", 23, 5),
        (">i", 23, -1),  # empty offset range
        (">q", 0, 7),  # base_offset must be 0 from a client
        (">h", 21, 0x20),  # control batch from a client
    ],
)
def test_validate_client_rules(fmt: str, pos: int, value: int) -> None:
    with pytest.raises(InvalidRecordError) as info:
        validate_batches(_rewrite(simple_batch(3), fmt, pos, value), MAX)
    assert info.value.error_code == ErrorCode.INVALID_RECORD


def test_validate_client_rules_are_skipped_for_other_origins() -> None:
    raw = _rewrite(simple_batch(3), ">q", 0, 7)
    assert validate_batches(raw, MAX, from_client=False)[0].base_offset == 7


def test_producer_id_without_sequence_is_invalid() -> None:
    raw = simple_batch(1, producer_id=3, producer_epoch=0)
    with pytest.raises(InvalidRecordError):
        validate_batches(raw, MAX)


def test_unknown_codec_and_empty_request() -> None:
    with pytest.raises(UnsupportedCompressionError) as info:
        validate_batches(_rewrite(simple_batch(1), ">h", 21, 5), MAX)
    assert info.value.error_code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    with pytest.raises(InvalidRecordError):
        validate_batches(b"", MAX)


def test_error_codes() -> None:
    assert RecordsError.error_code == ErrorCode.CORRUPT_MESSAGE
    assert CorruptRecordError.error_code == ErrorCode.CORRUPT_MESSAGE
    assert RecordTooLargeError.error_code == ErrorCode.MESSAGE_TOO_LARGE


# --- plain_client_batch: the produce fast path agrees with validate_batches -----------------
_NOT_PLAIN_BITS = 0x38  # timestamp type, transactional, control


@st.composite
def produced_batches(draw: st.DrawFn) -> bytes:
    """A client batch of any kind, sometimes with one header byte or the tail damaged."""
    producer_id = draw(st.sampled_from([-1, -1, 7]))
    builder = BatchBuilder(
        draw(st.sampled_from([0, 0, 5])),
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=draw(st.sampled_from([0, -1])) if producer_id >= 0 else -1,
        is_transactional=draw(st.booleans()) and producer_id >= 0,
        compression=draw(st.sampled_from([Compression.NONE, Compression.GZIP])),
        timestamp_type=draw(st.sampled_from(list(TimestampType))),
    )
    for i in range(draw(st.integers(1, 4))):
        builder.append(1000 + i, b"k", b"v" * i)
    data = bytearray(builder.build())
    damage = draw(st.sampled_from(["none", "none", "byte", "cut", "extra"]))
    if damage == "byte":
        data[draw(st.integers(0, HEADER_SIZE - 1))] ^= 1 << draw(st.integers(0, 7))
    elif damage == "cut":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif damage == "extra":
        data += bytes(data)
    return bytes(data)


@given(produced_batches(), st.sampled_from([MAX, 80]))
@settings(max_examples=400)
def test_plain_client_batch_agrees_with_validate_batches(data: bytes, max_bytes: int) -> None:
    plain = plain_client_batch(data, max_bytes)
    try:
        headers = validate_batches(data, max_bytes, from_client=True)
    except RecordsError:
        headers = []
    accepted_plain = (
        len(headers) == 1 and headers[0].producer_id == -1
        and not headers[0].attributes & _NOT_PLAIN_BITS
    )
    assert (plain is not None) == accepted_plain
    if plain is not None:
        h = headers[0]
        assert plain == (
            h.batch_length, h.last_offset_delta, h.base_timestamp, h.max_timestamp,
            h.record_count,
        )
