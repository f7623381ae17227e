"""The one exception type that malformed or hostile wire input may raise.

A peer that sends bytes we cannot decode (truncated, oversized, negative lengths, invalid
varints, unknown API keys or versions) loses only its own connection: the decoders raise
`ProtocolError` (or a subclass) and nothing else. Any other exception escaping a decoder is a
bug in Josef, not in the peer.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Bytes from a peer that do not follow the Kafka wire protocol."""


class FrameTooLarge(ProtocolError):
    """A frame's declared size is above the configured limit (socket.request.max.bytes)."""


class UnsupportedVersion(ProtocolError):
    """An API key or version outside what the message specifications define."""

    def __init__(self, message: str, api_key: int, api_version: int) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.api_version = api_version
