"""Codecs: round trips, the exact framing Java clients write and read, and bounded inflation."""

from __future__ import annotations

import os
import struct

import cramjam
import pytest

from josef.records.batch import Compression
from josef.records.compression import XERIAL_MAGIC, compress, decompress
from josef.records.errors import CorruptRecordError, DecompressedSizeError, RecordsError

CODECS = list(Compression)
SAMPLES = [b"", b"x", b"hello " * 20_000, os.urandom(70_000) + b"\0" * 200_000]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", SAMPLES, ids=["empty", "one", "text", "mixed"])
def test_round_trip(codec: Compression, data: bytes) -> None:
    assert bytes(decompress(codec, compress(codec, data), len(data))) == data


def test_snappy_writes_xerial_framing_in_32k_blocks() -> None:
    data = os.urandom(40_000)
    out = compress(Compression.SNAPPY, data)
    assert out[:16] == XERIAL_MAGIC + struct.pack(">ii", 1, 1)
    first_len = struct.unpack_from(">i", out, 16)[0]
    assert bytes(cramjam.snappy.decompress_raw(out[20 : 20 + first_len])) == data[:32 * 1024]


def test_snappy_reads_raw_and_hand_framed_xerial() -> None:
    data = b"abc" * 30_000
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert bytes(decompress(Compression.SNAPPY, raw, len(data))) == data
    framed = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
    for part in (data[:1000], data[1000:]):
        block = bytes(cramjam.snappy.compress_raw(part))
        framed += struct.pack(">i", len(block)) + block
    assert bytes(decompress(Compression.SNAPPY, framed, len(data))) == data


def test_lz4_frame_is_what_the_java_client_writes() -> None:
    out = compress(Compression.LZ4, b"a" * 100_000)
    assert out[:7] == bytes.fromhex("04224d18604082")
    assert out.endswith(b"\0\0\0\0")
    # liblz4 (through cramjam) checks the header checksum byte
    assert bytes(cramjam.lz4.decompress(out)) == b"a" * 100_000
    # and frames other writers produce (linked blocks, checksums) are read too
    other = bytes(cramjam.lz4.compress(b"b" * 100_000))
    assert bytes(decompress(Compression.LZ4, other, 100_000)) == b"b" * 100_000


@pytest.mark.parametrize("codec", [c for c in CODECS if c != Compression.NONE])
def test_zip_bomb_is_bounded(codec: Compression) -> None:
    bomb = compress(codec, b"\0" * 20_000_000)
    with pytest.raises(DecompressedSizeError):
        decompress(codec, bomb, 1_000_000)
    assert len(decompress(codec, compress(codec, b"\0" * 1000), 1000)) == 1000
    with pytest.raises(DecompressedSizeError):
        decompress(codec, compress(codec, b"\0" * 1001), 1000)


@pytest.mark.parametrize("codec", [c for c in CODECS if c != Compression.NONE])
def test_garbage_raises_records_error_only(codec: Compression) -> None:
    good = compress(codec, b"payload " * 1000)
    candidates = [b"", b"\x00", os.urandom(64), good[: len(good) // 2], good[:-3] + b"zzz"]
    candidates.append(XERIAL_MAGIC + b"\0\0\0\1\0\0\0\1" + b"\x7f\xff\xff\xff")
    for data in candidates:
        try:
            out = decompress(codec, data, 100_000)
        except RecordsError:
            continue
        assert len(out) <= 100_000


def test_none_codec_respects_the_limit() -> None:
    with pytest.raises(DecompressedSizeError):
        decompress(Compression.NONE, b"abc", 2)
    assert isinstance(DecompressedSizeError("x"), CorruptRecordError)
