"""Compression codecs of the records section, through cramjam (Rust/C codec libraries).

`compress(codec, data)` writes what the Java client writes, so every client can read it:
GZIP (RFC 1952), SNAPPY in xerial framing (snappy-java's SnappyOutputStream, 32 KiB blocks),
LZ4 frame format with independent 64 KiB blocks (KafkaLZ4BlockOutputStream; magic-2 batches
carry a correct header checksum), ZSTD frames.

`decompress(codec, data, max_bytes)` is bounded: output beyond `max_bytes` raises
`DecompressedSizeError` without allocating more than about max_bytes. GZIP is inflated by the
standard library's zlib, whose `max_length` gives an exact bound in one pass (and measured 2.5x
faster here than cramjam's gzip, which has no output bound). Snappy input may be
raw (librdkafka, Go clients) or xerial framed (Java), recognised by the xerial magic.
Undecodable input raises `CorruptRecordError`; nothing else escapes.
"""

from __future__ import annotations

import struct
import zlib

import cramjam

from josef.records.batch import Compression
from josef.records.errors import CorruptRecordError, DecompressedSizeError

Buffer = bytes | bytearray | memoryview

# xerial snappy-java stream header: magic, then version and minimum compatible version (both 1).
XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK_SIZE = 32 * 1024  # snappy-java SnappyOutputStream.DEFAULT_BLOCK_SIZE

# LZ4 frame as Kafka's Java producer writes it: magic, FLG=0x60 (version 01, independent blocks,
# no checksums, no content size), BD=0x40 (64 KiB max block), HC = (xxh32(FLG, BD) >> 8) & 0xFF.
_LZ4_FRAME_HEADER = b"\x04\x22\x4d\x18\x60\x40\x82"
_LZ4_BLOCK_SIZE = 64 * 1024
_LZ4_UNCOMPRESSED_BIT = 0x80000000
_LZ4_END_MARK = b"\x00\x00\x00\x00"

# First output buffer guess for codecs whose output size is not in their header; it grows 4x
# per retry up to max_bytes, so a good guess saves work and a bad one costs at most ~1.3x.
_MIN_GUESS = 64 * 1024
_GUESS_RATIO = 4

_INT32_BE = struct.Struct(">i")
_UINT32_LE = struct.Struct("<I")

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer around a deflate stream

_STREAM_CODECS = {
    Compression.LZ4: cramjam.lz4,
    Compression.ZSTD: cramjam.zstd,
}


def compress(codec: Compression, data: Buffer) -> bytes:
    """Compress a records section for a batch whose attributes say `codec`."""
    if codec == Compression.NONE:
        return bytes(data)
    if codec == Compression.SNAPPY:
        return _xerial_compress(data)
    if codec == Compression.LZ4:
        return _lz4_frame_compress(data)
    if codec == Compression.GZIP:
        return bytes(cramjam.gzip.compress(data))
    return bytes(cramjam.zstd.compress(data))


def decompress(codec: Compression, data: Buffer, max_bytes: int) -> Buffer:
    """Inflate `data` into at most `max_bytes`; returns a buffer (not necessarily bytes)."""
    if codec == Compression.NONE:
        if len(data) > max_bytes:
            raise DecompressedSizeError(f"records section of {len(data)} bytes > {max_bytes}")
        return data
    if codec == Compression.SNAPPY:
        if bytes(data[: len(XERIAL_MAGIC)]) == XERIAL_MAGIC:
            return _xerial_decompress(data, max_bytes)
        return _snappy_raw_decompress(data, max_bytes)
    if codec == Compression.GZIP:
        return _gzip_decompress(data, max_bytes)
    return _stream_decompress(codec, data, max_bytes)


def _gzip_decompress(data: Buffer, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)  # one spare byte detects "more"
    except zlib.error as e:
        raise CorruptRecordError(f"invalid gzip records section: {e}") from None
    if len(out) > max_bytes:
        raise DecompressedSizeError(f"GZIP records section inflates beyond {max_bytes} bytes")
    if not inflater.eof or inflater.unused_data:
        raise CorruptRecordError("truncated gzip records section, or data after its end")
    return out


