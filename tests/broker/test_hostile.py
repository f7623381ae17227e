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
