"""Idempotent producers of real clients (kafka-python 3, confluent-kafka/librdkafka) against
`josef serve`: with idempotence and retries on, every record is stored once, in order."""

from __future__ import annotations

import uuid

import pytest

from tests.broker.conftest import ServeProcess
from tests.broker.test_clients import _consume_all, _create

pytestmark = pytest.mark.compat

TIMEOUT_S = 20
COUNT = 2_000


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _assert_once_in_order(bootstrap: str, topic: str) -> None:
    messages = _consume_all(bootstrap, topic, 1, COUNT)
    assert [m.value() for m in messages] == [b"v%d" % i for i in range(COUNT)]
    assert [m.offset() for m in messages] == list(range(COUNT))


def test_kafka_python_idempotent_producer(serve: ServeProcess) -> None:
    from kafka import KafkaProducer

    topic = _name("kp-idem")
    _create(serve.bootstrap, topic)
    producer = KafkaProducer(
        bootstrap_servers=serve.bootstrap, enable_idempotence=True, acks="all", retries=5,
        max_in_flight_requests_per_connection=5, linger_ms=1, batch_size=2048,
    )
    futures = [producer.send(topic, value=b"v%d" % i, partition=0) for i in range(COUNT)]
    producer.flush(TIMEOUT_S)
    assert [f.get(TIMEOUT_S).offset for f in futures] == list(range(COUNT))
    producer.close()
    _assert_once_in_order(serve.bootstrap, topic)


def test_confluent_kafka_idempotent_producer(serve: ServeProcess) -> None:
    from confluent_kafka import Producer

    topic = _name("ck-idem")
    _create(serve.bootstrap, topic)
    producer = Producer({
        "bootstrap.servers": serve.bootstrap, "enable.idempotence": True,
        "message.send.max.retries": 5, "max.in.flight.requests.per.connection": 5,
        "linger.ms": 1, "batch.size": 2048,
    })
    errors: list[object] = []
    for i in range(COUNT):
        producer.produce(topic, value=b"v%d" % i, partition=0,
                         on_delivery=lambda err, _msg: errors.append(err) if err else None)
        producer.poll(0)
    assert producer.flush(TIMEOUT_S) == 0
    assert errors == []
    _assert_once_in_order(serve.bootstrap, topic)
