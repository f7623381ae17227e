"""Hostile input: every decoder and ServerConnection may raise ProtocolError and nothing else.

A deterministic sweep covers every (message class, version) with random bytes and mutations
of a valid encoding; hypothesis then explores (and shrinks) across all of them. The longer run
is tests/property/test_fuzz_soak.py.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import random
import struct
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import josef.protocol._generated as generated
from josef.protocol.connection import ServerConnection
from josef.protocol.exceptions import ProtocolError
from josef.protocol.messages import API_KEYS, request_header_version
from tools.codegen.generate import plan_modules
from tools.codegen.spec import INT_RANGES, Field, Message, Struct, load_all

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "kafka-protocol"


def _message_classes() -> list[type[Any]]:
    found: dict[str, type[Any]] = {}
    for info in pkgutil.walk_packages(generated.__path__, generated.__name__ + "."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and hasattr(obj, "decode")
                and hasattr(obj, "MIN_VERSION")
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


MESSAGE_CLASSES = _message_classes()


def _specs() -> dict[type[Any], tuple[Message, Any]]:
    """Generated class -> (its parsed specification, its module); empty without the specs."""
    if not SPEC_DIR.is_dir():
        return {}
    out = {}
    for path, messages in plan_modules(*load_all(SPEC_DIR)).items():
        module = importlib.import_module(
            generated.__name__ + "." + path.removesuffix(".py").replace("/", ".")
        )
        for message in messages:
            out[getattr(module, message.name)] = (message, module)
    return out


SPECS = _specs()


def _leaf(type_: str, rng: random.Random) -> Any:
    if type_ in INT_RANGES:
        lo, hi = INT_RANGES[type_]
        return rng.choice([lo, hi, 0, 1, -1 if lo < 0 else 2])
    if type_ == "bool":
        return rng.random() < 0.5
    if type_ == "float64":
        return rng.random()
    if type_ == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    if type_ == "string":
        return rng.choice(["", "t", "topic-é"])
    return rng.randbytes(rng.randrange(12))  # bytes, records


def _filled(cls: type[Any], version: int, rng: random.Random) -> Any:
    """An instance of `cls` with every field present at `version` set, arrays non-empty."""
    message, module = SPECS[cls]

    def value(f: Field) -> Any:
        if f.is_nullable(version) and rng.random() < 0.2:
            return None
        if f.struct is not None:
            one = lambda: build(f.struct)  # noqa: E731
        else:
            one = lambda: _leaf(f.element_type, rng)  # noqa: E731
        return [one() for _ in range(rng.randint(1, 2))] if f.is_array else one()

    def build(s: Struct) -> Any:
        if s is message.root:
            target = cls
        elif s.common:
            target = getattr(module, s.name)
        else:
            target = getattr(cls, s.name)
        return target(
            **{
                f.attr: value(f)
                for f in s.fields
                if f.present(version) and (f.tagged is None or message.is_flexible(version))
            }
        )

    return build(message.root)


def valid_encodings(cls: type[Any], version: int, rng: random.Random) -> list[bytes]:
    """Valid encodings to mutate: the default instance and, with the specs, a filled one."""
    out = [cls().encode(version)]
    if cls in SPECS:
        out.append(_filled(cls, version, rng).encode(version))
    return out


# Every (class, version) the specifications define, in a stable order.
CASES: list[tuple[type[Any], int]] = [
    (cls, version)
    for cls in MESSAGE_CLASSES
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1)
]
# Every (api_key, version) a request can carry.
REQUEST_VERSIONS: list[tuple[int, int]] = [
    (key, version)
    for key, api in sorted(API_KEYS.items())
    for version in range(api.min_version, api.max_version + 1)
]


def decode_only_protocol_errors(cls: type[Any], data: bytes | memoryview, version: int) -> None:
    """Decode `data`; a ProtocolError is the only acceptable failure."""
    try:
        cls.decode(data, version)
    except ProtocolError:
        pass


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A small random edit of a valid encoding: the inputs most likely to get deep."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(5)
        if choice == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice == 1 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif choice == 2:
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice == 3 and len(buf) >= 4:
            # A hostile length or count: a big int32 or a long varint at a random position.
            at = rng.randrange(len(buf) - 3)
            buf[at : at + 4] = struct.pack(">i", rng.choice([-2, -1, 2**31 - 1, 2**20, 0x7FFF]))
        else:
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = b"\xff\xff\xff\xff\x0f"
    return bytes(buf)


def request_header(api_key: int, version: int, correlation_id: int = 1) -> bytes:
    head = struct.pack(">hhi", api_key, version, correlation_id)
    header_version = request_header_version(api_key, version)
    if header_version >= 1:
        head += b"\x00\x04fuzz"
    if header_version >= 2:
        head += b"\x00"
    return head


def feed_connection(chunks: list[bytes], max_frame_bytes: int = 1 << 20) -> None:
    """Push chunks through a ServerConnection; a ProtocolError is the only acceptable failure."""
    connection = ServerConnection(max_frame_bytes=max_frame_bytes)
    try:
        for chunk in chunks:
            connection.receive_data(chunk)
            while connection.next_request() is not None:
                pass
    except ProtocolError:
        pass


_FAST = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_cases_cover_every_api() -> None:
    classes = set(MESSAGE_CLASSES)
    assert not SPECS or set(SPECS) == classes
    for api in API_KEYS.values():
        assert api.request in classes and api.response in classes
    assert len({key for key, _ in REQUEST_VERSIONS}) == len(API_KEYS)


def test_sweep_every_class_and_version() -> None:
    rng = random.Random(20261125)
    for cls, version in CASES:
        for valid in valid_encodings(cls, version, rng):
            cls.decode(valid, version)  # must decode cleanly
            for _ in range(6):
                decode_only_protocol_errors(cls, rng.randbytes(rng.randrange(64)), version)
                decode_only_protocol_errors(cls, mutate(valid, rng), version)


@_FAST
@given(case=st.sampled_from(CASES), data=st.binary(max_size=256))
def test_random_bytes(case: tuple[type, int], data: bytes) -> None:
    cls, version = case
    decode_only_protocol_errors(cls, data, version)


@_FAST
@given(case=st.sampled_from(CASES), seed=st.integers(0, 2**32 - 1))
def test_mutated_valid_encodings(case: tuple[type, int], seed: int) -> None:
    cls, version = case
    rng = random.Random(seed)
    for valid in valid_encodings(cls, version, rng):
        decode_only_protocol_errors(cls, mutate(valid, rng), version)


@_FAST
@given(data=st.binary(max_size=512), cuts=st.lists(st.integers(0, 512), max_size=6))
def test_connection_random_stream(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    feed_connection([data[a:b] for a, b in itertools.pairwise(bounds)])


@_FAST
@given(
    request=st.sampled_from(REQUEST_VERSIONS),
    body=st.binary(max_size=128),
    seed=st.integers(0, 2**32 - 1),
)
def test_connection_valid_header_random_body(
    request: tuple[int, int], body: bytes, seed: int
) -> None:
    api_key, version = request
    payload = request_header(api_key, version) + body
    framed = struct.pack(">i", len(payload)) + payload
    rng = random.Random(seed)
    feed_connection([framed, mutate(framed, rng)])
