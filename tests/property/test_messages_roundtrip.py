"""Round-trip every generated message at every version, with hypothesis strategies derived
from the same parsed specifications the generator used (so tests and code agree on layout).

For each message and version: decode(encode(x)) == x with all bytes consumed,
size(x) == len(encode(x)), b"".join(encode_chunks(x)) == encode(x), and every strict
prefix of the encoding fails with ProtocolError only.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from josef.protocol.exceptions import ProtocolError
from tools.codegen.generate import plan_modules
from tools.codegen.spec import INT_RANGES, Field, Message, Struct, load_all

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "kafka-protocol"

if not SPEC_DIR.is_dir():
    pytest.skip(f"{SPEC_DIR} is absent", allow_module_level=True)


def _catalog() -> list[tuple[Message, Any, Any]]:
    """(message, module, class) for every message in every generated module."""
    messages, internal = load_all(SPEC_DIR)
    out = []
    for path, ms in plan_modules(messages, internal).items():
        dotted = "josef.protocol._generated." + path.removesuffix(".py").replace("/", ".")
        module = importlib.import_module(dotted)
        for m in ms:
            out.append((m, module, getattr(module, m.name)))
    return out


CATALOG = _catalog()


def _struct_class(s: Struct, m: Message, module: Any, cls: Any) -> Any:
    if s is m.root:
        return cls
    if s.common:
        return getattr(module, s.name)
    return getattr(cls, s.name)


def _leaf(t: str) -> st.SearchStrategy[Any]:
    if t in INT_RANGES:
        lo, hi = INT_RANGES[t]
        return st.integers(lo, hi)
    if t == "bool":
        return st.booleans()
    if t == "float64":
        return st.floats(allow_nan=False)
    if t == "uuid":
        return st.uuids()
    if t == "string":
        return st.text(max_size=6)
    return st.binary(max_size=8)  # bytes, records


def _field(f: Field, v: int, m: Message, module: Any, cls: Any) -> st.SearchStrategy[Any]:
    elem = _struct(f.struct, v, m, module, cls) if f.struct is not None else _leaf(f.element_type)
    if f.is_array:
        elem = st.lists(elem, max_size=2)
    if f.is_nullable(v):
        elem = st.none() | elem
    return elem


def _struct(s: Struct, v: int, m: Message, module: Any, cls: Any) -> st.SearchStrategy[Any]:
    target = _struct_class(s, m, module, cls)
    kwargs = {
        f.attr: st.deferred(lambda f=f: _field(f, v, m, module, cls))
        for f in s.fields
        if f.present(v) and (f.tagged is None or m.is_flexible(v))
    }
    return st.builds(target, **kwargs)


@pytest.mark.parametrize(("message", "module", "cls"), CATALOG, ids=[c[0].name for c in CATALOG])
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_roundtrip(message: Message, module: Any, cls: Any, data: st.DataObject) -> None:
    for version in range(message.min_version, message.max_version + 1):
        obj = data.draw(_struct(message.root, version, message, module, cls), label=f"v{version}")
        encoded = cls.encode(obj, version)
        assert isinstance(encoded, bytes)
        assert obj.size(version) == len(encoded)
        chunks = obj.encode_chunks(version)
        assert b"".join(chunks) == encoded
        decoded = cls.decode(encoded, version)
        assert decoded == obj, (version, decoded, obj)
        back, pos = cls.read(b"\x00\x01" + encoded + b"\x02", 2, 2 + len(encoded), version)
        assert back == obj and pos == 2 + len(encoded)
        for cut in range(len(encoded)):
            with pytest.raises(ProtocolError):
                cls.decode(encoded[:cut], version)


@pytest.mark.parametrize(("message", "module", "cls"), CATALOG[:1], ids=[CATALOG[0][0].name])
def test_version_outside_range_is_unsupported(message: Message, module: Any, cls: Any) -> None:
    from josef.protocol.exceptions import UnsupportedVersion

    with pytest.raises(UnsupportedVersion):
        cls().encode(message.max_version + 1)
    with pytest.raises(UnsupportedVersion):
        cls.decode(b"", message.max_version + 1)


# ---- golden bytes (hand-computed from the protocol guide's primitive layouts) --------------


def test_api_versions_request_v3_golden():
    from josef.protocol._generated.api_versions import ApiVersionsRequest

    req = ApiVersionsRequest(client_software_name="x", client_software_version="1")
    # compact strings "x" and "1" (uvarint length+1), then an empty tagged-field section
    assert req.encode(3) == b"\x02x\x021\x00"
    assert ApiVersionsRequest.decode(b"\x02x\x021\x00", 3) == req
    assert ApiVersionsRequest().encode(0) == b""


def test_request_header_v2_keeps_classic_client_id():
    from josef.protocol._generated.headers import RequestHeader

    h = RequestHeader(request_api_key=18, request_api_version=3, correlation_id=7, client_id="c")
    assert h.encode(2) == b"\x00\x12\x00\x03\x00\x00\x00\x07\x00\x01c\x00"
    assert h.encode(1) == b"\x00\x12\x00\x03\x00\x00\x00\x07\x00\x01c"
    assert RequestHeader(client_id=None).encode(1)[-2:] == b"\xff\xff"


def test_tagged_fields_at_default_are_left_out():
    from josef.protocol._generated.api_versions import ApiVersionsResponse

    resp = ApiVersionsResponse(error_code=0, api_keys=[], throttle_time_ms=0)
    assert resp.encode(3) == b"\x00\x00\x01\x00\x00\x00\x00\x00"
    resp.zk_migration_ready = True  # tag 3, bool: one data byte
    assert resp.encode(3) == b"\x00\x00\x01\x00\x00\x00\x00" + b"\x01\x03\x01\x01"
    assert ApiVersionsResponse.decode(resp.encode(3), 3) == resp
    # An unknown tag (9) is skipped on decode.
    unknown = b"\x00\x00\x01\x00\x00\x00\x00" + b"\x01\x09\x02zz"
    assert ApiVersionsResponse.decode(unknown, 3) == ApiVersionsResponse()


def test_produce_records_are_zero_copy_slices():
    from josef.protocol._generated.produce import ProduceRequest as P

    records = bytes(1 << 20)
    req = P(
        acks=-1,
        timeout_ms=30000,
        topic_data=[
            P.TopicProduceData(name="t", partition_data=[P.PartitionProduceData(0, records)])
        ],
    )
    for version in (3, 9):
        wire = req.encode(version)
        got = P.decode(wire, version).topic_data[0].partition_data[0].records
        assert isinstance(got, memoryview) and got.obj is wire and got == records
        chunks = req.encode_chunks(version)
        assert any(c is records for c in chunks)


def test_hostile_array_count_is_a_protocol_error():
    from josef.protocol._generated.metadata import MetadataRequest

    with pytest.raises(ProtocolError):
        MetadataRequest.decode(b"\x7f\xff\xff\xff", 1)  # 2**31-1 topics in 0 bytes
    with pytest.raises(ProtocolError):
        MetadataRequest.decode(b"\xff\xff\xff\xfe", 1)  # -2 is not null
    with pytest.raises(ProtocolError):
        MetadataRequest.decode(b"\xff\xff\xff\xff", 0)  # null only from v1
    assert MetadataRequest.decode(b"\xff\xff\xff\xff", 1).topics is None
