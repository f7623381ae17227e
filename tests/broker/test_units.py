"""The broker's small parts on their own: topic table + persistence, meta.properties, purgatory,
registry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from josef.broker.broker import Broker
from josef.broker.handlers import default_registry
from josef.broker.meta import MetaPropertiesError, ensure_meta_properties
from josef.broker.purgatory import Purgatory
from josef.broker.registry import HandlerRegistry
from josef.broker.topics import TOPICS_FILE, TopicError, Topics, validate_topic_name
from josef.cluster.config import BrokerConfig, ConfigError, resolve_topic_config
from josef.cluster.properties import load_broker_config
from josef.protocol.errors import ErrorCode
from josef.storage.disk.manager import DiskPartitionLogs


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 249, "__consumer_offsets"])
def test_legal_topic_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "a b", "a/b", "é", "a:b"])
def test_illegal_topic_names(name: str) -> None:
    with pytest.raises(TopicError) as err:
        validate_topic_name(name)
    assert err.value.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION


def _open(path: Path) -> tuple[Topics, DiskPartitionLogs]:
    broker = BrokerConfig({"log.dirs": str(path)})
    topics = Topics(path, lambda overrides: resolve_topic_config(broker, overrides))
    topics.load()
    logs = DiskPartitionLogs([path], config_for=topics.config_for)
    topics.open_logs(logs)
    return topics, logs


def test_topics_persist_atomically_and_reload(tmp_path: Path) -> None:
    topics, logs = _open(tmp_path)
    created = topics.create("orders", 3, {"retention.ms": "1000"})
    with pytest.raises(TopicError) as err:
        topics.create("orders", 1)
    assert err.value.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    topics.create("or.ders", 1)  # no collision: "orders" has neither '.' nor '_'
    topics.create("a.b", 1)
    with pytest.raises(TopicError) as err:
        topics.create("a_b", 1)
    assert err.value.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    with pytest.raises(ConfigError):
        topics.create("bad", 1, {"retention.ms": "x"})
    assert topics.get("bad") is None
    with pytest.raises(TopicError) as err:
        topics.create("zero", 0)
    assert err.value.error_code == ErrorCode.INVALID_PARTITIONS
    assert not list(tmp_path.glob(TOPICS_FILE + ".tmp"))
    logs.close()

    again, logs = _open(tmp_path)
    info = again.get("orders")
    assert info is not None and info.topic_id == created.topic_id
    assert info.num_partitions == 3 and info.log_config.retention_ms == 1000
    assert again.by_id(created.topic_id) is info
    assert again.partition_log("orders", 2) is not None
    assert again.partition_log("orders", 3) is None
    assert sorted(t.name for t in again) == ["a.b", "or.ders", "orders"]
    logs.close()


def test_meta_properties(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    cluster_id = ensure_meta_properties(dirs, 1)
    assert len(cluster_id) == 22
    assert "node.id=1" in (dirs[1] / "meta.properties").read_text()
    assert ensure_meta_properties(dirs, 1) == cluster_id
    with pytest.raises(MetaPropertiesError):
        ensure_meta_properties(dirs, 2)
    (dirs[1] / "meta.properties").write_text("version=1\ncluster.id=other\nnode.id=1\n")
    with pytest.raises(MetaPropertiesError):
        ensure_meta_properties(dirs, 1)


def test_purgatory_wakes_on_notify_and_times_out() -> None:
    async def scenario() -> None:
        purgatory = Purgatory()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, purgatory.notify, ("t", 1))
        started = time.monotonic()
        assert await purgatory.wait([("t", 0), ("t", 1)], 5000) is True
        assert time.monotonic() - started < 1
        assert purgatory.parked == 0
        assert await purgatory.wait([("t", 0)], 30) is False
        assert await purgatory.wait([("t", 0)], 0) is False
        waiter = asyncio.ensure_future(purgatory.wait([("t", 0)], 5000))
        await asyncio.sleep(0)
        assert purgatory.parked == 1
        purgatory.close()
        assert await waiter is True
        assert await purgatory.wait([("t", 0)], 5000) is True

    asyncio.run(scenario())


def test_registry() -> None:
    registry = default_registry()
    assert registry.supports(0, 9) and not registry.supports(0, 2)
    assert not registry.supports(9999, 0)
    assert [s.api_key for s in registry] == sorted(s.api_key for s in registry)
    with pytest.raises(ValueError):
        registry.register(0, 3, 11, registry.get(0).handler)  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        HandlerRegistry().register(5, 3, 1, registry.get(0).handler)  # type: ignore[union-attr]


def test_serve_override_reaches_the_producer_state_of_each_log(tmp_path: Path) -> None:
    """`josef serve --override producer.id.expiration.ms=...`: the settings `serve` builds,
    opened as `serve` opens them."""
    config = load_broker_config(
        None, [f"log.dirs={tmp_path}", "producer.id.expiration.ms=1234"], environ={}
    )
    broker = Broker.open(config, default_registry())
    try:
        broker.auto_create("t")
        log = broker.logs.get("t", 0)
        assert log is not None and log.producer_state.producer_id_expiration_ms == 1234
    finally:
        asyncio.run(broker.close())
