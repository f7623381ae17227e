"""One client connection to a Kafka broker: framing, version negotiation, request/response.

Contract: `await KafkaConnection.open("host:port")` connects and sends ApiVersions v0 (every
broker answers it); `await conn.send(body)` picks the highest version of `body`'s API that
both the generated codec and the broker support (or `version=`), and returns the decoded
response. Requests go one at a time (a lock), so responses match by order and correlation id.
A response larger than `max_response_bytes`, a correlation id mismatch or an API the broker
does not support raises `ClientError`; a closed connection raises `ConnectionError`.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from josef.protocol._generated.api_versions import ApiVersionsRequest, ApiVersionsResponse
from josef.protocol._generated.headers import RequestHeader, ResponseHeader
from josef.protocol.messages import API_KEYS, request_header_version, response_header_version

_SIZE = struct.Struct(">i")
API_VERSIONS_KEY = 18
# The largest response accepted: Kafka clients' default fetch.max.bytes is 50 MiB, and no admin
# response comes close; larger sizes mean a desynchronised stream.
DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0  # Kafka's request.timeout.ms default for admin clients


class ClientError(Exception):
    """The broker cannot answer this request (unsupported API) or answered garbage."""


class KafkaConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_id: str,
        timeout_s: float,
        max_response_bytes: int,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._correlation_id = 0
        self._lock = asyncio.Lock()
        self.versions: dict[int, tuple[int, int]] = {}  # api_key -> broker's (min, max)

    @classmethod
    async def open(
        cls,
        bootstrap: str,
        client_id: str = "josef-cli",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> KafkaConnection:
        host, _, port = bootstrap.rpartition(":")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]") or "localhost", int(port)), timeout_s
        )
        conn = cls(reader, writer, client_id, timeout_s, max_response_bytes)
        try:
            response: ApiVersionsResponse = await conn.send(ApiVersionsRequest(), version=0)
        except BaseException:
            await conn.close()
            raise
        conn.versions = {a.api_key: (a.min_version, a.max_version) for a in response.api_keys}
        return conn

    def version_for(self, api_key: int) -> int:
        """The highest version of `api_key` both sides support."""
        ours = API_KEYS[api_key]
        theirs = self.versions.get(api_key)
        if theirs is None:
            raise ClientError(f"the broker does not support {ours.name}")
        version = min(ours.max_version, theirs[1])
        if version < max(ours.min_version, theirs[0]):
            raise ClientError(f"no common version of {ours.name}")
        return version

    async def send(self, body: Any, version: int | None = None) -> Any:
        api_key = body.API_KEY
        if version is None:
            version = self.version_for(api_key)
        async with self._lock:
            self._correlation_id += 1
            correlation_id = self._correlation_id
            header = RequestHeader(
                request_api_key=api_key,
                request_api_version=version,
                correlation_id=correlation_id,
                client_id=self._client_id,
            ).encode(request_header_version(api_key, version))
            payload = header + body.encode(version)
            self._writer.write(_SIZE.pack(len(payload)) + payload)
            frame = await asyncio.wait_for(self._read_frame(), self._timeout_s)
        response_header, pos = ResponseHeader.read(
            frame, 0, len(frame), response_header_version(api_key, version)
        )
        if response_header.correlation_id != correlation_id:
            raise ClientError(
                f"correlation id {response_header.correlation_id}, expected {correlation_id}"
            )
        return API_KEYS[api_key].response.decode(memoryview(frame)[pos:], version)

    async def _read_frame(self) -> bytes:
        await self._writer.drain()
        try:
            (size,) = _SIZE.unpack(await self._reader.readexactly(_SIZE.size))
            if not 0 <= size <= self._max_response_bytes:
                raise ClientError(f"response size {size} out of bounds")
            return await self._reader.readexactly(size)
        except asyncio.IncompleteReadError as err:
            raise ConnectionError("the broker closed the connection") from err

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    async def __aenter__(self) -> KafkaConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
