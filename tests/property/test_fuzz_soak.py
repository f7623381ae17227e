"""The long decoder fuzz (`make soak`): more examples, plus memory bounds on hostile lengths."""

from __future__ import annotations

import itertools
import random
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from josef.protocol.connection import ServerConnection
from tests.property.test_fuzz_decoders import (
    CASES,
    REQUEST_VERSIONS,
    decode_only_protocol_errors,
    feed_connection,
    mutate,
    request_header,
    valid_encodings,
)

pytestmark = pytest.mark.soak

_LONG = settings(max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))
_PEAK_LIMIT_BYTES = 4 * 1024 * 1024

# Bodies that claim far more than they hold: int32 lengths/counts and compact (varint) ones.
_HOSTILE_BODIES = [
    b"\x7f\xff\xff\xff" * 8,
    b"\x00\x01" + b"\x7f\xff\xff\xff" * 8,
    b"\xff\xff\xff\xff\x0f" * 8,
    b"\x00" + b"\xff\xff\xff\xff\x07" * 8,
    b"\x02x" + b"\xff\xff\xff\x7f" * 8,
]


def test_sweep_many_seeds() -> None:
    rng = random.Random(7)
    for _ in range(40):
        for cls, version in CASES:
            decode_only_protocol_errors(cls, rng.randbytes(rng.randrange(256)), version)
            for valid in valid_encodings(cls, version, rng):
                decode_only_protocol_errors(cls, mutate(valid, rng), version)


@_LONG
@given(case=st.sampled_from(CASES), data=st.binary(max_size=1024))
def test_random_bytes_long(case: tuple[type, int], data: bytes) -> None:
    cls, version = case
    decode_only_protocol_errors(cls, data, version)


@_LONG
@given(case=st.sampled_from(CASES), seed=st.integers(0, 2**32 - 1))
def test_mutated_valid_encodings_long(case: tuple[type, int], seed: int) -> None:
    cls, version = case
    rng = random.Random(seed)
    for valid in valid_encodings(cls, version, rng):
        decode_only_protocol_errors(cls, mutate(valid, rng), version)


@_LONG
@given(
    request=st.sampled_from(REQUEST_VERSIONS),
    body=st.binary(max_size=512),
    cuts=st.lists(st.integers(0, 600), max_size=8),
)
def test_connection_stream_long(request: tuple[int, int], body: bytes, cuts: list[int]) -> None:
    payload = request_header(*request) + body
    data = struct.pack(">i", len(payload)) + payload
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    feed_connection([data[a:b] for a, b in itertools.pairwise(bounds)])


def test_hostile_lengths_allocate_little() -> None:
    tracemalloc.start()
    try:
        for cls, version in CASES:
            for body in _HOSTILE_BODIES:
                decode_only_protocol_errors(cls, body, version)
        for api_key, version in REQUEST_VERSIONS:
            for body in _HOSTILE_BODIES:
                payload = request_header(api_key, version) + body
                feed_connection([struct.pack(">i", len(payload)) + payload])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < _PEAK_LIMIT_BYTES


def test_claimed_frame_size_is_not_preallocated() -> None:
    tracemalloc.start()
    try:
        connection = ServerConnection()  # 100 MiB limit
        connection.receive_data(struct.pack(">i", 100 * 1024 * 1024) + b"\x00" * 1000)
        assert connection.next_request() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < _PEAK_LIMIT_BYTES
    assert connection.buffered_bytes == 1004
