"""Hostile input against a running `josef serve`: one log line, that connection closed, the
server and other clients unaffected."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from josef.broker.handlers import default_registry
from josef.protocol._generated.api_versions import ApiVersionsRequest, ApiVersionsResponse
from josef.protocol._generated.create_topics import CreateTopicsRequest
from josef.protocol._generated.fetch import FetchRequest
from josef.protocol._generated.metadata import MetadataRequest
from josef.protocol.errors import ErrorCode
from tests.broker import wire
from tests.broker.conftest import ServeProcess


@pytest.fixture
def bystander(serve: ServeProcess):
    """A healthy client connected before the hostile one; must keep working."""
    sock = wire.connect(serve.bootstrap)
    yield sock
    response = wire.call(sock, 18, 3, ApiVersionsRequest(
        client_software_name="bystander", client_software_version="1.0"), correlation_id=77)
    assert response.error_code == ErrorCode.NONE
    sock.close()


def _closing_lines(serve: ServeProcess, sock: socket.socket) -> list[str]:
    host, port = sock.getsockname()[:2]
    peer = f"{host}:{port}"
    deadline = time.monotonic() + 5
    while True:
        lines = [ln for ln in serve.log().splitlines() if f"closing connection from {peer}" in ln]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def _assert_closed_with_one_line(serve: ServeProcess, sock: socket.socket, reason: str) -> None:
    assert wire.is_closed(sock)
    lines = _closing_lines(serve, sock)
    assert len(lines) == 1, lines
    assert reason in lines[0], lines[0]
    assert "Traceback" not in serve.log()


def test_api_versions_advertises_exactly_the_registry(serve: ServeProcess) -> None:
    with wire.connect(serve.bootstrap) as sock:
        response = wire.call(sock, 18, 3, ApiVersionsRequest(
            client_software_name="josef-tests", client_software_version="1"))
    assert response.error_code == ErrorCode.NONE
    advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    expected = {s.api_key: (s.min_version, s.max_version) for s in default_registry()}
    expected[0] = (0, expected[0][1])  # KAFKA-18659: Produce listed from v0, served from v3
    assert advertised == expected
    assert advertised[18] == (0, 4)


@pytest.mark.parametrize("size", [2**31 - 1, 104_857_601, -1, -2**31])
def test_bad_frame_size(serve: ServeProcess, bystander: socket.socket, size: int) -> None:
    with wire.connect(serve.bootstrap) as sock:
        sock.sendall(struct.pack(">i", size) + b"\x00" * 8)
        _assert_closed_with_one_line(serve, sock, "socket.request.max.bytes")


def test_unknown_api_key(serve: ServeProcess, bystander: socket.socket) -> None:
    with wire.connect(serve.bootstrap) as sock:
        payload = struct.pack(">hhih", 9999, 0, 1, -1)
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        _assert_closed_with_one_line(serve, sock, "api_key 9999")


def test_unadvertised_version(serve: ServeProcess, bystander: socket.socket) -> None:
    # Produce v2 exists in the spec but is not served (magic 0/1 only): refused, closed.
    with wire.connect(serve.bootstrap) as sock:
        payload = struct.pack(">hhih", 0, 2, 1, -1) + b"\x00" * 10
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        _assert_closed_with_one_line(serve, sock, "v2")


def test_unknown_api_versions_version_gets_kip511_fallback(
    serve: ServeProcess, bystander: socket.socket
) -> None:
    with wire.connect(serve.bootstrap) as sock:
        # ApiVersions v99: header v2 (flexible) and a body we cannot know.
        client_id = b"future-client"
        payload = (struct.pack(">hhih", 18, 99, 5, len(client_id)) + client_id + b"\x00"
                   + b"\x07future\x021\x00")
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", wire.recv_exactly(sock, 4))[0]
        frame = wire.recv_exactly(sock, size)
        assert struct.unpack_from(">i", frame)[0] == 5
        response = ApiVersionsResponse.decode(frame[4:], 0)
        assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
        assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == [
            (18, 0, 4)
        ]
        # The connection stays usable: the client retries with a version we know.
        retry = wire.call(sock, 18, 0, ApiVersionsRequest(), correlation_id=6)
        assert retry.error_code == ErrorCode.NONE


@pytest.mark.parametrize("seed", range(3))
def test_garbage(serve: ServeProcess, bystander: socket.socket, seed: int) -> None:
    garbage = os.urandom(200)
    # A plausible size then noise: the header or body decode must fail, nothing else.
    payload = struct.pack(">hhi", 3, 12, seed) + garbage
    with wire.connect(serve.bootstrap) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        assert wire.is_closed(sock)
        assert len(_closing_lines(serve, sock)) == 1
    assert "Traceback" not in serve.log()


def test_trailing_bytes_in_frame_are_tolerated(serve: ServeProcess) -> None:
    # Kafka ignores bytes after a request body (librdkafka 2.x sends some); so do we.
    request = wire.encode_request(3, 12, MetadataRequest(topics=[]))
    payload = request[4:] + b"\x01\x02\x03"
    with wire.connect(serve.bootstrap) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        correlation_id, response = wire.recv_response(sock, 3, 12)
        assert correlation_id == 1 and response.brokers


def test_truncated_frame_then_disconnect(serve: ServeProcess, bystander: socket.socket) -> None:
    request = wire.encode_request(3, 12, MetadataRequest(topics=None))
    with wire.connect(serve.bootstrap) as sock:
        sock.sendall(request[: len(request) // 2])
    with wire.connect(serve.bootstrap) as sock:
        assert wire.call(sock, 3, 12, MetadataRequest(topics=None)).brokers


def test_pipelined_requests_answered_in_order(serve: ServeProcess) -> None:
    with wire.connect(serve.bootstrap) as sock:
        batch = b"".join(
            wire.encode_request(18, 3, ApiVersionsRequest(
                client_software_name="pipe", client_software_version="1"), correlation_id=i)
            if i % 2 else wire.encode_request(3, 9, MetadataRequest(topics=None), correlation_id=i)
            for i in range(200)
        )
        sock.sendall(batch)
        for i in range(200):
            api_key, version = (18, 3) if i % 2 else (3, 9)
            correlation_id, _ = wire.recv_response(sock, api_key, version)
            assert correlation_id == i


def test_many_idle_connections_do_not_stall_others(serve: ServeProcess) -> None:
    idle = [wire.connect(serve.bootstrap) for _ in range(300)]
    try:
        with wire.connect(serve.bootstrap) as sock:
            started = time.monotonic()
            assert wire.call(sock, 3, 12, MetadataRequest(topics=None)).brokers
            assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def _settled_rss(pid: int) -> int:
    """RSS once it stops moving (the broker has read what was sent)."""
    last = _rss_bytes(pid)
    for _ in range(50):
        time.sleep(0.1)
        now = _rss_bytes(pid)
        if now == last:
            return now
        last = now
    return last


def test_declared_huge_frames_allocate_only_a_bounded_step(
    serve: ServeProcess, bystander: socket.socket
) -> None:
    # 50 clients each declare a 100 MiB request (the maximum allowed) and send a trickle of it.
    # The broker may read ahead one bounded step (1 MiB), never the declared size: < 2 MiB each.
    assert serve.proc is not None
    pid = serve.proc.pid
    clients = 50
    before = _settled_rss(pid)
    socks = [wire.connect(serve.bootstrap) for _ in range(clients)]
    try:
        for sock in socks:
            sock.sendall(struct.pack(">ihh", 104_857_600, 0, 9))
        time.sleep(0.2)
        for sock in socks:  # a second read: now into the buffer sized for this frame
            sock.sendall(b"\x00" * 1000)
        grown = _settled_rss(pid) - before
        assert grown < clients * 2 * 1024 * 1024, f"RSS grew {grown} bytes"
        # Still waiting for the rest, not closed.
        assert not wire.is_closed(socks[0], timeout=0.2)
    finally:
        for sock in socks:
            sock.close()


def _create_topic(sock: socket.socket, name: str) -> None:
    request = CreateTopicsRequest(
        topics=[CreateTopicsRequest.CreatableTopic(name=name, num_partitions=1,
                                                   replication_factor=1)],
        timeout_ms=10_000,
    )
    response = wire.call(sock, 19, 7, request, correlation_id=100)
    assert response.topics[0].error_code in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS)


def _long_poll_fetch(topic: str, max_wait_ms: int) -> FetchRequest:
    return FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
            FetchRequest.FetchPartition(partition=0, fetch_offset=0,
                                        partition_max_bytes=1024 * 1024)
        ])],
    )


def test_parked_request_keeps_the_answers_behind_it_in_order(serve: ServeProcess) -> None:
    # The Fetch suspends (nothing to read: it parks for max_wait_ms); the Metadata and
    # ApiVersions requests behind it finish at once, yet are answered after it.
    with wire.connect(serve.bootstrap) as sock:
        _create_topic(sock, "parked")
        started = time.monotonic()
        sock.sendall(
            wire.encode_request(1, 12, _long_poll_fetch("parked", 300), correlation_id=1)
            + wire.encode_request(3, 12, MetadataRequest(topics=None), correlation_id=2)
            + wire.encode_request(18, 3, ApiVersionsRequest(
                client_software_name="order", client_software_version="1"), correlation_id=3)
        )
        correlation_id, fetch = wire.recv_response(sock, 1, 12)
        assert correlation_id == 1 and fetch.error_code == ErrorCode.NONE
        assert time.monotonic() - started >= 0.25
        assert wire.recv_response(sock, 3, 12)[0] == 2
        assert wire.recv_response(sock, 18, 3)[0] == 3


def test_disconnect_while_parked_is_quiet(serve: ServeProcess, bystander: socket.socket) -> None:
    with wire.connect(serve.bootstrap) as sock:
        _create_topic(sock, "parked")
        sock.sendall(wire.encode_request(1, 12, _long_poll_fetch("parked", 30_000)))
        time.sleep(0.2)  # parked by now
    time.sleep(0.2)
    assert "Traceback" not in serve.log()
