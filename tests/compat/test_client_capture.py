"""Cross-checks of the codec against real Kafka clients (issue 2).

confluent-kafka (librdkafka), kafka-python, aiokafka and, when installed, kcat talk to
`CaptureServer`, which answers with Josef's generated response classes. Each scenario proves:
- the client accepts our ApiVersions and Metadata responses (it gets cluster metadata), and
  the Produce/Fetch/group responses enough to go on to its next request;
- every request it sent decodes exactly, and re-encoding the decoded header and body at the
  same version gives the captured bytes back, byte for byte (`assert_exact`);
- produced record batches carry a valid CRC-32C and hold, through `josef.records`, exactly
  the keys, values, headers and timestamps the client was given, for each compression codec
  the client supports;
- a consumer group reads those records back through our Fetch responses.
Scenarios also run with every API capped below its first flexible version, so the classic
(non-flexible) encodings are crossed too.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from josef.protocol._generated.headers import RequestHeader
from josef.protocol.connection import ServerConnection
from josef.protocol.messages import request_header_version
from josef.records.batch import BatchHeader, Compression, iter_batches
from josef.records.records import iter_records, record_timestamp
from tests.compat.capture_server import (
    CLUSTER_ID,
    NODE_ID,
    PRODUCER_EPOCH,
    PRODUCER_ID,
    Captured,
    CaptureServer,
    pre_flexible_caps,
)

pytestmark = pytest.mark.compat

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP = 8, 9, 10, 11
SYNC_GROUP, API_VERSIONS, INIT_PRODUCER_ID = 14, 18, 22
ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28
COORDINATOR_TRANSACTION = 1  # FindCoordinator key_type

TOPIC = "capture-topic"
GROUP = "capture-group"
TRANSACTIONAL_ID = "capture-txn"
RECORD_COUNT = 5
BASE_TIMESTAMP_MS = 1_700_000_000_000
TIMEOUT_S = 10.0  # per client operation; a healthy scenario takes well under a second

CODECS = {
    "none": Compression.NONE,
    "gzip": Compression.GZIP,
    "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4,
    "zstd": Compression.ZSTD,
}
PROFILES = {"newest": None, "pre_flexible": pre_flexible_caps()}

# (key, value, headers, timestamp_ms). Values repeat so that every codec shrinks them: a client
# may send a batch uncompressed when compression would not help.
Sent = tuple[bytes, bytes, list[tuple[str, bytes]], int]
SENT: list[Sent] = [
    (
        f"key-{i}".encode(),
        f"value-{i}-".encode() * 40,
        [("trace", f"t{i}".encode()), ("empty", b"")],
        BASE_TIMESTAMP_MS + i,
    )
    for i in range(RECORD_COUNT)
]


@pytest.fixture(params=list(PROFILES))
def server(request: pytest.FixtureRequest) -> Iterator[CaptureServer]:
    with CaptureServer(caps=PROFILES[request.param]) as srv:
        yield srv


@pytest.fixture
def newest_server() -> Iterator[CaptureServer]:
    with CaptureServer() as srv:
        yield srv


# -- checks shared by every client --------------------------------------------------------


def assert_exact(server: CaptureServer) -> set[tuple[int, int]]:
    """Every captured request: exact decode and byte-for-byte re-encoding of header and body.

    Returns the (api_key, api_version) pairs seen.
    """
    assert server.errors == []
    seen: set[tuple[int, int]] = set()
    for captured in server.requests():
        request = captured.request
        frame = captured.frame
        seen.add((request.api_key, request.api_version))
        if request.unsupported_version:  # KIP-511: only the header is read
            continue
        header_version = request_header_version(request.api_key, request.api_version)
        header, pos = RequestHeader.read(frame, 0, len(frame), header_version)
        assert header == request.header
        assert request.header.encode(header_version) == frame[:pos]
        body = frame[pos:]
        what = f"{type(request.body).__name__} v{request.api_version} from {request.client_id}"
        assert request.body.size(request.api_version) == len(body), what
        assert request.body.encode(request.api_version) == body, (
            f"{what}: re-encoded {request.body.encode(request.api_version).hex()} "
            f"captured {body.hex()}"
        )
        assert type(request.body).decode(body, request.api_version) == request.body, what
    return seen


def test_assert_exact_catches_what_a_decode_drops(newest_server: CaptureServer) -> None:
    """The byte-for-byte check is not vacuous: an unknown tagged field (tag 5) survives decoding
    only as skipped bytes, so re-encoding differs and `assert_exact` says so."""
    frame = RequestHeader(METADATA, 12, 7, "probe").encode(2) + bytes.fromhex("01010001050100")
    connection = ServerConnection()
    connection.receive_data(len(frame).to_bytes(4, "big") + frame)
    request = connection.next_request()
    assert request is not None and request.body.topics == []
    newest_server.captured.append(Captured(request, frame))
    with pytest.raises(AssertionError, match="MetadataRequest v12 from probe"):
        assert_exact(newest_server)


def produced_batches(server: CaptureServer, topic: str = TOPIC) -> list[BatchHeader]:
    batches = []
    for captured in server.requests(PRODUCE):
        for topic_data in captured.request.body.topic_data:
            if topic_data.name != topic:
                continue
            for partition_data in topic_data.partition_data:
                for header in iter_batches(partition_data.records):
                    assert header.crc_valid(), header
                    batches.append(header)
    return batches


def assert_produced(
    server: CaptureServer,
    codec: str,
    expected: list[Sent] = SENT,
    with_timestamps: bool = True,
) -> list[BatchHeader]:
    """The Produce requests hold exactly `expected`, compressed with `codec`."""
    batches = produced_batches(server)
    assert batches, "no record batch reached the responder"
    got = []
    for header in batches:
        assert header.compression == CODECS[codec], header
        assert header.base_offset == 0
        for record in iter_records(header):
            timestamp = record_timestamp(header, record) if with_timestamps else 0
            got.append((record.key, record.value, record.headers, timestamp))
    want = [(k, v, h, ts if with_timestamps else 0) for k, v, h, ts in expected]
    assert got == want
    return batches


def assert_group_requests(seen: set[tuple[int, int]]) -> None:
    keys = {key for key, _ in seen}
    group_keys = (FIND_COORDINATOR, JOIN_GROUP, SYNC_GROUP, OFFSET_FETCH, LIST_OFFSETS, FETCH)
    for key in (*group_keys, OFFSET_COMMIT):
        assert key in keys, f"api_key {key} never sent; saw {sorted(seen)}"


def assert_transaction(server: CaptureServer, codec: str) -> None:
    """One committed transaction: TOPIC's records plus an offset commit of RECORD_COUNT."""
    for header in assert_produced(server, codec):
        assert header.is_transactional, header
        assert (header.producer_id, header.producer_epoch) == (PRODUCER_ID, PRODUCER_EPOCH)
    init = server.requests(INIT_PRODUCER_ID)
    assert [c.request.body.transactional_id for c in init] == [TRANSACTIONAL_ID]
    finds = [c.request.body for c in server.requests(FIND_COORDINATOR)]
    assert any(
        f.key_type == COORDINATOR_TRANSACTION and TRANSACTIONAL_ID in (f.key, *f.coordinator_keys)
        for f in finds
    )
    added = []
    for captured in server.requests(ADD_PARTITIONS_TO_TXN):
        body = captured.request.body
        assert body.v3_and_below_transactional_id == TRANSACTIONAL_ID
        added += [(t.name, t.partitions) for t in body.v3_and_below_topics]
    assert added == [(TOPIC, [0])]
    offsets = server.requests(ADD_OFFSETS_TO_TXN)
    assert [c.request.body.group_id for c in offsets] == [GROUP]
    commits = [c.request.body for c in server.requests(TXN_OFFSET_COMMIT)]
    assert [(c.transactional_id, c.group_id) for c in commits] == [(TRANSACTIONAL_ID, GROUP)]
    assert [
        (t.name, p.partition_index, p.committed_offset)
        for t in commits[0].topics
        for p in t.partitions
    ] == [(TOPIC, 0, RECORD_COUNT)]
    ends = [c.request.body for c in server.requests(END_TXN)]
    assert [(e.transactional_id, e.committed) for e in ends] == [(TRANSACTIONAL_ID, True)]
    assert_exact(server)


