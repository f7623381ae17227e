"""A tiny blocking Kafka client over a raw socket, built on the generated codec (tests only)."""

from __future__ import annotations

import socket
import struct
from typing import Any

from josef.protocol._generated.headers import RequestHeader
from josef.protocol.messages import API_KEYS, request_header_version, response_header_version


def connect(bootstrap: str, timeout: float = 10.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def encode_request(api_key: int, version: int, body: Any, correlation_id: int = 1) -> bytes:
    header = RequestHeader(
        request_api_key=api_key,
        request_api_version=version,
        correlation_id=correlation_id,
        client_id="wire-test",
    ).encode(request_header_version(api_key, version))
    payload = header + body.encode(version)
    return struct.pack(">i", len(payload)) + payload


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def recv_response(sock: socket.socket, api_key: int, version: int) -> tuple[int, Any]:
    """(correlation_id, decoded body) of the next response."""
    size = struct.unpack(">i", recv_exactly(sock, 4))[0]
    frame = recv_exactly(sock, size)
    correlation_id = struct.unpack_from(">i", frame, 0)[0]
    pos = 4
    if response_header_version(api_key, version) >= 1:
        assert frame[pos] == 0, "no tagged fields expected in response headers"
        pos += 1
    return correlation_id, API_KEYS[api_key].response.decode(frame[pos:], version)


def call(
    sock: socket.socket, api_key: int, version: int, body: Any, correlation_id: int = 1
) -> Any:
    sock.sendall(encode_request(api_key, version, body, correlation_id))
    got, response = recv_response(sock, api_key, version)
    assert got == correlation_id
    return response


def is_closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the server closes the connection (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
