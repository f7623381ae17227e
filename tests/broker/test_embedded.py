"""`josef.testing`: the in-process broker and its pytest fixture."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from josef.testing import EmbeddedBroker
from josef.testing.pytest_plugin import josef_broker  # noqa: F401  (registers the fixture)


def _round_trip(bootstrap: str, topic: str) -> list[bytes]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    for i in range(3):
        producer.send(topic, b"m%d" % i).get(10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    consumer.assign([TopicPartition(topic, 0)])
    got = [m.value for m in consumer]
    consumer.close()
    return got


def test_context_manager_serves_and_cleans_up() -> None:
    with EmbeddedBroker() as broker:
        assert broker.port > 0
        assert _round_trip(broker.bootstrap_servers, "embedded") == [b"m0", b"m1", b"m2"]
        log_dir = broker.log_dir
        assert log_dir is not None and (log_dir / "meta.properties").exists()
    assert not log_dir.exists()


def test_given_log_dir_survives_restart(tmp_path) -> None:
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        _round_trip(broker.bootstrap_servers, "again")
    with EmbeddedBroker(log_dir=tmp_path, overrides={"num.partitions": "3"}) as broker:
        assert _round_trip(broker.bootstrap_servers, "again")[:3] == [b"m0", b"m1", b"m2"]


def test_pytest_fixture(josef_broker: EmbeddedBroker) -> None:  # noqa: F811
    assert _round_trip(josef_broker.bootstrap_servers, "fixture") == [b"m0", b"m1", b"m2"]