# -- confluent-kafka (librdkafka) ---------------------------------------------------------

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient  # noqa: E402


def _confluent_produce(server: CaptureServer, codec: str, **config: object) -> None:
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": server.bootstrap,
            "compression.type": codec,
            "linger.ms": 20,  # every record of the scenario in one batch
            "message.timeout.ms": int(TIMEOUT_S * 1000),
            **config,
        }
    )
    for key, value, headers, timestamp in SENT:
        producer.produce(TOPIC, key=key, value=value, headers=headers, timestamp=timestamp)
    assert producer.flush(TIMEOUT_S) == 0


def test_confluent_metadata(server: CaptureServer) -> None:
    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    metadata = admin.list_topics(topic=TOPIC, timeout=TIMEOUT_S)
    assert metadata.cluster_id == CLUSTER_ID
    assert metadata.controller_id == NODE_ID
    assert [(b.id, b.host, b.port) for b in metadata.brokers.values()] == [
        (NODE_ID, "127.0.0.1", server.port)
    ]
    assert list(metadata.topics[TOPIC].partitions) == [0]
    assert metadata.topics[TOPIC].partitions[0].leader == NODE_ID
    seen = assert_exact(server)
    assert {API_VERSIONS, METADATA} <= {key for key, _ in seen}


# librdkafka writes a 4-byte placeholder for the null (all topics) array of a flexible
# MetadataRequest (confluentinc/librdkafka#5049): 3 bytes trail the body. Kafka ignores trailing
# request bytes and so does ServerConnection; this keeps it that way.
def test_confluent_metadata_all_topics(newest_server: CaptureServer) -> None:
    admin = AdminClient({"bootstrap.servers": newest_server.bootstrap})
    metadata = admin.list_topics(timeout=2)
    assert metadata.brokers
    assert newest_server.errors == []


