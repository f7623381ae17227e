"""The server side of one Kafka connection, sans-IO: bytes in, requests out, responses to bytes.

No sockets, no asyncio, no clock (h11 style). The owner gets bytes in either of two ways:
`receive_data(data)` with whatever the transport delivered, or (zero-copy, for an
asyncio.BufferedProtocol) `get_buffer()`, a writable view of the receive buffer's free tail that
the transport reads into, then `buffer_updated(nbytes)`. It then calls `next_request` until it
returns None, and writes the chunks of `encode_response` to the transport in request order
(Kafka clients match responses by order and correlation id).

Contract:
- Framing is Kafka's: an int32 size, then that many bytes of request header + body. A size
  below 0 or above `max_frame_bytes` raises `FrameTooLarge` as soon as the 4 size bytes are
  here, before any of the body is buffered.
- A small frame is copied out once into its own `bytes`; a frame of 64 KiB or more is not
  copied at all: it is moved to the front of the receive buffer while incomplete, the buffer
  grows to exactly its end, and the buffer is then handed over whole (a new one is started for
  what follows). Either way the `records` fields of the decoded body are memoryviews over
  memory that the connection no longer touches.
- Memory: the buffer never grows more than one bounded step ahead of the bytes that arrived,
  so a declared size alone allocates at most 1 MiB (`receive_data`: nothing). `get_buffer`
  offers at least 64 KiB of free space between large frames; within a large frame it grows the
  buffer by min(rest of the frame, 1 MiB) when less than 64 KiB is free, never past the frame's
  end.
- The view from `get_buffer` must be dropped before the next `get_buffer` or `receive_data`
  (asyncio's transports do so); `buffer_updated` and `next_request` never resize the buffer, so
  the transport may still hold the view while they run.
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
# Free space offered to each read between large frames: Kafka's socket.receive.buffer.bytes
# (100 KiB) rounded down to a power of two. It is what an idle connection keeps allocated.
_READ_CHUNK_BYTES = 64 * 1024
# Most the buffer grows ahead of bytes that have arrived: what a size prefix alone can make a
# connection allocate (Kafka itself allocates the whole declared size at once).
_MAX_GROW_BYTES = 1024 * 1024

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

    __slots__ = (
        "_buf",
        "_end",
        "_failed",
        "_max_frame_bytes",
        "_pos",
        "_supported",
        "trailing_bytes",
    )

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        supported: Callable[[int, int], bool] | None = None,
    ) -> None:
        """`supported(api_key, api_version)` says what the broker advertises in ApiVersions;
        None means every version the message specifications define."""
        self._max_frame_bytes = max_frame_bytes
        self._supported = supported
        # _buf[_pos:_end] holds the bytes received and not yet returned as a request;
        # _buf[_end:] is free space for get_buffer (len(_buf) is the capacity).
        self._buf = bytearray()
        self._pos = 0
        self._end = 0
        self._failed = False
        self.trailing_bytes = 0  # bytes seen after request bodies (tolerated, see _decode)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a request (the owner bounds this)."""
        return self._end - self._pos

    @property
    def capacity_bytes(self) -> int:
        """Bytes the receive buffer holds allocated (received plus free space)."""
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes from the transport; raises at once if the pending frame's size is bad."""
        if self._failed:
            self._raise_failed()
        remaining, large = self._pending()
        if self._pos and ((large and remaining > 0) or self._pos >= self._end - self._pos):
            # A partial large frame goes to the front so it can be handed over whole; otherwise
            # compaction is amortized: fewer bytes move than were consumed since the last one.
            self._compact()
        # Replaces the free tail: capacity becomes exactly what has arrived.
        self._buf[self._end :] = data
        self._end = len(self._buf)
        self._check_size()

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """A writable, non-empty view of free space after the received bytes, for the transport
        to read into; `buffer_updated` says how much it wrote. `sizehint` is ignored: the
        amount follows from the pending frame (see the module contract)."""
        if self._failed:
            self._raise_failed()
        remaining, large = self._pending()
        buf = self._buf
        if large and remaining > 0:
            # This buffer becomes the frame: move it to the front, and let no read cross its
            # end so that nothing of the next request has to be copied out at handover.
            if self._pos:
                self._compact()
            frame_end = self._end + remaining
            if len(buf) - self._end < min(remaining, _READ_CHUNK_BYTES):
                self._resize(self._end + min(remaining, _MAX_GROW_BYTES))
            elif len(buf) > frame_end:
                self._resize(frame_end)
            return memoryview(self._buf)[self._end : frame_end]
        if len(buf) - self._end < _READ_CHUNK_BYTES:
            if self._pos:
                self._compact()
            if len(buf) - self._end < _READ_CHUNK_BYTES:
                self._resize(self._end + _READ_CHUNK_BYTES)
        elif len(buf) - self._end > _MAX_GROW_BYTES:
            # Left over from a burst of pipelined requests: give the memory back.
            self._resize(self._end + _READ_CHUNK_BYTES)
        return memoryview(self._buf)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` were written at the start of the view `get_buffer` returned; raises at once
        if the pending frame's size is bad."""
        if self._failed:
            self._raise_failed()
        end = self._end + nbytes
        assert nbytes >= 0 and end <= len(self._buf), (nbytes, self._end, len(self._buf))
        self._end = end
        self._check_size()

    def next_request(self) -> Request | None:
        """The next complete request, or None until more bytes arrive."""
        if self._failed:
            self._raise_failed()
        buf = self._buf
        pos = self._pos
        received_end = self._end
        if received_end - pos < 4:
            return None
        size = _INT32.unpack_from(buf, pos)[0]
        if size < 0 or size > self._max_frame_bytes:
            self._frame_too_large(size)
        start = pos + 4
        end = start + size
        if received_end < end:
            return None
        if pos == 0 and size >= _HANDOVER_MIN_BYTES:
            # Hand the receive buffer over as the frame: no copy of a large produce request.
            # Bytes of the next requests that came with it (only via receive_data) start a new
            # buffer; the old one is never touched again (and is not resized: the transport
            # may still hold a view of it).
            self._buf = bytearray(memoryview(buf)[end:received_end])
            self._pos = 0
            self._end = received_end - end
            return self._decode_or_fail(memoryview(buf)[4:end])
        # Small frames: one copy out of the receive buffer; the temporary view dies at once.
        frame = memoryview(buf)[start:end].tobytes()
        if end == received_end:
            self._pos = self._end = 0
        else:
            self._pos = end
        return self._decode_or_fail(frame)

    def _pending(self) -> tuple[int, bool]:
        """(bytes still missing from the first unconsumed frame, whether it is large); the
        missing count is <= 0 when that frame is complete, and covers only the size prefix
        while that is incomplete."""
        buffered = self._end - self._pos
        if buffered < 4:
            return 4 - buffered, False
        size = _INT32.unpack_from(self._buf, self._pos)[0]
        if size < 0 or size > self._max_frame_bytes:
            self._frame_too_large(size)
        return 4 + size - buffered, size >= _HANDOVER_MIN_BYTES

    def _check_size(self) -> None:
        if self._end - self._pos >= 4:
            size = _INT32.unpack_from(self._buf, self._pos)[0]
            if size < 0 or size > self._max_frame_bytes:
                self._frame_too_large(size)

    def _compact(self) -> None:
        """Move the unconsumed bytes to the front of the buffer (capacity unchanged)."""
        buffered = self._end - self._pos
        if buffered:
            view = memoryview(self._buf)
            view[:buffered] = view[self._pos : self._end]  # memmove: the ranges may overlap
            view.release()
        self._pos = 0
        self._end = buffered

    def _resize(self, capacity: int) -> None:
        """Set the buffer's capacity (never below the received bytes)."""
        buf = self._buf
        if capacity > len(buf):
            # One pass (copy, then fill) into a new buffer; `buf += bytes(n)` costs two more.
            self._buf = buf.ljust(capacity, b"\0")
        elif capacity < len(buf):
            del buf[capacity:]

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
