"""Hypothesis: records and whole batches round-trip with every codec; hostile bytes raise only
RecordsError (or ProtocolError)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from josef.protocol.exceptions import ProtocolError
from josef.records.batch import (
    BatchHeader,
    Compression,
    TimestampType,
    iter_batches,
    validate_batches,
)
from josef.records.builder import BatchBuilder
from josef.records.compression import decompress
from josef.records.errors import RecordsError
from josef.records.records import Record, iter_records, record_offset, record_timestamp

INT32 = st.integers(-(2**31), 2**31 - 1)
TIMESTAMPS = st.integers(0, 2**42)
BLOBS = st.none() | st.binary(max_size=64)
HEADERS = st.lists(st.tuples(st.text(max_size=8), BLOBS), max_size=3)
RECORD_INPUTS = st.lists(st.tuples(TIMESTAMPS, BLOBS, BLOBS, HEADERS), min_size=1, max_size=8)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    offset_delta=INT32,
    timestamp_delta=st.integers(-(2**63), 2**63 - 1),
    key=BLOBS,
    value=BLOBS,
    headers=HEADERS,
    attributes=st.integers(0, 255),
)
def test_record_round_trip(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
    attributes: int,
) -> None:
    record = Record(offset_delta, timestamp_delta, key, value, headers, attributes)
    out = bytearray()
    record.encode(out)
    assert len(out) == record.size()
    assert Record.decode(out, 0, len(out)) == (record, len(out))


@SETTINGS
@given(
    inputs=RECORD_INPUTS,
    codec=st.sampled_from(list(Compression)),
    base_offset=st.integers(0, 2**62),
    producer=st.tuples(st.integers(0, 2**62), st.integers(0, 2**15 - 1), st.integers(0, 2**31 - 1)),
    transactional=st.booleans(),
    log_append=st.booleans(),
)
def test_batch_round_trip(
    inputs: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    codec: Compression,
    base_offset: int,
    producer: tuple[int, int, int],
    transactional: bool,
    log_append: bool,
) -> None:
    producer_id, producer_epoch, base_sequence = producer
    builder = BatchBuilder(
        base_offset, producer_id=producer_id, producer_epoch=producer_epoch,
        base_sequence=base_sequence, is_transactional=transactional, compression=codec,
        timestamp_type=TimestampType.LOG_APPEND_TIME if log_append else TimestampType.CREATE_TIME,
    )
    for timestamp, key, value, headers in inputs:
        builder.append(timestamp, key, value, headers)
    raw = builder.build()
    (h,) = validate_batches(raw, len(raw), from_client=False)
    assert h.crc_valid() and h.size == len(raw)
    assert (h.compression, h.is_transactional) == (codec, transactional)
    assert h.record_count == len(inputs)
    assert h.last_offset == base_offset + len(inputs) - 1
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == producer
    assert h.max_timestamp == max(t for t, *_ in inputs)
    records = list(iter_records(h))
    assert [(r.key, r.value, r.headers) for r in records] == [
        (k, v, hs) for _, k, v, hs in inputs
    ]
    assert [record_offset(h, r) for r in records] == list(range(base_offset, h.next_offset))
    if not log_append:
        assert [record_timestamp(h, r) for r in records] == [t for t, *_ in inputs]
    if base_offset == 0:
        validate_batches(raw, len(raw))  # also passes the client-origin rules


def _corrupt_built_batch(
    inputs: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    codec: Compression,
    data: st.DataObject,
) -> None:
    builder = BatchBuilder(compression=codec)
    for timestamp, key, value, headers in inputs:
        builder.append(timestamp, key, value, headers)
    raw = bytearray(builder.build())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    _consume(raw, fix_crc=data.draw(st.booleans()))


@settings(SETTINGS, max_examples=200)
@given(inputs=RECORD_INPUTS, codec=st.sampled_from(list(Compression)), data=st.data())
def test_corrupting_a_built_batch_raises_only_records_errors(
    inputs: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    codec: Compression,
    data: st.DataObject,
) -> None:
    _corrupt_built_batch(inputs, codec, data)


@settings(SETTINGS, max_examples=300)
@given(raw=st.binary(max_size=300), fix_crc=st.booleans())
def test_random_bytes_raise_only_records_errors(raw: bytes, fix_crc: bool) -> None:
    _consume(bytearray(raw), fix_crc)


@SETTINGS
@given(raw=st.binary(max_size=300), codec=st.sampled_from(list(Compression)))
def test_random_compressed_sections_raise_only_records_errors(
    raw: bytes, codec: Compression
) -> None:
    try:
        assert len(decompress(codec, raw, 10_000)) <= 10_000
    except RecordsError:
        pass


def _consume(raw: bytearray, fix_crc: bool) -> None:
    """Walk, validate and decode everything; only our error types may escape."""
    try:
        for h in iter_batches(raw):
            if fix_crc:  # get past the CRC to reach the record decoder
                h.update_crc()
            for _ in iter_records(BatchHeader(raw, h.pos), 100_000):
                pass
        validate_batches(raw, 1 << 20)
    except (RecordsError, ProtocolError):
        pass


@pytest.mark.soak
@settings(SETTINGS, max_examples=5_000)
@given(inputs=RECORD_INPUTS, codec=st.sampled_from(list(Compression)), data=st.data())
def test_soak_corrupted_batches(
    inputs: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    codec: Compression,
    data: st.DataObject,
) -> None:
    _corrupt_built_batch(inputs, codec, data)