@pytest.mark.parametrize("codec", list(CODECS))
def test_confluent_produce(newest_server: CaptureServer, codec: str) -> None:
    _confluent_produce(newest_server, codec)
    assert_produced(newest_server, codec)
    assert_exact(newest_server)


def test_confluent_idempotent_produce_and_group(server: CaptureServer) -> None:
    _confluent_produce(server, "lz4", **{"enable.idempotence": True})
    for header in assert_produced(server, "lz4"):
        assert (header.producer_id, header.producer_epoch) == (PRODUCER_ID, PRODUCER_EPOCH)
        assert header.base_sequence == 0
    assert server.requests(INIT_PRODUCER_ID)

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": server.bootstrap,
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([TOPIC])
    received = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(received) < RECORD_COUNT and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None:
            assert message.error() is None, message.error()
            received.append(message)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert [(m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in received] == [
        (k, v, h, ts) for k, v, h, ts in SENT
    ]
    assert [m.offset() for m in received] == list(range(RECORD_COUNT))
    commits = server.requests(OFFSET_COMMIT)
    assert commits[-1].request.body.topics[0].partitions[0].committed_offset == RECORD_COUNT
    assert_group_requests(assert_exact(server))


def test_confluent_transaction(server: CaptureServer) -> None:
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": server.bootstrap,
            "transactional.id": TRANSACTIONAL_ID,
            "compression.type": "snappy",
            "linger.ms": 20,
        }
    )
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    for key, value, headers, timestamp in SENT:
        producer.produce(TOPIC, key=key, value=value, headers=headers, timestamp=timestamp)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": server.bootstrap, "group.id": GROUP})
    producer.send_offsets_to_transaction(
        [confluent_kafka.TopicPartition(TOPIC, 0, RECORD_COUNT)],
        consumer.consumer_group_metadata(),
        TIMEOUT_S,
    )
    consumer.close()
    producer.commit_transaction(TIMEOUT_S)
    assert_transaction(server, "snappy")


# -- kafka-python -------------------------------------------------------------------------

