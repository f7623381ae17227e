"""Real Kafka clients (kcat, confluent-kafka/librdkafka, kafka-python) against `josef serve`."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest

from tests.broker.conftest import ServeProcess

pytestmark = pytest.mark.compat

TIMEOUT_S = 20


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(bootstrap: str, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})]
    )
    futures[topic].result(TIMEOUT_S)


def _consume_all(bootstrap: str, topic: str, partitions: int, expected: int) -> list:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("g"),
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
    finally:
        consumer.close()
    return messages


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_kafka_round_trip(serve: ServeProcess, acks: str) -> None:
    from confluent_kafka import Producer

    topic = _name("ck")
    _create(serve.bootstrap, topic, partitions=3)
    producer = Producer({"bootstrap.servers": serve.bootstrap, "acks": acks, "linger.ms": 2})
    count = 600
    for i in range(count):
        producer.produce(topic, key=b"key-%d" % i, value=b"value-%d" % i, partition=i % 3,
                         headers=[("n", str(i).encode()), ("empty", None)],
                         timestamp=1_700_000_000_000 + i)
    assert producer.flush(TIMEOUT_S) == 0
    messages = _consume_all(serve.bootstrap, topic, 3, count)
    assert len(messages) == count
    for partition in range(3):
        got = [m for m in messages if m.partition() == partition]
        assert [m.offset() for m in got] == list(range(len(got)))
        numbers = [int(m.key().split(b"-")[1]) for m in got]
        assert numbers == sorted(numbers) and all(n % 3 == partition for n in numbers)
    first = next(m for m in messages if m.key() == b"key-0")
    assert first.value() == b"value-0"
    assert first.headers() == [("n", b"0"), ("empty", None)]
    assert first.timestamp()[1] == 1_700_000_000_000


def test_confluent_kafka_offsets_and_watermarks(serve: ServeProcess) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = _name("off")
    _create(serve.bootstrap, topic)
    producer = Producer({"bootstrap.servers": serve.bootstrap, "acks": "all"})
    base = 1_700_000_000_000
    for i in range(10):
        producer.produce(topic, value=b"%d" % i, timestamp=base + 1000 * i)
        producer.flush(TIMEOUT_S)
    consumer = Consumer({"bootstrap.servers": serve.bootstrap, "group.id": _name("g"),
                         "enable.auto.commit": False})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), TIMEOUT_S) == (0, 10)
        found = consumer.offsets_for_times([TopicPartition(topic, 0, base + 4500)], TIMEOUT_S)
        assert found[0].offset == 5
        beyond = consumer.offsets_for_times([TopicPartition(topic, 0, base + 99_000)], TIMEOUT_S)
        assert beyond[0].offset == -1
    finally:
        consumer.close()


def test_confluent_kafka_message_too_large(serve: ServeProcess) -> None:
    from confluent_kafka import KafkaError, Producer

    topic = _name("big")
    _create(serve.bootstrap, topic, config={"max.message.bytes": "20000"})
    errors: list = []
    producer = Producer({"bootstrap.servers": serve.bootstrap, "message.max.bytes": 1_000_000,
                         "linger.ms": 0})
    for size in (19_000, 50_000):  # one batch each: the limit is per batch
        producer.produce(topic, value=b"x" * size, on_delivery=lambda e, m: errors.append(e))
        producer.flush(TIMEOUT_S)
    assert errors[0] is None
    assert errors[1] is not None and errors[1].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_confluent_kafka_long_poll_latency(serve: ServeProcess) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = _name("lat")
    _create(serve.bootstrap, topic)
    # No auto commit: closing would wait for a group coordinator (not served yet).
    consumer = Consumer({"bootstrap.servers": serve.bootstrap, "group.id": _name("g"),
                         "enable.auto.commit": False,
                         "fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    consumer.assign([TopicPartition(topic, 0, 0)])
    consumer.poll(1.0)  # the fetch is now parked at the broker
    producer = Producer({"bootstrap.servers": serve.bootstrap, "linger.ms": 0})
    latencies = []
    try:
        for _ in range(5):
            sent = time.monotonic()
            producer.produce(topic, value=b"ping")
            producer.flush(TIMEOUT_S)
            message = None
            while message is None and time.monotonic() - sent < TIMEOUT_S:
                message = consumer.poll(0.05)
            assert message is not None and message.error() is None
            latencies.append(time.monotonic() - sent)
    finally:
        consumer.close()
    # Far below fetch.wait.max.ms: the parked fetch is woken by the append.
    assert sorted(latencies)[len(latencies) // 2] < 0.5, latencies


def test_kafka_python_round_trip(serve: ServeProcess) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = _name("kp")
    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=serve.bootstrap, acks="all",
                             enable_idempotence=False)
    futures = [producer.send(topic, key=b"k%d" % i, value=b"v%d" % i if i else b"",
                             headers=[("h", b"%d" % i)]) for i in range(200)]
    producer.flush(TIMEOUT_S)
    assert all(f.get(TIMEOUT_S).offset >= 0 for f in futures)
    producer.send(topic, key=None, value=b"null-key", partition=0).get(TIMEOUT_S)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=serve.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(partitions)
    messages = list(consumer)
    assert len(messages) == 201
    by_key = {m.key: m for m in messages}
    assert by_key[b"k0"].value == b"" and by_key[b"k5"].headers == [("h", b"5")]
    assert by_key[None].value == b"null-key"
    assert sum(consumer.end_offsets(partitions).values()) == 201
    consumer.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat(serve: ServeProcess) -> None:
    topic = _name("kc")
    listing = subprocess.run(["kcat", "-b", serve.bootstrap, "-L"], capture_output=True,
                             text=True, timeout=TIMEOUT_S, check=True)
    assert "broker 1 at 127.0.0.1" in listing.stdout
    lines = "".join(f"key{i}:value{i}\n" for i in range(20))
    subprocess.run(["kcat", "-b", serve.bootstrap, "-P", "-t", topic, "-K:", "-H", "h=1"],
                   input=lines, text=True, timeout=TIMEOUT_S, check=True)
    consumed = subprocess.run(
        ["kcat", "-b", serve.bootstrap, "-C", "-t", topic, "-e", "-f", "%k=%s %h\n"],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    assert consumed.stdout.splitlines() == [f"key{i}=value{i} h=1" for i in range(20)]
    listing = subprocess.run(["kcat", "-b", serve.bootstrap, "-L", "-t", topic],
                             capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    assert f'topic "{topic}" with 1 partitions' in listing.stdout


def test_aiokafka_round_trip(serve: ServeProcess) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = _name("aio")
    _create(serve.bootstrap, topic, partitions=2)

    async def scenario() -> list:
        producer = AIOKafkaProducer(bootstrap_servers=serve.bootstrap, acks="all",
                                    compression_type="gzip")
        await producer.start()
        try:
            for i in range(50):
                await producer.send_and_wait(topic, b"v%d" % i, key=b"k%d" % i,
                                             partition=i % 2, headers=[("h", b"1")])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=serve.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            messages: list = []
            while len(messages) < 50:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), TIMEOUT_S)
                for records in batches.values():
                    messages += records
            return messages
        finally:
            await consumer.stop()

    messages = asyncio.run(scenario())
    assert sorted(m.value for m in messages) == sorted(b"v%d" % i for i in range(50))
    assert all(m.headers == (("h", b"1"),) or list(m.headers) == [("h", b"1")]
               for m in messages)
