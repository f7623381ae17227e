"""ServerConnection: byte-exact framing, header handling, KIP-511 fallback, response bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from josef.protocol._generated.api_versions import ApiVersionsRequest, ApiVersionsResponse
from josef.protocol._generated.headers import RequestHeader
from josef.protocol._generated.heartbeat import HeartbeatRequest, HeartbeatResponse
from josef.protocol._generated.produce import ProduceRequest
from josef.protocol.connection import (
    DEFAULT_MAX_FRAME_BYTES,
    Request,
    ServerConnection,
    api_versions_fallback,
)
from josef.protocol.errors import ErrorCode
from josef.protocol.exceptions import FrameTooLarge, ProtocolError, UnsupportedVersion
from josef.protocol.messages import API_KEYS


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def header_v1(api_key: int, version: int, correlation_id: int, client_id: bytes | None) -> bytes:
    head = struct.pack(">hhi", api_key, version, correlation_id)
    if client_id is None:
        return head + b"\xff\xff"
    return head + struct.pack(">h", len(client_id)) + client_id


def header_v2(api_key: int, version: int, correlation_id: int, client_id: bytes | None) -> bytes:
    return header_v1(api_key, version, correlation_id, client_id) + b"\x00"


# ApiVersions v3, correlation id 7, client_id "cli", client_software_name "x", version "1".
API_VERSIONS_V3 = frame(header_v2(18, 3, 7, b"cli") + b"\x02x" + b"\x021" + b"\x00")
# Heartbeat v4: group "g", generation 5, member "m", group_instance_id null.
HEARTBEAT_V4 = frame(
    header_v2(12, 4, 8, b"cli") + b"\x02g" + b"\x00\x00\x00\x05" + b"\x02m" + b"\x00" + b"\x00"
)
# Heartbeat v0: same fields in the non-flexible layout (int16 string lengths), client_id null.
HEARTBEAT_V0 = frame(header_v1(12, 0, 9, None) + b"\x00\x01g" + b"\x00\x00\x00\x05" + b"\x00\x01m")


def summary(request: Request) -> tuple[object, ...]:
    return (
        request.api_key,
        request.api_version,
        request.correlation_id,
        request.client_id,
        request.body,
        request.frame_size,
        request.unsupported_version,
    )


def drain(connection: ServerConnection) -> list[Request]:
    out = []
    while (request := connection.next_request()) is not None:
        out.append(request)
    return out


def feed(chunks: list[bytes]) -> list[Request]:
    connection = ServerConnection()
    out: list[Request] = []
    for chunk in chunks:
        connection.receive_data(chunk)
        out.extend(drain(connection))
    assert connection.buffered_bytes == 0
    return out


def test_golden_api_versions_v3() -> None:
    [request] = feed([API_VERSIONS_V3])
    assert (request.api_key, request.api_version, request.correlation_id) == (18, 3, 7)
    assert request.client_id == "cli"
    assert request.frame_size == len(API_VERSIONS_V3) - 4
    assert request.body == ApiVersionsRequest(
        client_software_name="x", client_software_version="1"
    )
    assert not request.unsupported_version


def test_golden_heartbeat_flexible_and_not() -> None:
    flexible, classic = feed([HEARTBEAT_V4 + HEARTBEAT_V0])
    assert flexible.body == HeartbeatRequest(
        group_id="g", generation_id=5, member_id="m", group_instance_id=None
    )
    assert classic.body == HeartbeatRequest(group_id="g", generation_id=5, member_id="m")
    assert classic.client_id == ""  # null client_id reads as "" (Kafka does the same)
    assert (flexible.correlation_id, classic.correlation_id) == (8, 9)


def test_every_split_point_decodes_the_same() -> None:
    stream = API_VERSIONS_V3 + HEARTBEAT_V4 + HEARTBEAT_V0
    expected = [summary(r) for r in feed([stream])]
    assert len(expected) == 3
    for cut in range(len(stream) + 1):
        assert [summary(r) for r in feed([stream[:cut], stream[cut:]])] == expected
    one_byte_at_a_time = [stream[i : i + 1] for i in range(len(stream))]
    assert [summary(r) for r in feed(one_byte_at_a_time)] == expected


def test_incomplete_frame_waits() -> None:
    connection = ServerConnection()
    connection.receive_data(API_VERSIONS_V3[:-1])
    assert connection.next_request() is None
    assert connection.buffered_bytes == len(API_VERSIONS_V3) - 1
    connection.receive_data(API_VERSIONS_V3[-1:])
    assert connection.next_request() is not None
    assert connection.next_request() is None


def test_buffer_compacts_as_frames_are_consumed() -> None:
    connection = ServerConnection()
    for _ in range(1000):
        connection.receive_data(HEARTBEAT_V4 + HEARTBEAT_V0[:10])
        assert connection.next_request() is not None
        connection.receive_data(HEARTBEAT_V0[10:])
        assert connection.next_request() is not None
    assert connection.buffered_bytes == 0
    assert len(connection._buf) < 4 * len(HEARTBEAT_V4)


@pytest.mark.parametrize("size", [-1, -(2**31), 1001, 2**31 - 1])
def test_bad_size_raises_before_the_body(size: int) -> None:
    connection = ServerConnection(max_frame_bytes=1000)
    with pytest.raises(FrameTooLarge):
        connection.receive_data(struct.pack(">i", size))
    with pytest.raises(ProtocolError):  # the connection stays failed
        connection.next_request()


def test_size_prefix_split_across_chunks_is_checked() -> None:
    connection = ServerConnection(max_frame_bytes=1000)
    connection.receive_data(b"\x7f\xff")
    assert connection.next_request() is None
    with pytest.raises(FrameTooLarge):
        connection.receive_data(b"\xff\xff")


def test_default_limit_is_kafka_socket_request_max_bytes() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 100 * 1024 * 1024
    connection = ServerConnection()
    connection.receive_data(struct.pack(">i", DEFAULT_MAX_FRAME_BYTES))  # at the limit: fine
    assert connection.next_request() is None
    with pytest.raises(FrameTooLarge):
        ServerConnection().receive_data(struct.pack(">i", DEFAULT_MAX_FRAME_BYTES + 1))


def test_unknown_api_key() -> None:
    connection = ServerConnection()
    unknown = max(API_KEYS) + 1000
    connection.receive_data(frame(header_v1(unknown, 0, 1, b"c")))
    with pytest.raises(ProtocolError, match="api_key"):
        connection.next_request()


def test_unknown_version_of_other_api_closes() -> None:
    connection = ServerConnection()
    connection.receive_data(frame(header_v2(12, 99, 1, b"c") + b"\x00"))
    with pytest.raises(UnsupportedVersion) as info:
        connection.next_request()
    assert (info.value.api_key, info.value.api_version) == (12, 99)


def test_unknown_api_versions_version_falls_back() -> None:
    # A newer client: header v2 (int16 client_id + tagged fields), a body we cannot parse.
    connection = ServerConnection()
    connection.receive_data(frame(header_v2(18, 99, 11, b"new") + b"\xde\xad\xbe\xef"))
    request = connection.next_request()
    assert request is not None
    assert request.unsupported_version and request.body is None
    assert (request.api_version, request.correlation_id, request.client_id) == (99, 11, "new")
    max_version = API_KEYS[18].max_version
    response = b"".join(connection.encode_response(request, api_versions_fallback(max_version)))
    # v0 body, v0 header: error 35, one ApiVersion (18, 0, max).
    body = struct.pack(">hihhh", 35, 1, 18, 0, max_version)
    assert response == struct.pack(">ii", 4 + len(body), 11) + body


def test_not_advertised_version() -> None:
    def supported(api_key: int, api_version: int) -> bool:
        return api_version <= 2

    connection = ServerConnection(supported=supported)
    connection.receive_data(API_VERSIONS_V3)
    request = connection.next_request()
    assert request is not None and request.unsupported_version
    assert request.correlation_id == 7 and request.client_id == "cli"
    connection = ServerConnection(supported=supported)
    connection.receive_data(HEARTBEAT_V4)
    with pytest.raises(UnsupportedVersion):
        connection.next_request()
    connection = ServerConnection(supported=supported)
    connection.receive_data(HEARTBEAT_V0)
    assert connection.next_request() is not None


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 7, 9, 12])
def test_truncated_header(cut: int) -> None:
    payload = header_v2(12, 4, 8, b"cli")[:cut]
    connection = ServerConnection()
    connection.receive_data(frame(payload))
    with pytest.raises(ProtocolError):
        connection.next_request()


def test_truncated_body() -> None:
    connection = ServerConnection()
    connection.receive_data(frame(HEARTBEAT_V4[4:-1]))
    with pytest.raises(ProtocolError):
        connection.next_request()


def test_trailing_bytes_after_a_body_are_ignored_as_kafka_does() -> None:
    # librdkafka 2.x sends stray bytes after an all-topics Metadata v9+ body (issue #5049);
    # Kafka's broker ignores them, so must we.
    connection = ServerConnection()
    connection.receive_data(frame(HEARTBEAT_V4[4:] + b"\x00\x00\x00"))
    request = connection.next_request()
    assert request is not None and request.api_key == 12
    assert connection.trailing_bytes == 3
    connection.receive_data(HEARTBEAT_V0)
    assert connection.next_request() is not None


def test_response_bytes_api_versions_v3_header_v0() -> None:
    connection = ServerConnection()
    connection.receive_data(API_VERSIONS_V3)
    request = connection.next_request()
    assert request is not None
    body = ApiVersionsResponse(
        error_code=ErrorCode.NONE,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)],
        throttle_time_ms=0,
    )
    chunks = connection.encode_response(request, body)
    expected = (
        b"\x00\x00\x00\x13"  # size 19
        b"\x00\x00\x00\x07"  # correlation id; ApiVersions responses always use header v0
        b"\x00\x00"  # error_code
        b"\x02" b"\x00\x12\x00\x00\x00\x04" b"\x00"  # compact array of 1 ApiVersion
        b"\x00\x00\x00\x00"  # throttle_time_ms
        b"\x00"  # no tagged fields (defaults are left out)
    )
    assert b"".join(chunks) == expected


def test_response_bytes_flexible_header_v1() -> None:
    connection = ServerConnection()
    connection.receive_data(HEARTBEAT_V4)
    request = connection.next_request()
    assert request is not None
    chunks = connection.encode_response(
        request, HeartbeatResponse(throttle_time_ms=0, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
    )
    assert b"".join(chunks) == (
        b"\x00\x00\x00\x0c" b"\x00\x00\x00\x08" b"\x00" b"\x00\x00\x00\x00" b"\x00\x1b" b"\x00"
    )


def test_response_bytes_classic_header_v0() -> None:
    connection = ServerConnection()
    connection.receive_data(HEARTBEAT_V0)
    request = connection.next_request()
    assert request is not None
    chunks = connection.encode_response(request, HeartbeatResponse(error_code=ErrorCode.NONE))
    assert b"".join(chunks) == b"\x00\x00\x00\x06" b"\x00\x00\x00\x09" b"\x00\x00"


def _produce_request(records: bytes) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=30_000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[ProduceRequest.PartitionProduceData(index=0, records=records)],
            )
        ],
    )


@pytest.mark.parametrize("version", [3, 8, 9, 11])
def test_produce_records_are_views_over_the_frame(version: int) -> None:
    records = bytes(range(256)) * 64
    payload = header_v2(0, version, 5, b"p") if version >= 9 else header_v1(0, version, 5, b"p")
    payload += _produce_request(records).encode(version)
    connection = ServerConnection()
    connection.receive_data(frame(payload) + HEARTBEAT_V0)
    request = connection.next_request()
    assert request is not None
    view = request.body.topic_data[0].partition_data[0].records
    assert isinstance(view, memoryview)
    assert view == records
    assert isinstance(view.obj, bytes) and len(view.obj) == request.frame_size
    # The receive buffer is free to move on: the next request decodes, the view stays valid.
    assert connection.next_request() is not None
    connection.receive_data(HEARTBEAT_V4)
    assert connection.next_request() is not None
    assert view == records


def test_response_records_chunk_is_not_copied() -> None:
    connection = ServerConnection()
    connection.receive_data(frame(header_v2(1, 12, 3, b"f") + _fetch_request_v12_body()))
    request = connection.next_request()
    assert request is not None
    records = memoryview(b"\x07" * 1000)
    fetch_response = API_KEYS[1].response(
        responses=[
            API_KEYS[1].response.FetchableTopicResponse(
                topic="t",
                partitions=[
                    API_KEYS[1].response.PartitionData(partition_index=0, records=records)
                ],
            )
        ]
    )
    chunks = connection.encode_response(request, fetch_response)
    assert any(chunk is records or (isinstance(chunk, memoryview) and chunk.obj is records.obj)
               for chunk in chunks)
    raw = b"".join(chunks)
    assert struct.unpack_from(">ii", raw) == (len(raw) - 4, 3)
    assert raw[8] == 0  # header v1: empty tagged fields
    assert raw[9:] == fetch_response.encode(12)


def _fetch_request_v12_body() -> bytes:
    return API_KEYS[1].request(max_wait_ms=500, min_bytes=1, topics=[]).encode(12)


def test_controlled_shutdown_v0_uses_header_v0() -> None:
    # Header v0 has no client_id: api_key, api_version, correlation_id, then broker_id.
    connection = ServerConnection()
    connection.receive_data(frame(struct.pack(">hhi", 7, 0, 42) + struct.pack(">i", 3)))
    request = connection.next_request()
    assert request is not None
    assert (request.api_key, request.correlation_id, request.client_id) == (7, 42, "")
    assert request.body == API_KEYS[7].request(broker_id=3)


def test_large_frame_is_handed_over_not_copied() -> None:
    records = bytes(range(256)) * 1024  # 256 KiB: above the hand-over threshold
    body = ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t", partition_data=[ProduceRequest.PartitionProduceData(0, records)]
            )
        ],
    )
    header = RequestHeader(0, 9, 7, "c").encode(2)
    payload = header + body.encode(9)
    connection = ServerConnection()
    wire = frame(payload) + HEARTBEAT_V0
    # Arrives in pieces, with the next request's first bytes glued to the end of the large one.
    for i in range(0, len(wire), 7000):
        connection.receive_data(wire[i : i + 7000])
    request = connection.next_request()
    assert request is not None and request.frame_size == len(payload)
    got = request.body.topic_data[0].partition_data[0].records
    assert isinstance(got, memoryview) and bytes(got) == records
    assert isinstance(got.obj, bytearray)  # the receive buffer itself, not a copy
    follow = connection.next_request()
    assert follow is not None and follow.api_key == 12
    assert connection.buffered_bytes == 0


# ---- the buffered (zero-copy) receive path: get_buffer / buffer_updated --------------------
def transport_feed(
    connection: ServerConnection, data: bytes, read_sizes: list[int] | None = None
) -> list[Request]:
    """What an asyncio transport does with a BufferedProtocol: read at most what the view
    offers (here also at most the next of `read_sizes`), hold the view while announcing it
    and while the requests are drained (asyncio's selector transport does), then drop it."""
    out: list[Request] = []
    pos = 0
    reads = iter(read_sizes or [])
    while pos < len(data):
        view = connection.get_buffer(-1)
        assert len(view) > 0
        n = min(len(view), len(data) - pos, next(reads, len(data)))
        view[:n] = data[pos : pos + n]
        connection.buffer_updated(n)
        out.extend(drain(connection))
        del view
        pos += n
    return out


def _large_produce_frame(records_bytes: int, correlation_id: int = 7) -> tuple[bytes, bytes]:
    records = bytes(range(256)) * (records_bytes // 256)
    payload = RequestHeader(0, 9, correlation_id, "c").encode(2) + _produce_request(
        records
    ).encode(9)
    return frame(payload), records


def test_buffered_every_split_point_decodes_the_same() -> None:
    stream = API_VERSIONS_V3 + HEARTBEAT_V4 + HEARTBEAT_V0
    expected = [summary(r) for r in feed([stream])]
    for cut in range(len(stream) + 1):
        connection = ServerConnection()
        got = transport_feed(connection, stream, [cut or 1, len(stream)])
        assert [summary(r) for r in got] == expected
        assert connection.buffered_bytes == 0
    connection = ServerConnection()
    assert [summary(r) for r in transport_feed(connection, stream, [1] * len(stream))] == expected


def test_buffered_large_frame_split_at_every_byte_near_its_edges() -> None:
    large, records = _large_produce_frame(80 * 1024)
    stream = HEARTBEAT_V0 + large + HEARTBEAT_V4
    expected = [summary(r)[:4] for r in feed([stream])]
    assert [r[0] for r in expected] == [12, 0, 12]
    edges = [len(HEARTBEAT_V0), len(HEARTBEAT_V0) + len(large)]
    cuts = {c for edge in edges for c in range(max(edge - 40, 1), edge + 40)} | set(range(1, 40))
    for cut in sorted(cuts):
        connection = ServerConnection()
        got = transport_feed(connection, stream, [cut, len(stream)])
        assert [summary(r)[:4] for r in got] == expected
        assert bytes(got[1].body.topic_data[0].partition_data[0].records) == records


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["small", "flexible", "large", "huge"]), min_size=1, max_size=6),
    read_sizes=st.lists(st.integers(min_value=1, max_value=300_000), max_size=40),
)
def test_buffered_matches_receive_data_for_any_reads(
    kinds: list[str], read_sizes: list[int]
) -> None:
    frames = {
        "small": HEARTBEAT_V0,
        "flexible": HEARTBEAT_V4,
        "large": _large_produce_frame(70 * 1024)[0],
        "huge": _large_produce_frame(1300 * 1024)[0],
    }
    stream = b"".join(frames[k] for k in kinds)
    expected = [summary(r)[:4] for r in feed([stream])]
    connection = ServerConnection()
    got = transport_feed(connection, stream, read_sizes)
    assert [summary(r)[:4] for r in got] == expected
    assert connection.buffered_bytes == 0


