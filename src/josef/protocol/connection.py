"""The server side of one Kafka connection, sans-IO: bytes in, requests out, responses to bytes.

No sockets, no asyncio, no clock (h11 style). The owner feeds whatever the transport delivered
to `receive_data`, then calls `next_request` until it returns None, and writes the chunks of
`encode_response` to the transport in request order (Kafka clients match responses by order
and correlation id).

Contract:
- Framing is Kafka's: an int32 size, then that many bytes of request header + body. A size
  below 0 or above `max_frame_bytes` raises `FrameTooLarge` as soon as the 4 size bytes are
  here, before any of the body is buffered.
- A small frame is copied out once into its own `bytes`; a frame of 64 KiB or more is not
  copied at all: the receive buffer grows (as bytes arrive, never ahead of them, so a declared
  size allocates nothing) and is then handed over whole. Either way the `records` fields of the
  decoded body are memoryviews over memory that the connection no longer touches.
- Any violation (bad size, unknown api_key, a version outside the spec or outside what the
  owner advertises, truncated header, body not consuming the frame exactly) raises
  `ProtocolError` or a subclass. The connection is then dead: the owner closes the socket, as
  Kafka does, and every later call raises `ProtocolError` again.
- KIP-511: an ApiVersions request of a version this side does not support is not an error. Kafka
  reads its header (header v2 from ApiVersions v3 on, v1 before, computed from the version
  number alone so a newer client's header still parses; the client_id keeps its int16 length
  for exactly this reason), skips the body, and answers with an ApiVersionsResponse v0 carrying
  UNSUPPORTED_VERSION and the ApiVersions version range it supports. `next_request` returns such
  a request with `unsupported_version=True` and `body=None`; `encode_response` writes it at v0;
  `api_versions_fallback` builds that response body.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from josef.protocol._generated.api_versions import ApiVersionsResponse
from josef.protocol._generated.headers import RequestHeader
from josef.protocol.errors import ErrorCode
from josef.protocol.exceptions import FrameTooLarge, ProtocolError, UnsupportedVersion
from josef.protocol.messages import (
    API_KEYS,
    API_VERSIONS_KEY,
    ApiMessages,
    request_header_version,
    response_header_version,
)

# Kafka's socket.request.max.bytes default (100 MiB).
DEFAULT_MAX_FRAME_BYTES = 104_857_600
# Frames at least this large are not copied out of the receive buffer: the buffer is handed
# over whole. Below it a copy is cheaper than regrowing a fresh buffer for every request.
_HANDOVER_MIN_BYTES = 64 * 1024

_INT32 = struct.Struct(">i")
_INT16_INT16 = struct.Struct(">hh")
_SIZE_AND_CORRELATION_ID = struct.Struct(">ii")
_EMPTY_TAGGED_FIELDS = b"\x00"

# (api_key, api_version) -> (API, request header version) and -> response header version, for
# every version the specs define: one dict lookup per message instead of the version rules.
_REQUEST_VERSIONS: dict[tuple[int, int], tuple[ApiMessages, int]] = {
    (key, version): (api, request_header_version(key, version))
    for key, api in API_KEYS.items()
    for version in range(api.min_version, api.max_version + 1)
}
_RESPONSE_HEADER_VERSIONS: dict[tuple[int, int], int] = {
    pair: response_header_version(*pair) for pair in _REQUEST_VERSIONS
}


class ResponseBody(Protocol):
    """What `encode_response` needs from a generated response message."""

    def encode_chunks(self, version: int) -> list[bytes | memoryview]: ...


@dataclass(slots=True)
class Request:
    """One decoded request.

    `client_id` is "" when the header carries null, as in Kafka. `frame_size` counts the bytes
    after the size prefix. `body` is None only when `unsupported_version` is set (KIP-511).
    """

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str
    header: RequestHeader
    body: Any
    frame_size: int
    unsupported_version: bool = False


class ServerConnection:
    """Frames and decodes requests from one client; encodes the responses to them."""

    __slots__ = ("_buf", "_failed", "_max_frame_bytes", "_pos", "_supported", "trailing_bytes")

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        supported: Callable[[int, int], bool] | None = None,
    ) -> None:
        """`supported(api_key, api_version)` says what the broker advertises in ApiVersions;
        None means every version the message specifications define."""
        self._max_frame_bytes = max_frame_bytes
        self._supported = supported
        self._buf = bytearray()
        self._pos = 0  # start of the first unconsumed byte in _buf
        self._failed = False
        self.trailing_bytes = 0  # bytes seen after request bodies (tolerated, see _decode)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a request (the owner bounds this)."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes from the transport; raises at once if the pending frame's size is bad."""
        if self._failed:
            self._raise_failed()
        buf = self._buf
        buf += data
        if len(buf) - self._pos >= 4:
            size = _INT32.unpack_from(buf, self._pos)[0]
            if size < 0 or size > self._max_frame_bytes:
                self._frame_too_large(size)

    def next_request(self) -> Request | None:
        """The next complete request, or None until more bytes arrive."""
        if self._failed:
            self._raise_failed()
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 4:
            return None
        size = _INT32.unpack_from(buf, pos)[0]
        if size < 0 or size > self._max_frame_bytes:
            self._frame_too_large(size)
        start = pos + 4
        end = start + size
        if len(buf) < end:
            if pos and size >= _HANDOVER_MIN_BYTES:
                # Move the partial large frame to the front so that, once complete, the buffer
                # itself can become the frame (below) instead of being copied.
                del buf[:pos]
                self._pos = 0
            return None
        if pos == 0 and size >= _HANDOVER_MIN_BYTES:
            # Hand the receive buffer over as the frame: no copy of a large produce request.
            # The few bytes of the next requests that came with it start a new buffer.
            self._buf = bytearray(memoryview(buf)[end:])
            del buf[end:]
            self._pos = 0
            return self._decode_or_fail(memoryview(buf)[4:])
        # Small frames: one copy out of the receive buffer; the temporary views die before buf
        # is resized.
        frame = memoryview(buf)[start:end].tobytes()
        if end == len(buf):
            buf.clear()
            self._pos = 0
        elif end > len(buf) >> 1:
            # Amortized compaction: the bytes moved are fewer than those consumed since the last.
            del buf[:end]
            self._pos = 0
        else:
            self._pos = end
        return self._decode_or_fail(frame)

    def _decode_or_fail(self, frame: bytes | memoryview) -> Request:
        try:
            return self._decode(frame)
        except ProtocolError:
            self._failed = True
            raise

    def encode_response(self, request: Request, body: ResponseBody) -> list[bytes | memoryview]:
        """Size prefix, response header and body chunks; records buffers are not copied."""
        version = 0 if request.unsupported_version else request.api_version
        chunks = body.encode_chunks(version)
        size = 4
        for chunk in chunks:
            size += len(chunk)
        if _RESPONSE_HEADER_VERSIONS[request.api_key, version] >= 1:
            prefix = _SIZE_AND_CORRELATION_ID.pack(size + 1, request.correlation_id)
            chunks[:0] = (prefix, _EMPTY_TAGGED_FIELDS)
        else:
            chunks.insert(0, _SIZE_AND_CORRELATION_ID.pack(size, request.correlation_id))
        return chunks

    def _raise_failed(self) -> None:
        raise ProtocolError("connection already failed a protocol check")

    def _frame_too_large(self, size: int) -> None:
        self._failed = True
        raise FrameTooLarge(
            f"request size {size} is outside 0..{self._max_frame_bytes} (socket.request.max.bytes)"
        )

    def _decode(self, frame: bytes | memoryview) -> Request:
        frame_size = len(frame)
        if frame_size < 4:
            raise ProtocolError(f"request header truncated at {frame_size} bytes")
        api_key, api_version = _INT16_INT16.unpack_from(frame, 0)
        known = _REQUEST_VERSIONS.get((api_key, api_version))
        if known is None or (
            self._supported is not None and not self._supported(api_key, api_version)
        ):
            return self._unsupported(frame, api_key, api_version)
        api, header_version = known
        header, pos = RequestHeader.read(frame, 0, frame_size, header_version)
        # Bytes after the body are ignored, as Kafka's broker does: librdkafka 2.x sends three
        # stray bytes after an all-topics Metadata v9+ request (librdkafka issue #5049).
        body, end = api.request.read(frame, pos, frame_size, api_version)
        self.trailing_bytes += frame_size - end
        return Request(
            api_key,
            api_version,
            header.correlation_id,
            header.client_id or "",
            header,
            body,
            frame_size,
        )

    def _unsupported(self, frame: bytes | memoryview, api_key: int, api_version: int) -> Request:
        api = API_KEYS.get(api_key)
        if api is None:
            raise ProtocolError(f"unknown api_key {api_key}")
        if api_key != API_VERSIONS_KEY:
            raise UnsupportedVersion(
                f"{api.name} v{api_version} is not supported", api_key, api_version
            )
        # KIP-511: the header version follows from the version number alone, so the header of
        # an ApiVersions request newer than ours still parses; its body is not read.
        header_version = 2 if api.is_flexible(api_version) else 1
        header, _ = RequestHeader.read(frame, 0, len(frame), header_version)
        return Request(
            api_key,
            api_version,
            header.correlation_id,
            header.client_id or "",
            header,
            None,
            len(frame),
            True,
        )


def api_versions_fallback(supported_max_version: int) -> ApiVersionsResponse:
    """The KIP-511 answer to an ApiVersions request of an unsupported version.

    Encoded at v0 by `encode_response`; it lists only ApiVersions' own range (as Kafka does) so
    that the client retries with a version both sides know.
    """
    return ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[
            ApiVersionsResponse.ApiVersion(
                api_key=API_VERSIONS_KEY,
                min_version=API_KEYS[API_VERSIONS_KEY].min_version,
                max_version=supported_max_version,
            )
        ],
    )