kafka = pytest.importorskip("kafka")
kafka_codec = pytest.importorskip("kafka.codec")

KAFKA_PYTHON_CODECS = {
    "none": lambda: True,
    "gzip": kafka_codec.has_gzip,
    "snappy": kafka_codec.has_snappy,
    "lz4": kafka_codec.has_lz4,
    "zstd": kafka_codec.has_zstd,
}


def _kafka_python_produce(server: CaptureServer, codec: str, **config: object) -> None:
    producer = kafka.KafkaProducer(
        bootstrap_servers=server.bootstrap,
        compression_type=None if codec == "none" else codec,
        linger_ms=20,
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **config,
    )
    try:
        for key, value, headers, timestamp in SENT:
            producer.send(TOPIC, key=key, value=value, headers=headers, timestamp_ms=timestamp)
        producer.flush(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=TIMEOUT_S)


def test_kafka_python_metadata(server: CaptureServer) -> None:
    consumer = kafka.KafkaConsumer(bootstrap_servers=server.bootstrap)
    try:
        server.topic_id(TOPIC)  # a topic the cluster already has
        assert consumer.topics() == {TOPIC}
        assert consumer.partitions_for_topic(TOPIC) == {0}
    finally:
        consumer.close()
    seen = assert_exact(server)
    assert {API_VERSIONS, METADATA} <= {key for key, _ in seen}


@pytest.mark.parametrize("codec", list(CODECS))
def test_kafka_python_produce(newest_server: CaptureServer, codec: str) -> None:
    if not KAFKA_PYTHON_CODECS[codec]():
        pytest.skip(f"kafka-python has no {codec} library installed")
    _kafka_python_produce(newest_server, codec)
    assert_produced(newest_server, codec)
    assert_exact(newest_server)


def test_kafka_python_idempotent_produce_and_group(server: CaptureServer) -> None:
    _kafka_python_produce(server, "gzip", enable_idempotence=True, acks="all")
    for header in assert_produced(server, "gzip"):
        assert (header.producer_id, header.producer_epoch) == (PRODUCER_ID, PRODUCER_EPOCH)
    assert server.requests(INIT_PRODUCER_ID)

    consumer = kafka.KafkaConsumer(
        TOPIC,
        bootstrap_servers=server.bootstrap,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(received) < RECORD_COUNT and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received.extend(records)
        consumer.commit()
    finally:
        consumer.close()
    assert [(r.key, r.value, r.headers, r.timestamp) for r in received] == [
        (k, v, h, ts) for k, v, h, ts in SENT
    ]
    commits = server.requests(OFFSET_COMMIT)
    assert commits[-1].request.body.topics[0].partitions[0].committed_offset == RECORD_COUNT
    assert_group_requests(assert_exact(server))


def test_kafka_python_transaction(server: CaptureServer) -> None:
    producer = kafka.KafkaProducer(
        bootstrap_servers=server.bootstrap,
        transactional_id=TRANSACTIONAL_ID,
        compression_type="gzip",
        linger_ms=20,
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for key, value, headers, timestamp in SENT:
            producer.send(TOPIC, key=key, value=value, headers=headers, timestamp_ms=timestamp)
        producer.send_offsets_to_transaction(
            {kafka.TopicPartition(TOPIC, 0): kafka.OffsetAndMetadata(RECORD_COUNT, "", -1)}, GROUP
        )
        producer.commit_transaction()
    finally:
        producer.close(timeout=TIMEOUT_S)
    assert_transaction(server, "gzip")


# -- aiokafka -----------------------------------------------------------------------------

aiokafka = pytest.importorskip("aiokafka")


async def _aiokafka_produce(server: CaptureServer, codec: str, **config: object) -> None:
    producer = aiokafka.AIOKafkaProducer(
        bootstrap_servers=server.bootstrap,
        compression_type=None if codec == "none" else codec,
        linger_ms=20,
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **config,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(TOPIC, key=key, value=value, headers=headers, timestamp_ms=ts)
            for key, value, headers, ts in SENT
        ]
        await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT_S)
    finally:
        await producer.stop()


def test_aiokafka_metadata(server: CaptureServer) -> None:
    async def scenario() -> None:
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=server.bootstrap)
        await consumer.start()
        try:
            server.topic_id(TOPIC)
            assert await consumer.topics() == {TOPIC}
        finally:
            await consumer.stop()

    asyncio.run(scenario())
    seen = assert_exact(server)
    assert {API_VERSIONS, METADATA} <= {key for key, _ in seen}


