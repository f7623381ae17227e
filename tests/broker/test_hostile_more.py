"""More hostile input against a running `josef serve` (what test_hostile.py does not cover):
corrupt and legacy batches are refused for their own partition only, invalid topic names get
Kafka's per-topic errors, thousands of idle connections and a client that never reads its
responses cost bounded memory and stall nobody, and every unsupported API version closes
its connection with exactly one log line."""

from __future__ import annotations

import os
import resource
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Iterator

import pytest

from josef.protocol._generated.create_topics import CreateTopicsRequest
from josef.protocol._generated.metadata import MetadataRequest
from josef.protocol._generated.produce import ProduceRequest
from josef.protocol.errors import ErrorCode
from tests.broker import wire
from tests.broker.conftest import ServeProcess
from tests.broker.test_data_plane import batch, create, fetch_request, values

E = ErrorCode


IDLE_CONNECTIONS = 2_000
FETCHES_UNREAD = 20_000


@pytest.fixture(scope="module", autouse=True)
def _enough_file_descriptors() -> None:
    """Runs before the module's broker starts, which inherits the raised soft limit: both
    ends of IDLE_CONNECTIONS sockets need a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CONNECTIONS + 500
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))


@pytest.fixture
def sock(serve: ServeProcess) -> Iterator[socket.socket]:
    with wire.connect(serve.bootstrap) as s:
        yield s


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _produce_many(sock: socket.socket, parts: list[tuple[str, int, bytes | None]]) -> dict:
    """One Produce v9 request for several (topic, partition, records); errors by partition."""
    by_topic: dict[str, list[ProduceRequest.PartitionProduceData]] = {}
    for topic, partition, records in parts:
        by_topic.setdefault(topic, []).append(
            ProduceRequest.PartitionProduceData(index=partition, records=records))
    request = ProduceRequest(acks=-1, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name=name, partition_data=data)
        for name, data in by_topic.items()])
    response = wire.call(sock, 0, 9, request)
    return {(t.name, p.index): p for t in response.responses for p in t.partition_responses}


def _legacy_message(magic: int, value: bytes, offset: int = 0) -> bytes:
    """A magic 0 or 1 message set entry (what Kafka clients before 0.11 sent)."""
    body = struct.pack(">bb", magic, 0)
    if magic == 1:
        body += struct.pack(">q", 1_700_000_000_000)
    body += struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(message)) + message


# ---- corrupt and legacy batches ------------------------------------------------------------
def test_corrupt_batch_fails_only_its_partition(sock: socket.socket) -> None:
    topic, other = _name("crc"), _name("crc-other")
    assert create(sock, topic, partitions=3).error_code == E.NONE
    assert create(sock, other).error_code == E.NONE
    bad_crc = bytearray(batch(b"hello", b"world"))
    bad_crc[-1] ^= 0x01  # a flipped bit in the last record: the CRC-32C no longer matches
    bad_header = bytearray(batch(b"hello"))
    bad_header[21 + 4] ^= 0x40  # inside the CRC-covered header (attributes.. base_timestamp)
    results = _produce_many(sock, [
        (topic, 0, bytes(bad_crc)), (topic, 1, batch(b"fine-1")), (topic, 2, bytes(bad_header)),
        (other, 0, batch(b"fine-2")),
    ])
    assert results[(topic, 0)].error_code == E.CORRUPT_MESSAGE
    assert results[(topic, 2)].error_code == E.CORRUPT_MESSAGE
    assert (results[(topic, 1)].error_code, results[(topic, 1)].base_offset) == (E.NONE, 0)
    assert (results[(other, 0)].error_code, results[(other, 0)].base_offset) == (E.NONE, 0)
    # Nothing of the refused batches was stored; the good ones are readable.
    for partition, expected in ((0, []), (1, [b"fine-1"]), (2, [])):
        data = wire.call(sock, 1, 12, fetch_request(topic, 0, partition=partition))
        assert values(data.responses[0].partitions[0].records) == expected
        assert data.responses[0].partitions[0].high_watermark == len(expected)


def test_truncated_batch_fails_only_its_partition(sock: socket.socket) -> None:
    topic = _name("trunc")
    assert create(sock, topic, partitions=2).error_code == E.NONE
    whole = batch(b"x" * 100)
    results = _produce_many(sock, [(topic, 0, whole[:-10]), (topic, 1, whole)])
    assert results[(topic, 0)].error_code in (E.CORRUPT_MESSAGE, E.INVALID_RECORD)
    assert results[(topic, 1)].error_code == E.NONE


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_magic_is_invalid_record(sock: socket.socket, magic: int) -> None:
    # Kafka: "Produce requests with version 3 or later are only allowed to contain record
    # batches with magic version 2" - an InvalidRecordException, INVALID_RECORD (87).
    topic = _name(f"magic{magic}")
    assert create(sock, topic, partitions=2).error_code == E.NONE
    legacy = _legacy_message(magic, b"old") + _legacy_message(magic, b"older", offset=1)
    results = _produce_many(sock, [(topic, 0, legacy), (topic, 1, batch(b"new"))])
    assert results[(topic, 0)].error_code == E.INVALID_RECORD
    assert results[(topic, 1)].error_code == E.NONE
    data = wire.call(sock, 1, 12, fetch_request(topic, 0))
    assert data.responses[0].partitions[0].high_watermark == 0


# ---- invalid topic names -------------------------------------------------------------------
INVALID_NAMES = ["", ".", "..", "x" * 250, "has space", "slash/name", "tab\tname", "ümlaut",
                 "nul\x00byte", "semi;colon"]


def test_invalid_topic_names(serve: ServeProcess, sock: socket.socket) -> None:
    created = wire.call(sock, 19, 7, CreateTopicsRequest(timeout_ms=1000, validate_only=False,
                                                          topics=[
        CreateTopicsRequest.CreatableTopic(name=name, num_partitions=1, replication_factor=1,
                                           assignments=[], configs=[])
        for name in [*INVALID_NAMES, "valid-" + uuid.uuid4().hex[:8]]]))
    codes = [t.error_code for t in created.topics]
    assert codes == [E.INVALID_TOPIC_EXCEPTION] * len(INVALID_NAMES) + [E.NONE]
    # Auto-creation through Metadata refuses them one by one too.
    metadata = wire.call(sock, 3, 12, MetadataRequest(
        topics=[MetadataRequest.MetadataRequestTopic(name=n) for n in INVALID_NAMES if n],
        allow_auto_topic_creation=True))
    assert {t.error_code for t in metadata.topics} == {E.INVALID_TOPIC_EXCEPTION}
    # Produce does not validate names (Kafka): they are simply not topics of this broker.
    results = _produce_many(sock, [(name, 0, batch(b"x")) for name in INVALID_NAMES])
    assert {r.error_code for r in results.values()} == {E.UNKNOWN_TOPIC_OR_PARTITION}
    assert "Traceback" not in serve.log()


def test_topic_name_that_is_not_utf8(serve: ServeProcess, sock: socket.socket) -> None:
    # A CreateTopics v4 (non-flexible: int16 length + bytes) whose one name is not UTF-8.
    raw_name = b"\xff\xfe-bad"
    body = (struct.pack(">i", 1) + struct.pack(">h", len(raw_name)) + raw_name
            + struct.pack(">ihii", 1, 1, 0, 0) + struct.pack(">ib", 1000, 0))
    header = struct.pack(">hhih", 19, 4, 9, 4) + b"evil"
    with wire.connect(serve.bootstrap) as hostile:
        hostile.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        try:
            _, response = wire.recv_response(hostile, 19, 4)
        except ConnectionError:
            pass  # refused as malformed input: the connection is closed
        else:
            assert response.topics[0].error_code == E.INVALID_TOPIC_EXCEPTION
    assert wire.call(sock, 3, 12, MetadataRequest(topics=None)).brokers
    assert "Traceback" not in serve.log()


# ---- many connections, slow readers --------------------------------------------------------
def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_thousands_of_idle_connections(serve: ServeProcess) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < IDLE_CONNECTIONS + 100:
        pytest.skip("RLIMIT_NOFILE hard limit too low for this test")
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(wire.connect(serve.bootstrap))
        # Every one of them was accepted and is served...
        for i in (0, IDLE_CONNECTIONS // 2, IDLE_CONNECTIONS - 1):
            assert wire.call(idle[i], 3, 12, MetadataRequest(topics=None)).brokers
        # ...and a newcomer still gets a quick answer.
        with wire.connect(serve.bootstrap) as fresh:
            started = time.monotonic()
            assert wire.call(fresh, 3, 12, MetadataRequest(topics=None)).brokers
            assert time.monotonic() - started < 2
    finally:
        for s in idle:
            s.close()
    with wire.connect(serve.bootstrap) as after:
        assert wire.call(after, 3, 12, MetadataRequest(topics=None)).brokers
    assert "Traceback" not in serve.log()


def test_client_that_never_reads_cannot_grow_broker_memory(
    serve: ServeProcess, sock: socket.socket
) -> None:
    topic = _name("slow")
    assert create(sock, topic).error_code == E.NONE
    payload = os.urandom(900_000)  # incompressible, one batch: each fetch answers ~900 kB
    assert _produce_many(sock, [(topic, 0, batch(payload))])[(topic, 0)].error_code == E.NONE
    assert serve.proc is not None
    request = wire.encode_request(1, 12, fetch_request(topic, 0))
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = serve.bootstrap.rsplit(":", 1)
    slow.connect((host, int(port)))
    try:
        rss_before = _rss_kib(serve.proc.pid)
        # 20,000 fetches would be ~18 GB of responses. The broker must stop reading requests
        # it cannot answer; the kernel buffers then fill and our sends block (the timeout).
        slow.settimeout(3)
        try:
            slow.sendall(request * FETCHES_UNREAD)
        except TimeoutError:
            pass
        time.sleep(1)
        growth_mib = (_rss_kib(serve.proc.pid) - rss_before) / 1024
        # A few MiB of write buffer plus a bounded number of requests in flight.
        assert growth_mib < 80, f"broker RSS grew {growth_mib:.0f} MiB"
        # Meanwhile everybody else is served promptly.
        started = time.monotonic()
        data = wire.call(sock, 1, 12, fetch_request(topic, 0))
        assert len(data.responses[0].partitions[0].records) > len(payload)
        assert time.monotonic() - started < 2
    finally:
        slow.close()
    with wire.connect(serve.bootstrap) as after:
        assert wire.call(after, 3, 12, MetadataRequest(topics=None)).brokers


# ---- unsupported versions: closed, one line each -------------------------------------------
BAD_VERSIONS = [
    (0, 0), (0, 1), (0, 2),  # Produce v0-v2: listed (KAFKA-18659) but never served
    (0, 99), (1, 99), (3, 99), (19, 99), (2, 42), (60, 9), (9999, 0), (-1, 0),
]


def test_unsupported_versions_close_with_one_line_each(
    serve: ServeProcess, sock: socket.socket
) -> None:
    lines_before = len(serve.log().splitlines())
    peers = []
    for api_key, version in BAD_VERSIONS:
        with wire.connect(serve.bootstrap) as bad:
            payload = struct.pack(">hhih", api_key, version, 1, -1) + b"\x00" * 16
            bad.sendall(struct.pack(">i", len(payload)) + payload)
            host, port = bad.getsockname()[:2]
            peers.append(f"{host}:{port}")
            assert wire.is_closed(bad), (api_key, version)
    deadline = time.monotonic() + 5
    while True:
        new_lines = serve.log().splitlines()[lines_before:]
        done = all(any(peer in ln for ln in new_lines) for peer in peers)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for peer in peers:
        mine = [ln for ln in new_lines if f"from {peer}:" in ln]
        assert len(mine) == 1, (peer, mine)
    # Exactly one line per bad connection: no traceback, no continuation lines.
    assert not [ln for ln in new_lines if not ln[:4].isdigit()], new_lines
    assert wire.call(sock, 3, 12, MetadataRequest(topics=None)).brokers


def test_fetch_requests_with_hostile_sizes(serve: ServeProcess, sock: socket.socket) -> None:
    topic = _name("sizes")
    assert create(sock, topic).error_code == E.NONE
    assert _produce_many(sock, [(topic, 0, batch(b"v" * 1000))])[(topic, 0)].error_code == 0
    for max_bytes, partition_max_bytes in ((0, 0), (-1, -1), (2**31 - 1, 2**31 - 1), (1, 1)):
        request = fetch_request(topic, 0, max_bytes=max_bytes,
                                partition_max_bytes=partition_max_bytes)
        data = wire.call(sock, 1, 12, request).responses[0].partitions[0]
        assert data.error_code == E.NONE
        # KIP-74: the first batch comes back whatever the limits say, and only that much.
        assert values(data.records) in ([b"v" * 1000], [])
    huge_offset = wire.call(sock, 1, 12, fetch_request(topic, 2**62))
    assert huge_offset.responses[0].partitions[0].error_code == E.OFFSET_OUT_OF_RANGE
    assert "Traceback" not in serve.log()
