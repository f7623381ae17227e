"""Issue 4's client matrix against a real `josef serve` process: confluent-kafka (librdkafka),
kafka-python, aiokafka and kcat each produce and consume keys, null keys, empty values,
headers and explicit timestamps with every compression codec and acks 0/1/all; each hits
message.max.bytes from both sides; each drives the admin APIs (topics, configs, partitions,
delete records, offsets for times, watermarks). One client carries 100,000 records, and an
idempotent producer is made to retry through a proxy that drops its produce responses.

The broker's raw fetch is checked too, so a codec counts only when the batch on the broker
really carries it (a client silently falling back to no compression would not pass)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from josef.protocol._generated.fetch import FetchRequest
from josef.records.batch import Compression, iter_batches
from tests.broker import wire
from tests.broker.conftest import ServeProcess

pytestmark = pytest.mark.compat

TIMEOUT_S = 20
BASE_TS = 1_700_000_000_000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CLIENTS = ["confluent", "kafka-python", "aiokafka", "kcat"]
# The broker default of message.max.bytes (Kafka's 1,048,588): the largest record batch.
MESSAGE_MAX_BYTES = 1_048_588
# Room the clients need for one near-limit batch in a request (their defaults are ~1 MB).
CLIENT_MAX_REQUEST = 4_000_000
HAVE_KCAT = shutil.which("kcat") is not None


@dataclass(frozen=True)
class Rec:
    partition: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int | None  # None: the client stamps the current time (kcat cannot set one)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _records(count: int, timestamps: bool, fixed_headers: bool) -> list[Rec]:
    """Two partitions; null keys, empty values, no/one/two headers; repetitive values so
    every codec really shrinks them."""
    out = []
    for i in range(count):
        # Null keys never meet empty values: kcat skips empty input lines.
        key = None if i % 5 == 2 else b"key-%d" % i
        value = b"" if i % 5 == 4 else b"value-%d " % i * 30
        if fixed_headers:
            headers: tuple[tuple[str, bytes], ...] = (("h", b"1"), ("trace", b"x"))
        else:
            headers = () if i % 4 == 0 else (("h", b"%d" % i), ("trace", b"x"))[: 1 + i % 2]
        out.append(Rec(i % 2, key, value, headers, BASE_TS + i if timestamps else None))
    return out


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("matrix"))
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def _create(bootstrap: str, topic: str, partitions: int = 2, config: dict | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                  config=config or {})])[topic].result(TIMEOUT_S)


# ---- per-client produce / consume ----------------------------------------------------------
# A consumed record: (partition, offset, key, value, headers, timestamp).
Got = tuple[int, int, bytes | None, bytes, tuple[tuple[str, bytes], ...], int]


def _ck_produce(bootstrap: str, topic: str, recs: list[Rec], codec: str, acks: str) -> None:
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                         "compression.type": codec})
    for r in recs:
        producer.produce(topic, key=r.key, value=r.value, partition=r.partition,
                         headers=list(r.headers), timestamp=r.timestamp or 0,
                         on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(TIMEOUT_S) == 0
    assert errors == [None] * len(recs)


def _ck_consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[Got]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("g"),
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[Got] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(got) < count and time.monotonic() < deadline:
            for m in consumer.consume(10_000, 0.5):
                assert m.error() is None, m.error()
                got.append((m.partition(), m.offset(), m.key(), m.value() or b"",
                            tuple(m.headers() or ()), m.timestamp()[1]))
    finally:
        consumer.close()
    return got


def _kp_acks(acks: str) -> int | str:
    return "all" if acks == "all" else int(acks)


def _kp_produce(bootstrap: str, topic: str, recs: list[Rec], codec: str, acks: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=_kp_acks(acks), linger_ms=5,
                             compression_type=None if codec == "none" else codec,
                             enable_idempotence=False)
    try:
        futures = [producer.send(topic, key=r.key, value=r.value, partition=r.partition,
                                 headers=list(r.headers), timestamp_ms=r.timestamp)
                   for r in recs]
        producer.flush(TIMEOUT_S)
        for future in futures:
            future.get(TIMEOUT_S)
    finally:
        producer.close(TIMEOUT_S)


def _kp_consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[Got]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    got: list[Got] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(m.partition, m.offset, m.key, m.value or b"",
                         tuple((k, v) for k, v in m.headers), m.timestamp) for m in records]
    finally:
        consumer.close()
    return got


def _aio_produce(bootstrap: str, topic: str, recs: list[Rec], codec: str, acks: str) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=_kp_acks(acks),
                                    linger_ms=5, enable_idempotence=False,
                                    compression_type=None if codec == "none" else codec)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=r.key, value=r.value,
                                           partition=r.partition, headers=list(r.headers),
                                           timestamp_ms=r.timestamp) for r in recs]
            await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT_S)
        finally:
            await producer.stop()

    asyncio.run(run())


def _aio_consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[Got]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[Got]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        got: list[Got] = []
        deadline = time.monotonic() + TIMEOUT_S
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            while len(got) < count and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [(m.partition, m.offset, m.key, m.value or b"",
                             tuple(m.headers), m.timestamp) for m in records]
        finally:
            await consumer.stop()
        return got

    return asyncio.run(run())


def _kcat(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", *args], input=stdin, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=check)


def _kcat_produce(bootstrap: str, topic: str, recs: list[Rec], codec: str, acks: str) -> None:
    # kcat takes one header set and one partition per run, keys after a delimiter (a line
    # without the delimiter has a null key) and cannot set timestamps.
    for partition in sorted({r.partition for r in recs}):
        mine = [r for r in recs if r.partition == partition]
        headers = [f"{k}={v.decode()}" for k, v in mine[0].headers]
        assert all(r.headers == mine[0].headers and r.timestamp is None for r in mine)
        lines = "".join((r.value.decode() if r.key is None
                         else f"{r.key.decode()}\t{r.value.decode()}") + "\n" for r in mine)
        _kcat("-b", bootstrap, "-P", "-t", topic, "-p", str(partition), "-K", "\t",
              *(arg for h in headers for arg in ("-H", h)),
              "-z", codec, "-X", f"acks={acks}", stdin=lines)


def _kcat_consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[Got]:
    out = _kcat("-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J").stdout
    got: list[Got] = []
    for line in out.splitlines():
        m = json.loads(line)
        raw = m.get("headers") or []
        headers = tuple((raw[i], raw[i + 1].encode()) for i in range(0, len(raw), 2))
        key = None if m["key"] is None else m["key"].encode()
        got.append((m["partition"], m["offset"], key, (m["payload"] or "").encode(),
                    headers, m["ts"]))
    return got


Produce = Callable[[str, str, list[Rec], str, str], None]
Consume = Callable[[str, str, int, int], list[Got]]
CLIENT_IO: dict[str, tuple[Produce, Consume]] = {
    "confluent": (_ck_produce, _ck_consume),
    "kafka-python": (_kp_produce, _kp_consume),
    "aiokafka": (_aio_produce, _aio_consume),
    "kcat": (_kcat_produce, _kcat_consume),
}


def _batch_codecs(bootstrap: str, topic: str, partition: int) -> set[Compression]:
    """The compression of every batch stored on the broker, read with a raw fetch."""
    request = FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=50_000_000, isolation_level=0,
        session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[FetchRequest.FetchPartition(
            partition=partition, fetch_offset=0, partition_max_bytes=50_000_000)])])
    with wire.connect(bootstrap) as sock:
        data = wire.call(sock, 1, 12, request).responses[0].partitions[0]
    return {b.compression for b in iter_batches(bytes(data.records))}


def _skip_without_kcat(client: str) -> None:
    if client == "kcat" and not HAVE_KCAT:
        pytest.skip("kcat not installed")


MATRIX = ([(c, codec, "all") for c in CLIENTS for codec in CODECS]
          + [(c, "none", acks) for c in CLIENTS for acks in ("0", "1")]
          + [(c, "lz4", "1") for c in CLIENTS])


@pytest.mark.parametrize(("client", "codec", "acks"), MATRIX)
def test_round_trip(serve: ServeProcess, client: str, codec: str, acks: str) -> None:
    _skip_without_kcat(client)
    produce, consume = CLIENT_IO[client]
    topic = _name(f"rt-{client}")
    _create(serve.bootstrap, topic)
    recs = _records(40, timestamps=client != "kcat", fixed_headers=client == "kcat")
    started = int(time.time() * 1000)
    produce(serve.bootstrap, topic, recs, codec, acks)
    got = consume(serve.bootstrap, topic, 2, len(recs))
    assert len(got) == len(recs)
    for partition in (0, 1):
        mine = [g for g in got if g[0] == partition]
        sent = [r for r in recs if r.partition == partition]
        assert [g[1] for g in mine] == list(range(len(sent)))
        assert [(g[2], g[3], g[4]) for g in mine] == [(r.key, r.value, r.headers) for r in sent]
        if client == "kcat":
            assert all(started <= g[5] <= time.time() * 1000 for g in mine)
        else:
            assert [g[5] for g in mine] == [r.timestamp for r in sent]
        assert _batch_codecs(serve.bootstrap, topic, partition) == {Compression[codec.upper()]}


@pytest.mark.parametrize("consumer", CLIENTS)
def test_every_client_reads_every_codec(serve: ServeProcess, consumer: str) -> None:
    """Decompression on the consuming side: each codec written by librdkafka, read by all."""
    _skip_without_kcat(consumer)
    for codec in CODECS:
        topic = _name(f"rd-{codec}")
        _create(serve.bootstrap, topic)
        recs = _records(20, timestamps=True, fixed_headers=False)
        _ck_produce(serve.bootstrap, topic, recs, codec, "all")
        got = CLIENT_IO[consumer][1](serve.bootstrap, topic, 2, len(recs))
        assert sorted((g[2] or b"", g[3], g[5]) for g in got) == sorted(
            (r.key or b"", r.value, r.timestamp) for r in recs), codec


# ---- message.max.bytes ---------------------------------------------------------------------
# One record of this size makes a batch just under / over the broker's message.max.bytes
# (61-byte batch header plus a few bytes of record framing).
NEAR_LIMIT = MESSAGE_MAX_BYTES - 200
OVER_LIMIT = MESSAGE_MAX_BYTES + 200


def _too_large_ck(bootstrap: str, topic: str) -> list[str | None]:
    from confluent_kafka import Producer

    outcomes: list[str | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": CLIENT_MAX_REQUEST,
                         "linger.ms": 0, "retries": 0})
    for size in (NEAR_LIMIT, OVER_LIMIT):
        producer.produce(topic, value=b"x" * size, partition=0, on_delivery=lambda e, _m:
                         outcomes.append(None if e is None else e.name()))
        producer.flush(TIMEOUT_S)
    return outcomes


def _too_large_kp(bootstrap: str, topic: str) -> list[str | None]:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    outcomes: list[str | None] = []
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=CLIENT_MAX_REQUEST,
                             enable_idempotence=False, acks=1, retries=0)
    try:
        for size in (NEAR_LIMIT, OVER_LIMIT):
            try:
                producer.send(topic, value=b"x" * size, partition=0).get(TIMEOUT_S)
                outcomes.append(None)
            except KafkaError as err:
                outcomes.append(type(err).__name__)
    finally:
        producer.close(TIMEOUT_S)
    return outcomes


def _too_large_aio(bootstrap: str, topic: str) -> list[str | None]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    async def run() -> list[str | None]:
        outcomes: list[str | None] = []
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                    max_request_size=CLIENT_MAX_REQUEST, acks=1)
        await producer.start()
        try:
            for size in (NEAR_LIMIT, OVER_LIMIT):
                try:
                    await producer.send_and_wait(topic, value=b"x" * size, partition=0)
                    outcomes.append(None)
                except KafkaError as err:
                    outcomes.append(type(err).__name__)
        finally:
            await producer.stop()
        return outcomes

    return asyncio.run(run())


def _too_large_kcat(bootstrap: str, topic: str) -> list[str | None]:
    outcomes: list[str | None] = []
    for size in (NEAR_LIMIT, OVER_LIMIT):
        run = _kcat("-b", bootstrap, "-P", "-t", topic, "-p", "0", "-D", "\n",
                    "-X", f"message.max.bytes={CLIENT_MAX_REQUEST}", "-X", "retries=0",
                    stdin="x" * size + "\n", check=False)
        outcomes.append(None if run.returncode == 0 else run.stderr)
    return outcomes


TOO_LARGE: dict[str, tuple[Callable[[str, str], list[str | None]], str]] = {
    "confluent": (_too_large_ck, "MSG_SIZE_TOO_LARGE"),
    "kafka-python": (_too_large_kp, "MessageSizeTooLargeError"),
    "aiokafka": (_too_large_aio, "MessageSizeTooLargeError"),
    "kcat": (_too_large_kcat, "too large"),
}


@pytest.mark.parametrize("client", CLIENTS)
def test_message_max_bytes(serve: ServeProcess, client: str) -> None:
    _skip_without_kcat(client)
    topic = _name(f"max-{client}")
    _create(serve.bootstrap, topic, partitions=1)
    check, expected = TOO_LARGE[client]
    near, over = check(serve.bootstrap, topic)
    assert near is None
    assert over is not None and expected in over, over
    got = _ck_consume(serve.bootstrap, topic, 1, 1)
    assert [(g[1], len(g[3])) for g in got] == [(0, NEAR_LIMIT)]


# ---- volume --------------------------------------------------------------------------------
def test_hundred_thousand_records_in_order_per_partition(serve: ServeProcess) -> None:
    from confluent_kafka import Producer

    topic = _name("100k")
    partitions, count = 4, 100_000
    _create(serve.bootstrap, topic, partitions=partitions)
    producer = Producer({"bootstrap.servers": serve.bootstrap, "acks": "all", "linger.ms": 20,
                         "batch.num.messages": 10_000, "compression.type": "lz4",
                         "enable.idempotence": True})
    for i in range(count):
        producer.produce(topic, value=b"%d" % i, partition=i % partitions)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    got = _ck_consume(serve.bootstrap, topic, partitions, count)
    assert len(got) == count
    for partition in range(partitions):
        mine = [g for g in got if g[0] == partition]
        assert [g[1] for g in mine] == list(range(count // partitions))
        assert [int(g[3]) for g in mine] == list(range(partition, count, partitions))


# ---- idempotent producer with retries -----------------------------------------------------
class DroppingProxy:
    """A TCP proxy that swallows the first `drops` Produce responses and cuts that client
    connection instead, after the broker has appended the batch: the producer must retry
    the same sequence numbers and the broker must deduplicate them."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream_port = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            produce_ids: set[int] = set()
            self._sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream, produce_ids),
                             daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client, produce_ids),
                             daemon=True).start()

    @staticmethod
    def _frames(sock: socket.socket) -> Iterator[bytes]:
        try:
            while True:
                size = struct.unpack(">i", wire.recv_exactly(sock, 4))[0]
                yield wire.recv_exactly(sock, size)
        except (ConnectionError, OSError):
            return

    def _requests(self, src: socket.socket, dst: socket.socket, produce_ids: set[int]) -> None:
        for frame in self._frames(src):
            api_key, _version, correlation_id = struct.unpack_from(">hhi", frame)
            if api_key == 0:
                produce_ids.add(correlation_id)
            try:
                dst.sendall(struct.pack(">i", len(frame)) + frame)
            except OSError:
                break
        self._close(src, dst)

    def _responses(self, src: socket.socket, dst: socket.socket, produce_ids: set[int]) -> None:
        for frame in self._frames(src):
            correlation_id = struct.unpack_from(">i", frame)[0]
            with self._lock:
                drop = correlation_id in produce_ids and self.dropped < self.drops
                self.dropped += drop
            if drop:
                break
            try:
                dst.sendall(struct.pack(">i", len(frame)) + frame)
            except OSError:
                break
        self._close(src, dst)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self._close(*self._sockets)


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[ServeProcess, DroppingProxy]]:
    """A broker that advertises the proxy, so every client connection passes through it."""
    proxy = DroppingProxy(drops=3)
    proxy.upstream_port = _free_port()
    server = ServeProcess(tmp_path, {
        "listeners": f"PLAINTEXT://127.0.0.1:{proxy.upstream_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}",
    })
    server.start()
    try:
        yield server, proxy
    finally:
        server.kill()
        proxy.close()