@pytest.mark.parametrize("codec", list(CODECS))
def test_aiokafka_produce(newest_server: CaptureServer, codec: str) -> None:
    asyncio.run(_aiokafka_produce(newest_server, codec))
    assert_produced(newest_server, codec)
    assert_exact(newest_server)


def test_aiokafka_idempotent_produce_and_group(server: CaptureServer) -> None:
    async def scenario() -> list[object]:
        await _aiokafka_produce(server, "zstd", enable_idempotence=True)
        consumer = aiokafka.AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=server.bootstrap,
            group_id=GROUP,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        received: list[object] = []
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while len(received) < RECORD_COUNT and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    received.extend(records)
            await consumer.commit()
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(scenario())
    for header in assert_produced(server, "zstd"):
        assert (header.producer_id, header.producer_epoch) == (PRODUCER_ID, PRODUCER_EPOCH)
    assert server.requests(INIT_PRODUCER_ID)
    assert [
        (r.key, r.value, list(r.headers), r.timestamp)  # type: ignore[attr-defined]
        for r in received
    ] == [(k, v, h, ts) for k, v, h, ts in SENT]
    commits = server.requests(OFFSET_COMMIT)
    assert commits[-1].request.body.topics[0].partitions[0].committed_offset == RECORD_COUNT
    assert_group_requests(assert_exact(server))


def test_aiokafka_transaction(server: CaptureServer) -> None:
    async def scenario() -> None:
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=server.bootstrap,
            transactional_id=TRANSACTIONAL_ID,
            compression_type="lz4",
            linger_ms=20,
        )
        await producer.start()
        try:
            async with producer.transaction():
                for key, value, headers, ts in SENT:
                    await producer.send(
                        TOPIC, key=key, value=value, headers=headers, timestamp_ms=ts
                    )
                await producer.send_offsets_to_transaction(
                    {aiokafka.TopicPartition(TOPIC, 0): RECORD_COUNT}, GROUP
                )
        finally:
            await producer.stop()

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT_S))
    assert_transaction(server, "lz4")


# -- kcat (Debian's build, an older librdkafka) -------------------------------------------

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat is not installed")


def _kcat(server: CaptureServer, *args: str, stdin: bytes = b"") -> str:
    result = subprocess.run(
        [KCAT or "kcat", "-b", server.bootstrap, *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode()


@needs_kcat
def test_kcat_metadata(server: CaptureServer) -> None:
    server.topic_id(TOPIC)
    listing = _kcat(server, "-L", "-m", "5")
    assert f'topic "{TOPIC}" with 1 partitions' in listing
    assert f"broker {NODE_ID} at 127.0.0.1:{server.port}" in listing
    seen = assert_exact(server)
    assert {API_VERSIONS, METADATA} <= {key for key, _ in seen}


@needs_kcat
@pytest.mark.parametrize("codec", list(CODECS))
def test_kcat_produce(newest_server: CaptureServer, codec: str) -> None:
    lines = b"".join(k + b"\t" + v + b"\n" for k, v, _, _ in SENT)
    # kcat takes one set of headers for all records and stamps its own timestamps.
    _kcat(
        newest_server,
        "-P",
        "-t",
        TOPIC,
        "-p",
        "0",
        "-z",
        codec,
        "-K",
        "\t",
        "-H",
        "trace=t",
        "-H",
        "empty=",
        "-X",
        "linger.ms=20",
        stdin=lines,
    )
    expected = [(k, v, [("trace", b"t"), ("empty", b"")], 0) for k, v, _, _ in SENT]
    assert_produced(newest_server, codec, expected, with_timestamps=False)
    assert_exact(newest_server)