def test_buffered_large_frame_is_the_buffer_itself_and_no_bigger() -> None:
    large, records = _large_produce_frame(300 * 1024)
    connection = ServerConnection()
    [first, request, follow] = transport_feed(connection, HEARTBEAT_V4 + large + HEARTBEAT_V0)
    assert (first.api_key, request.api_key, follow.api_key) == (12, 0, 12)
    got = request.body.topic_data[0].partition_data[0].records
    assert bytes(got) == records
    # The frame was read straight into a buffer that ends exactly at the frame's end.
    assert isinstance(got.obj, bytearray) and len(got.obj) == len(large)


@pytest.mark.parametrize("size", [-1, -(2**31), 1001, 2**31 - 1])
@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_buffered_bad_size_raises_when_its_bytes_arrive(size: int, split: int) -> None:
    connection = ServerConnection(max_frame_bytes=1000)
    prefix = struct.pack(">i", size)
    view = connection.get_buffer(-1)
    view[:split] = prefix[:split]
    if split < 4:
        connection.buffer_updated(split)
        assert connection.next_request() is None
        del view  # the transport drops its view before asking for the next
        view = connection.get_buffer(-1)
        view[: 4 - split] = prefix[split:]
        split = 4 - split
    with pytest.raises(FrameTooLarge):
        connection.buffer_updated(split)
    with pytest.raises(ProtocolError):  # the connection stays failed
        connection.get_buffer(-1)
    with pytest.raises(ProtocolError):
        connection.next_request()