def _read_values(bootstrap: str, topic: str) -> list[bytes]:
    """Everything in partition 0, up to its high watermark (duplicates included)."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("g")})
    try:
        _, high_watermark = probe.get_watermark_offsets(TopicPartition(topic, 0), TIMEOUT_S)
    finally:
        probe.close()
    return [g[3] for g in _ck_consume(bootstrap, topic, 1, high_watermark)]


def test_idempotent_confluent_retries_are_deduplicated(proxied) -> None:
    from confluent_kafka import Producer

    server, proxy = proxied
    topic = _name("idem-retry")
    _create(server.bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": server.bootstrap, "enable.idempotence": True,
                         "linger.ms": 2, "retry.backoff.ms": 10, "request.timeout.ms": 5000,
                         "socket.connection.setup.timeout.ms": 5000})
    count = 300
    errors: list = []
    for i in range(count):
        producer.produce(topic, value=b"%d" % i, on_delivery=lambda e, _m: errors.append(e))
        if i % 50 == 49:
            producer.flush(TIMEOUT_S)
    assert producer.flush(TIMEOUT_S) == 0
    assert errors == [None] * count
    assert proxy.dropped == proxy.drops  # the retries really happened
    assert _read_values(server.bootstrap, topic) == [b"%d" % i for i in range(count)]


def test_idempotent_kafka_python_retries_are_deduplicated(proxied) -> None:
    from kafka import KafkaProducer

    server, proxy = proxied
    topic = _name("idem-kp")
    _create(server.bootstrap, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=server.bootstrap, enable_idempotence=True,
                             acks="all", linger_ms=2, retry_backoff_ms=10,
                             request_timeout_ms=5000)
    count = 150
    try:
        for i in range(count):
            producer.send(topic, value=b"%d" % i, partition=0)
            if i % 25 == 24:
                producer.flush(TIMEOUT_S)
        producer.flush(TIMEOUT_S)
    finally:
        producer.close(TIMEOUT_S)
    assert proxy.dropped == proxy.drops
    assert _read_values(server.bootstrap, topic) == [b"%d" % i for i in range(count)]


# ---- admin: topics, configs, partitions, delete records, offsets ---------------------------
def _timestamped(bootstrap: str, topic: str, partition: int, count: int) -> None:
    """`count` records at BASE_TS + 1000 * i into one partition (for offsets-for-times)."""
    recs = [Rec(partition, b"k", b"%d" % i, (), BASE_TS + 1000 * i) for i in range(count)]
    _ck_produce(bootstrap, topic, recs, "none", "all")


def test_admin_confluent(serve: ServeProcess) -> None:
    from confluent_kafka import TopicCollection
    from confluent_kafka import TopicPartition as TP
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ConfigSource,
        NewPartitions,
        NewTopic,
        OffsetSpec,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": serve.bootstrap})
    name = _name("adm-ck")
    admin.create_topics([NewTopic(name, 1, 1, config={"retention.ms": "3600000"})])[
        name].result(TIMEOUT_S)
    described = admin.describe_topics(TopicCollection([name]))[name].result(TIMEOUT_S)
    assert [p.id for p in described.partitions] == [0]
    resource = ConfigResource(ResourceType.TOPIC, name)

    def configs() -> dict:
        return admin.describe_configs([resource])[resource].result(TIMEOUT_S)

    assert configs()["retention.ms"].value == "3600000"
    change = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("segment.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([change])[change].result(TIMEOUT_S)
    after = configs()
    assert after["segment.bytes"].value == "2000000"
    assert after["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert after["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    admin.create_partitions([NewPartitions(name, 3)])[name].result(TIMEOUT_S)
    _timestamped(serve.bootstrap, name, 2, 10)
    tp = TP(name, 2)
    # A fresh client: librdkafka's admin keeps the 1-partition metadata it cached above and
    # answers "No leaders found" for partition 2 without asking the broker again.
    admin = AdminClient({"bootstrap.servers": serve.bootstrap})

    def offset(spec: OffsetSpec) -> int:
        return admin.list_offsets({tp: spec})[tp].result(TIMEOUT_S).offset

    assert (offset(OffsetSpec.earliest()), offset(OffsetSpec.latest())) == (0, 10)
    assert offset(OffsetSpec.for_timestamp(BASE_TS + 4500)) == 5
    assert offset(OffsetSpec.max_timestamp()) == 9
    deleted = admin.delete_records([TP(name, 2, 4)])
    assert next(iter(deleted.values())).result(TIMEOUT_S).low_watermark == 4
    assert offset(OffsetSpec.earliest()) == 4
    admin.delete_topics([name])[name].result(TIMEOUT_S)
    assert name not in admin.list_topics(timeout=TIMEOUT_S).topics


def test_admin_kafka_python(serve: ServeProcess) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    consumer = KafkaConsumer(bootstrap_servers=serve.bootstrap, enable_auto_commit=False)
    name = _name("adm-kp")
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={"retention.ms": "3600000"})])
        assert [len(t["partitions"]) for t in admin.describe_topics([name])] == [1]
        resource = ConfigResource(ConfigResourceType.TOPIC, name)
        assert admin.describe_configs([resource])["topic"][name]["retention.ms"]["value"] == (
            "3600000")
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                            configs={"segment.bytes": "2000000"})],
                            incremental=True)
        modified = admin.describe_configs([resource])["topic"][name]
        assert modified["segment.bytes"]["value"] == "2000000"
        admin.create_partitions({name: NewPartitions(total_count=3)})
        _timestamped(serve.bootstrap, name, 2, 10)
        tp = TopicPartition(name, 2)
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 10}
        assert consumer.offsets_for_times({tp: BASE_TS + 4500})[tp].offset == 5
        assert consumer.offsets_for_times({tp: BASE_TS + 99_000})[tp] is None
        admin.delete_records({tp: 4})
        assert consumer.beginning_offsets([tp]) == {tp: 4}
        admin.delete_topics([name])
        assert name not in admin.list_topics()
    finally:
        consumer.close()
        admin.close()


def test_admin_aiokafka(serve: ServeProcess) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    name = _name("adm-aio")
    tp = TopicPartition(name, 2)

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=serve.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=serve.bootstrap, enable_auto_commit=False,
                                    group_id=None)
        await admin.start()
        await consumer.start()
        try:
            await admin.create_topics([NewTopic(name, 1, 1,
                                                topic_configs={"retention.ms": "3600000"})])
            assert [len(t["partitions"]) for t in await admin.describe_topics([name])] == [1]
            resource = ConfigResource(ConfigResourceType.TOPIC, name)

            async def topic_configs() -> dict[str, str]:
                (response,) = await admin.describe_configs([resource])
                return {c[0]: c[1] for c in response.resources[0][4]}

            assert (await topic_configs())["retention.ms"] == "3600000"
            await admin.alter_configs([ConfigResource(
                ConfigResourceType.TOPIC, name,
                configs={"retention.ms": "3600000", "segment.bytes": "2000000"})])
            assert (await topic_configs())["segment.bytes"] == "2000000"
            await admin.create_partitions({name: NewPartitions(total_count=3)})
            _timestamped(serve.bootstrap, name, 2, 10)
            assert await consumer.beginning_offsets([tp]) == {tp: 0}
            assert await consumer.end_offsets([tp]) == {tp: 10}
            found = await consumer.offsets_for_times({tp: BASE_TS + 4500})
            assert found[tp].offset == 5
            assert await admin.delete_records({tp: RecordsToDelete(before_offset=4)}) == {tp: 4}
            assert await consumer.beginning_offsets([tp]) == {tp: 4}
            await admin.delete_topics([name])
            assert name not in await admin.list_topics()
        finally:
            await consumer.stop()
            await admin.close()

    asyncio.run(run())


@pytest.mark.skipif(not HAVE_KCAT, reason="kcat not installed")
def test_kcat_metadata_offsets_and_timestamps(serve: ServeProcess) -> None:
    name = _name("kc-q")
    _create(serve.bootstrap, name, partitions=3)
    _timestamped(serve.bootstrap, name, 1, 10)
    listing = _kcat("-b", serve.bootstrap, "-L", "-J").stdout
    metadata = json.loads(listing)
    topic = next(t for t in metadata["topics"] if t["topic"] == name)
    assert [p["partition"] for p in topic["partitions"]] == [0, 1, 2]
    assert [b["id"] for b in metadata["brokers"]] == [1]
    # -Q: offsets for a timestamp (ListOffsets by time)
    query = _kcat("-b", serve.bootstrap, "-Q", "-t", f"{name}:1:{BASE_TS + 4500}").stdout
    assert "offset 5" in query, query
    # -C from a timestamp, with the stored CreateTime shown
    tail = _kcat("-b", serve.bootstrap, "-C", "-t", name, "-p", "1", "-o",
                 f"s@{BASE_TS + 7000}", "-e", "-f", "%o %T %s\n").stdout
    assert tail.splitlines() == [f"{i} {BASE_TS + 1000 * i} {i}" for i in (7, 8, 9)]


# ---- restart -------------------------------------------------------------------------------
def test_acks_all_records_survive_sigkill(tmp_path: Path) -> None:
    """Every record librdkafka saw acknowledged (acks=all) is there after a SIGKILL and a
    restart, in order, exactly once."""
    import signal

    from confluent_kafka import Producer

    server = ServeProcess(tmp_path).start()
    try:
        topic = _name("crash")
        _create(server.bootstrap, topic, partitions=2)
        acked: list[tuple[int, bytes]] = []
        producer = Producer({"bootstrap.servers": server.bootstrap, "acks": "all",
                             "enable.idempotence": True, "linger.ms": 5})
        for i in range(5_000):
            producer.produce(topic, value=b"%d" % i, partition=i % 2, on_delivery=lambda e, m:
                             e is None and acked.append((m.partition(), m.value())))
        assert producer.flush(TIMEOUT_S) == 0
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.start()
        got = _ck_consume(server.bootstrap, topic, 2, len(acked))
        for partition in (0, 1):
            assert [g[3] for g in got if g[0] == partition] == [
                v for p, v in acked if p == partition]
        assert len(got) == len(acked) == 5_000
    finally:
        server.kill()
