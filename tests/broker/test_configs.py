"""DescribeConfigs / AlterConfigs / IncrementalAlterConfigs against a real `josef serve`:
real admin clients for the normal paths, raw requests for every refusal Kafka gives."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from josef.protocol._generated.alter_configs import AlterConfigsRequest
from josef.protocol._generated.create_topics import CreateTopicsRequest
from josef.protocol._generated.describe_configs import DescribeConfigsRequest
from josef.protocol._generated.incremental_alter_configs import IncrementalAlterConfigsRequest
from josef.protocol._generated.produce import ProduceRequest
from josef.protocol.errors import ErrorCode
from josef.records.builder import BatchBuilder
from tests.broker import wire
from tests.broker.conftest import ServeProcess

E = ErrorCode
TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
# ConfigSource codes (KIP-226)
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = 1, 2, 3, 4, 5
TIMEOUT_S = 20


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(bootstrap: str, name: str, configs: dict[str, str] | None = None,
           partitions: int = 1) -> None:
    with wire.connect(bootstrap) as sock:
        response = wire.call(sock, 19, 7, CreateTopicsRequest(topics=[
            CreateTopicsRequest.CreatableTopic(
                name=name, num_partitions=partitions, replication_factor=1,
                configs=[CreateTopicsRequest.CreatableTopicConfig(name=k, value=v)
                         for k, v in (configs or {}).items()])], timeout_ms=1000))
    assert response.topics[0].error_code == E.NONE, response


def describe(bootstrap: str, resource_type: int, name: str, keys: list[str] | None = None,
             version: int = 4, synonyms: bool = True, docs: bool = False):
    with wire.connect(bootstrap) as sock:
        response = wire.call(sock, 32, version, DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=resource_type, resource_name=name, configuration_keys=keys)],
            include_synonyms=synonyms, include_documentation=docs))
    assert len(response.results) == 1
    return response.results[0]


def alter(bootstrap: str, resources: list[tuple[int, str, dict[str, str | None]]],
          validate_only: bool = False, version: int = 2) -> list[tuple[int, str | None]]:
    body = AlterConfigsRequest(validate_only=validate_only, resources=[
        AlterConfigsRequest.AlterConfigsResource(
            resource_type=rtype, resource_name=name,
            configs=[AlterConfigsRequest.AlterableConfig(name=k, value=v)
                     for k, v in configs.items()])
        for rtype, name, configs in resources])
    with wire.connect(bootstrap) as sock:
        response = wire.call(sock, 33, version, body)
    return [(r.error_code, r.error_message) for r in response.responses]


def incremental(bootstrap: str, resources: list[tuple[int, str, list[tuple[str, int, str | None]]]],
                validate_only: bool = False, version: int = 1) -> list[tuple[int, str | None]]:
    body = IncrementalAlterConfigsRequest(validate_only=validate_only, resources=[
        IncrementalAlterConfigsRequest.AlterConfigsResource(
            resource_type=rtype, resource_name=name,
            configs=[IncrementalAlterConfigsRequest.AlterableConfig(
                name=k, config_operation=op, value=v) for k, op, v in ops])
        for rtype, name, ops in resources])
    with wire.connect(bootstrap) as sock:
        response = wire.call(sock, 44, version, body)
    return [(r.error_code, r.error_message) for r in response.responses]


def values(result) -> dict[str, tuple[str | None, int]]:
    assert result.error_code == E.NONE, result
    return {c.name: (c.value, c.config_source) for c in result.configs}


# ---- DescribeConfigs ---------------------------------------------------------------------

def test_describe_topic_defaults_and_overrides(serve: ServeProcess) -> None:
    topic = _name("dc")
    create(serve.bootstrap, topic, {"retention.ms": "12345", "cleanup.policy": "compact"})
    result = describe(serve.bootstrap, TOPIC, topic)
    got = values(result)
    assert got["retention.ms"] == ("12345", DYNAMIC_TOPIC)
    assert got["cleanup.policy"] == ("compact", DYNAMIC_TOPIC)
    assert got["segment.bytes"] == ("1073741824", DEFAULT)
    entry = next(c for c in result.configs if c.name == "retention.ms")
    assert not entry.read_only and not entry.is_sensitive
    assert entry.synonyms[0].name == "retention.ms" and entry.synonyms[0].source == DYNAMIC_TOPIC
    assert [s.name for s in entry.synonyms[1:]] == ["log.retention.hours"]  # the static default
    assert entry.config_type == 5  # LONG
    assert entry.documentation is None  # not asked for


def test_describe_filters_names_and_versions(serve: ServeProcess) -> None:
    topic = _name("dcv")
    create(serve.bootstrap, topic, {"retention.ms": "1000"})
    for version in range(5):
        result = describe(serve.bootstrap, TOPIC, topic, ["retention.ms", "segment.ms", "nope"],
                          version=version, docs=True)
        by_name = {c.name: c for c in result.configs}
        assert sorted(by_name) == ["retention.ms", "segment.ms"], version
        assert by_name["retention.ms"].value == "1000"
        if version == 0:
            assert by_name["segment.ms"].is_default and not by_name["retention.ms"].is_default
        else:
            assert by_name["retention.ms"].config_source == DYNAMIC_TOPIC
            assert by_name["retention.ms"].synonyms  # include_synonyms=True
        if version >= 3:
            assert by_name["segment.ms"].documentation
            assert by_name["segment.ms"].config_type == 5
    assert describe(serve.bootstrap, TOPIC, topic, [], version=4).configs == []


def test_describe_broker_resources(serve: ServeProcess) -> None:
    node = describe(serve.bootstrap, BROKER, "1", docs=True)
    by_name = {c.name: c for c in node.configs}
    assert by_name["listeners"].read_only
    assert by_name["listeners"].config_source == STATIC
    assert by_name["log.retention.ms"].read_only is False
    assert by_name["num.partitions"].value == "1"
    assert by_name["num.partitions"].documentation
    cluster_default = describe(serve.bootstrap, BROKER, "")
    assert cluster_default.error_code == E.NONE
    assert all(c.config_source == DYNAMIC_DEFAULT for c in cluster_default.configs)


@pytest.mark.parametrize(("rtype", "name", "error"), [
    (TOPIC, "no-such-topic-here", E.UNKNOWN_TOPIC_OR_PARTITION),
    (TOPIC, "bad/name", E.INVALID_TOPIC_EXCEPTION),
    (TOPIC, "", E.INVALID_TOPIC_EXCEPTION),
    (BROKER, "7", E.INVALID_REQUEST),
    (BROKER, "one", E.INVALID_REQUEST),
    (BROKER, " 1", E.INVALID_REQUEST),
    (BROKER, "1" * 30, E.INVALID_REQUEST),
    (8, "1", E.INVALID_REQUEST),  # BROKER_LOGGER: not supported
    (99, "x", E.INVALID_REQUEST),
])
def test_describe_refusals(serve: ServeProcess, rtype: int, name: str, error: ErrorCode) -> None:
    result = describe(serve.bootstrap, rtype, name)
    assert result.error_code == error
    assert result.configs == []
    assert result.resource_type == rtype and result.resource_name == name


def test_confluent_describe_configs(serve: ServeProcess) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

    topic = _name("ckd")
    create(serve.bootstrap, topic, {"max.message.bytes": "20000"})
    admin = AdminClient({"bootstrap.servers": serve.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT_S)
    assert configs["max.message.bytes"].value == "20000"
    assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["compression.type"].value == "producer"
    broker = ConfigResource(ConfigResource.Type.BROKER, "1")
    broker_configs = admin.describe_configs([broker])[broker].result(TIMEOUT_S)
    assert broker_configs["log.dirs"].value == str(serve.data_dir / "logs")


# ---- AlterConfigs / IncrementalAlterConfigs: topics ----------------------------------------

def test_confluent_incremental_alter_topic(serve: ServeProcess) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    topic = _name("ckia")
    create(serve.bootstrap, topic, {"retention.ms": "5000"})
    admin = AdminClient({"bootstrap.servers": serve.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)
    got = values(describe(serve.bootstrap, TOPIC, topic))
    assert got["segment.ms"] == ("60000", DYNAMIC_TOPIC)
    assert got["retention.ms"] == ("5000", DYNAMIC_TOPIC)  # untouched override kept
    assert got["cleanup.policy"] == ("delete,compact", DYNAMIC_TOPIC)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
    ])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)
    got = values(describe(serve.bootstrap, TOPIC, topic))
    assert got["retention.ms"] == ("604800000", DEFAULT)  # log.retention.hours default
    assert got["cleanup.policy"] == ("compact", DYNAMIC_TOPIC)


def test_kafka_python_alter_configs(serve: ServeProcess) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = _name("kpa")
    create(serve.bootstrap, topic, {"retention.ms": "5000"})
    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap)
    try:
        for incremental_api in (False, True):
            value = "10" if incremental_api else "20"
            result = admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic,
                                configs={"flush.messages": value})],
                incremental=incremental_api)
            assert result == {"topic": {topic: "OK"}}
            described = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="modified")
            modified = described["topic"][topic]
            # legacy AlterConfigs: the client re-sends the other overrides it read first
            assert set(modified) == {"flush.messages", "retention.ms"}
            assert modified["flush.messages"]["value"] == value
    finally:
        admin.close()


def test_legacy_alter_replaces_the_override_set(serve: ServeProcess) -> None:
    topic = _name("rep")
    create(serve.bootstrap, topic, {"retention.ms": "5000", "segment.ms": "70000"})
    assert alter(serve.bootstrap, [(TOPIC, topic, {"flush.messages": "10"})]) == [(E.NONE, None)]
    got = values(describe(serve.bootstrap, TOPIC, topic))
    assert got["flush.messages"] == ("10", DYNAMIC_TOPIC)
    assert got["retention.ms"][1] == DEFAULT and got["segment.ms"][1] == DEFAULT


def test_validate_only_changes_nothing(serve: ServeProcess) -> None:
    topic = _name("vo")
    create(serve.bootstrap, topic)
    assert alter(serve.bootstrap, [(TOPIC, topic, {"retention.ms": "1"})],
                 validate_only=True) == [(E.NONE, None)]
    assert incremental(serve.bootstrap, [(TOPIC, topic, [("retention.ms", SET, "1")])],
                       validate_only=True) == [(E.NONE, None)]
    assert incremental(serve.bootstrap, [(BROKER, "", [("log.retention.ms", SET, "1")])],
                       validate_only=True) == [(E.NONE, None)]
    assert values(describe(serve.bootstrap, TOPIC, topic))["retention.ms"][1] == DEFAULT


def test_alter_versions(serve: ServeProcess) -> None:
    topic = _name("av")
    create(serve.bootstrap, topic)
    for version in range(3):
        value = str(1000 + version)
        assert alter(serve.bootstrap, [(TOPIC, topic, {"retention.ms": value})],
                     version=version) == [(E.NONE, None)]
        assert values(describe(serve.bootstrap, TOPIC, topic))["retention.ms"][0] == value
    for version in range(2):
        value = str(2000 + version)
        assert incremental(serve.bootstrap, [(TOPIC, topic, [("retention.ms", SET, value)])],
                           version=version) == [(E.NONE, None)]
        assert values(describe(serve.bootstrap, TOPIC, topic))["retention.ms"][0] == value


def test_alter_refusals(serve: ServeProcess) -> None:
    topic = _name("ar")
    create(serve.bootstrap, topic)
    boot = serve.bootstrap
    cases: list[tuple[int, str, dict[str, str | None], ErrorCode]] = [
        (TOPIC, "missing-" + topic, {"retention.ms": "1"}, E.UNKNOWN_TOPIC_OR_PARTITION),
        (TOPIC, "bad name", {"retention.ms": "1"}, E.INVALID_TOPIC_EXCEPTION),
        (TOPIC, "", {"retention.ms": "1"}, E.INVALID_REQUEST),
        (TOPIC, topic, {"retention.ms": "soon"}, E.INVALID_CONFIG),
        (TOPIC, topic, {"retention.ms": "-5"}, E.INVALID_CONFIG),
        (TOPIC, topic, {"no.such.config": "1"}, E.INVALID_CONFIG),
        (TOPIC, topic, {"cleanup.policy": "shred"}, E.INVALID_CONFIG),
        (TOPIC, topic, {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
         E.INVALID_CONFIG),
        (TOPIC, topic, {"retention.ms": None}, E.INVALID_REQUEST),
        (BROKER, "1", {"listeners": "PLAINTEXT://:1"}, E.INVALID_REQUEST),  # not dynamic
        (BROKER, "", {"log.retention.ms": "x"}, E.INVALID_REQUEST),
        (BROKER, "1", {"no.such.broker.config": "1"}, E.INVALID_REQUEST),
        (BROKER, "2", {"log.retention.ms": "1"}, E.INVALID_REQUEST),
        (BROKER, "abc", {"log.retention.ms": "1"}, E.INVALID_REQUEST),
        (8, "1", {"root": "DEBUG"}, E.INVALID_REQUEST),
        (-1, "x", {}, E.INVALID_REQUEST),
    ]
    for rtype, name, configs, error in cases:
        [(code, message)] = alter(boot, [(rtype, name, configs)])
        assert code == error, (rtype, name, configs, code, message)
        assert message
    assert values(describe(boot, TOPIC, topic))["retention.ms"][1] == DEFAULT
    # a resource twice: both refused; a key twice in one resource: refused
    twice = alter(boot, [(TOPIC, topic, {"retention.ms": "1"}), (TOPIC, topic, {})])
    assert [code for code, _ in twice] == [E.INVALID_REQUEST, E.INVALID_REQUEST]
    body = AlterConfigsRequest(resources=[AlterConfigsRequest.AlterConfigsResource(
        resource_type=TOPIC, resource_name=topic, configs=[
            AlterConfigsRequest.AlterableConfig(name="retention.ms", value="1"),
            AlterConfigsRequest.AlterableConfig(name="retention.ms", value="2")])])
    with wire.connect(boot) as sock:
        assert wire.call(sock, 33, 2, body).responses[0].error_code == E.INVALID_REQUEST
    # one bad resource does not spoil the others
    mixed = alter(boot, [(TOPIC, topic, {"segment.ms": "99999"}),
                         (TOPIC, "missing-" + topic, {"segment.ms": "1"})])
    assert [code for code, _ in mixed] == [E.NONE, E.UNKNOWN_TOPIC_OR_PARTITION]


def test_incremental_refusals(serve: ServeProcess) -> None:
    topic = _name("ir")
    create(serve.bootstrap, topic)
    boot = serve.bootstrap
    cases: list[tuple[int, str, list[tuple[str, int, str | None]], ErrorCode]] = [
        (TOPIC, "missing-" + topic, [("retention.ms", SET, "1")], E.UNKNOWN_TOPIC_OR_PARTITION),
        (TOPIC, topic, [("retention.ms", APPEND, "1")], E.INVALID_CONFIG),  # not a list
        (TOPIC, topic, [("retention.ms", SUBTRACT, "1")], E.INVALID_CONFIG),
        (TOPIC, topic, [("retention.ms", 7, "1")], E.INVALID_REQUEST),  # unknown operation
        (TOPIC, topic, [("retention.ms", SET, None)], E.INVALID_REQUEST),
        (TOPIC, topic, [("nope", SET, "1")], E.INVALID_CONFIG),
        (TOPIC, topic, [("nope", DELETE, None)], E.INVALID_CONFIG),
        (TOPIC, topic, [("cleanup.policy", APPEND, "shred")], E.INVALID_CONFIG),
        (TOPIC, topic, [("segment.ms", SET, "1"), ("segment.ms", DELETE, None)],
         E.INVALID_REQUEST),
        (BROKER, "1", [("num.partitions", SET, "3")], E.INVALID_REQUEST),  # not dynamic
        (BROKER, "1", [("log.segment.bytes", SET, "1")], E.INVALID_REQUEST),  # below minimum
        (BROKER, "9", [("log.retention.ms", SET, "1")], E.INVALID_REQUEST),
        (5, "x", [("a", SET, "b")], E.INVALID_REQUEST),
    ]
    for rtype, name, ops, error in cases:
        [(code, message)] = incremental(boot, [(rtype, name, ops)])
        assert code == error, (rtype, name, ops, code, message)
    # DELETE of an absent override is fine
    assert incremental(boot, [(TOPIC, topic, [("retention.ms", DELETE, None)])]) == [
        (E.NONE, None)]
    assert values(describe(boot, TOPIC, topic))["segment.ms"][1] == DEFAULT


def _produce(bootstrap: str, topic: str, count: int, size: int) -> None:
    with wire.connect(bootstrap) as sock:
        for i in range(count):
            builder = BatchBuilder()
            builder.append(1_700_000_000_000 + i, b"k", b"v" * size)
            response = wire.call(sock, 0, 9, ProduceRequest(acks=-1, timeout_ms=1000, topic_data=[
                ProduceRequest.TopicProduceData(name=topic, partition_data=[
                    ProduceRequest.PartitionProduceData(index=0, records=builder.build())])]))
            assert response.responses[0].partition_responses[0].error_code == E.NONE


def _segment_files(serve: ServeProcess, topic: str) -> list[str]:
    return sorted(f for f in os.listdir(serve.data_dir / "logs" / f"{topic}-0")
                  if f.endswith(".log"))


def test_new_topic_config_reaches_the_open_log(serve: ServeProcess) -> None:
    topic = _name("seg")
    create(serve.bootstrap, topic)
    _produce(serve.bootstrap, topic, 3, 600)
    assert len(_segment_files(serve, topic)) == 1
    assert alter(serve.bootstrap, [(TOPIC, topic, {"segment.bytes": "1024"})]) == [(E.NONE, None)]
    _produce(serve.bootstrap, topic, 4, 600)
    assert len(_segment_files(serve, topic)) >= 3  # rolled by the new segment.bytes


def test_new_broker_default_reaches_open_logs(serve: ServeProcess) -> None:
    topic = _name("bseg")
    create(serve.bootstrap, topic, {"min.compaction.lag.ms": "10"})
    _produce(serve.bootstrap, topic, 2, 600)
    assert len(_segment_files(serve, topic)) == 1
    # a default that would make an existing topic's config invalid is refused
    [(code, message)] = incremental(serve.bootstrap, [
        (BROKER, "", [("log.cleaner.max.compaction.lag.ms", SET, "5")])])
    assert code == E.INVALID_REQUEST and "min.compaction.lag.ms" in str(message)
    assert incremental(serve.bootstrap, [(BROKER, "", [("log.segment.bytes", SET, "1024")])]) == [
        (E.NONE, None)]
    try:
        _produce(serve.bootstrap, topic, 4, 600)
        assert len(_segment_files(serve, topic)) >= 3
    finally:
        assert incremental(serve.bootstrap, [
            (BROKER, "", [("log.segment.bytes", DELETE, None)])]) == [(E.NONE, None)]
    assert values(describe(serve.bootstrap, TOPIC, topic))["segment.bytes"][1] == DEFAULT


# ---- persistence and dynamic broker configs -----------------------------------------------

def test_configs_survive_restart(serve_factory, tmp_path: Path) -> None:
    broker = serve_factory().start()
    topic = _name("persist")
    create(broker.bootstrap, topic)
    assert incremental(broker.bootstrap, [
        (TOPIC, topic, [("retention.ms", SET, "4242")]),
        (BROKER, "", [("log.retention.ms", SET, "3600000")]),
        (BROKER, "1", [("log.segment.bytes", SET, "2097152")]),
    ]) == [(E.NONE, None)] * 3
    got = values(describe(broker.bootstrap, TOPIC, topic))
    assert got["segment.bytes"] == ("2097152", DYNAMIC_BROKER)
    other = _name("other")
    create(broker.bootstrap, other)
    assert values(describe(broker.bootstrap, TOPIC, other))["retention.ms"] == (
        "3600000", DYNAMIC_DEFAULT)
    assert broker.stop() == 0
    broker.start()
    got = values(describe(broker.bootstrap, TOPIC, topic))
    assert got["retention.ms"] == ("4242", DYNAMIC_TOPIC)
    assert got["segment.bytes"] == ("2097152", DYNAMIC_BROKER)
    assert values(describe(broker.bootstrap, TOPIC, other))["retention.ms"] == (
        "3600000", DYNAMIC_DEFAULT)
    node = {c.name: c for c in describe(broker.bootstrap, BROKER, "1").configs}
    assert node["log.segment.bytes"].config_source == DYNAMIC_BROKER
    assert [s.source for s in node["log.retention.ms"].synonyms][:1] == [DYNAMIC_DEFAULT]
    cluster = {c.name: c.value for c in describe(broker.bootstrap, BROKER, "").configs}
    assert cluster == {"log.retention.ms": "3600000"}
    # legacy AlterConfigs replaces the whole cluster-default layer
    assert alter(broker.bootstrap, [(BROKER, "", {})]) == [(E.NONE, None)]
    assert describe(broker.bootstrap, BROKER, "").configs == []
    assert values(describe(broker.bootstrap, TOPIC, other))["retention.ms"][1] == DEFAULT
    assert broker.stop() == 0