def _stream_decompress(codec: Compression, data: Buffer, max_bytes: int) -> memoryview:
    module = _STREAM_CODECS[codec]
    limit = max_bytes + 1  # one spare byte tells "exactly max_bytes" from "more"
    size = min(limit, max(_MIN_GUESS, len(data) * _GUESS_RATIO))
    while True:
        out = bytearray(size)
        try:
            written = module.decompress_into(data, out)
        except cramjam.DecompressionError as e:
            # cramjam reports a full output buffer and corrupt input with the same exception
            # type, so grow until the limit; there the input is either corrupt or a bomb.
            if size < limit:
                size = min(limit, size * _GUESS_RATIO)
                continue
            raise DecompressedSizeError(
                f"{codec.name} records section is corrupt or inflates beyond {max_bytes} bytes:"
                f" {e}"
            ) from None
        if written > max_bytes:
            raise DecompressedSizeError(
                f"{codec.name} records section inflates beyond {max_bytes} bytes"
            )
        return memoryview(out)[:written]


def _snappy_raw_decompress(data: Buffer, max_bytes: int) -> memoryview:
    block = memoryview(data)
    try:
        size = cramjam.snappy.decompress_raw_len(block)
    except cramjam.DecompressionError as e:
        raise CorruptRecordError(f"invalid snappy block: {e}") from None
    if size > max_bytes:
        raise DecompressedSizeError(f"snappy block inflates to {size} bytes > {max_bytes}")
    out = bytearray(size)
    try:
        cramjam.snappy.decompress_raw_into(block, out)
    except cramjam.DecompressionError as e:
        raise CorruptRecordError(f"invalid snappy block: {e}") from None
    return memoryview(out)


def _xerial_blocks(data: Buffer) -> list[tuple[int, int]]:
    """(start, end) of each raw snappy block after the 16-byte xerial header."""
    if len(data) < len(_XERIAL_HEADER):
        raise CorruptRecordError("truncated xerial snappy header")
    blocks = []
    pos = len(_XERIAL_HEADER)
    end = len(data)
    while pos < end:
        if end - pos < 4:
            raise CorruptRecordError("truncated xerial snappy block length")
        length = _INT32_BE.unpack_from(data, pos)[0]
        pos += 4
        if length < 0 or pos + length > end:
            raise CorruptRecordError(f"xerial snappy block length {length} out of bounds")
        blocks.append((pos, pos + length))
        pos += length
    return blocks


def _xerial_decompress(data: Buffer, max_bytes: int) -> memoryview:
    view = memoryview(data)
    blocks = _xerial_blocks(view)
    sizes = []
    total = 0
    for start, end in blocks:
        try:
            size = cramjam.snappy.decompress_raw_len(view[start:end])
        except cramjam.DecompressionError as e:
            raise CorruptRecordError(f"invalid xerial snappy block: {e}") from None
        total += size
        if total > max_bytes:
            raise DecompressedSizeError(f"snappy records section inflates beyond {max_bytes}")
        sizes.append(size)
    out = bytearray(total)
    out_view = memoryview(out)
    pos = 0
    for (start, end), size in zip(blocks, sizes, strict=True):
        try:
            cramjam.snappy.decompress_raw_into(view[start:end], out_view[pos : pos + size])
        except cramjam.DecompressionError as e:
            raise CorruptRecordError(f"invalid xerial snappy block: {e}") from None
        pos += size
    return out_view


def _xerial_compress(data: Buffer) -> bytes:
    view = memoryview(data)
    out = bytearray(_XERIAL_HEADER)
    for start in range(0, len(view), _XERIAL_BLOCK_SIZE):
        block = cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK_SIZE])
        out += _INT32_BE.pack(len(block))
        out += block
    return bytes(out)


def _lz4_frame_compress(data: Buffer) -> bytes:
    view = memoryview(data)
    out = bytearray(_LZ4_FRAME_HEADER)
    for start in range(0, len(view), _LZ4_BLOCK_SIZE):
        chunk = view[start : start + _LZ4_BLOCK_SIZE]
        block = cramjam.lz4.compress_block(chunk, store_size=False)
        if len(block) < len(chunk):
            out += _UINT32_LE.pack(len(block))
            out += block
        else:  # incompressible: store as is, flagged by the high bit of the block size
            out += _UINT32_LE.pack(len(chunk) | _LZ4_UNCOMPRESSED_BIT)
            out += chunk
    out += _LZ4_END_MARK
    return bytes(out)