def test_declared_size_alone_allocates_one_bounded_step() -> None:
    # A hostile prefix: 100 MiB declared (the maximum allowed), a few bytes sent.
    connection = ServerConnection()
    transport_feed(connection, struct.pack(">i", DEFAULT_MAX_FRAME_BYTES) + b"\x00" * 8)
    for _ in range(3):  # asking again allocates nothing more
        view = connection.get_buffer(-1)
        assert 0 < len(view) <= 1024 * 1024
        del view
    assert connection.capacity_bytes <= 1024 * 1024 + 64 * 1024


def test_buffer_never_grows_more_than_a_step_ahead_of_arrived_bytes() -> None:
    connection = ServerConnection()
    data = struct.pack(">i", DEFAULT_MAX_FRAME_BYTES) + b"\x00" * (5 * 1024 * 1024)
    pos = 0
    while pos < len(data):
        view = connection.get_buffer(-1)
        n = min(len(view), 100_000, len(data) - pos)  # the peer trickles
        view[:n] = data[pos : pos + n]
        del view
        connection.buffer_updated(n)
        pos += n
        assert connection.capacity_bytes <= connection.buffered_bytes + 1024 * 1024 + 64 * 1024
    assert connection.next_request() is None


def test_buffer_is_given_back_after_a_burst_of_small_requests() -> None:
    connection = ServerConnection()
    burst = HEARTBEAT_V4 * (1200 * 1024 // len(HEARTBEAT_V4))  # more than 1 MiB
    # The owner stops taking requests (in-flight limit) while the burst arrives.
    pos = 0
    while pos < len(burst):
        view = connection.get_buffer(-1)
        n = min(len(view), len(burst) - pos)
        view[:n] = burst[pos : pos + n]
        del view
        connection.buffer_updated(n)
        pos += n
    assert connection.capacity_bytes >= len(burst)
    assert len(drain(connection)) == len(burst) // len(HEARTBEAT_V4)
    view = connection.get_buffer(-1)
    assert len(view) >= 64 * 1024
    del view
    assert connection.capacity_bytes <= 64 * 1024


def test_small_requests_reuse_the_buffer() -> None:
    connection = ServerConnection()
    for _ in range(200):
        assert len(transport_feed(connection, HEARTBEAT_V4 + HEARTBEAT_V0)) == 2
    assert connection.capacity_bytes == 64 * 1024
