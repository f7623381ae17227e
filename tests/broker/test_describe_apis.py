"""DescribeCluster / DescribeLogDirs / DescribeTopicPartitions against a real `josef serve`."""

from __future__ import annotations

import uuid

import pytest

from josef.protocol._generated.create_topics import CreateTopicsRequest
from josef.protocol._generated.describe_cluster import DescribeClusterRequest
from josef.protocol._generated.describe_log_dirs import DescribeLogDirsRequest
from josef.protocol._generated.describe_topic_partitions import DescribeTopicPartitionsRequest
from josef.protocol._generated.produce import ProduceRequest
from josef.protocol.errors import ErrorCode
from josef.records.builder import BatchBuilder
from tests.broker import wire
from tests.broker.conftest import ServeProcess

E = ErrorCode
NOT_REQUESTED = -(2**31)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(bootstrap: str, name: str, partitions: int = 1) -> None:
    with wire.connect(bootstrap) as sock:
        response = wire.call(sock, 19, 7, CreateTopicsRequest(topics=[
            CreateTopicsRequest.CreatableTopic(name=name, num_partitions=partitions,
                                               replication_factor=1)], timeout_ms=1000))
    assert response.topics[0].error_code == E.NONE


def call(bootstrap: str, api_key: int, version: int, body):
    with wire.connect(bootstrap) as sock:
        return wire.call(sock, api_key, version, body)


# ---- DescribeCluster -----------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, 1])
def test_describe_cluster(serve: ServeProcess, version: int) -> None:
    response = call(serve.bootstrap, 60, version,
                    DescribeClusterRequest(include_cluster_authorized_operations=True))
    assert response.error_code == E.NONE
    assert response.controller_id == 1
    assert [(b.broker_id, b.host, b.port) for b in response.brokers] == [
        (1, "127.0.0.1", serve.port)]
    assert len(response.cluster_id) == 22
    assert response.cluster_authorized_operations not in (0, NOT_REQUESTED)
    plain = call(serve.bootstrap, 60, version, DescribeClusterRequest())
    assert plain.cluster_authorized_operations == NOT_REQUESTED


@pytest.mark.parametrize(("endpoint_type", "error"), [
    (2, E.MISMATCHED_ENDPOINT_TYPE), (0, E.UNSUPPORTED_ENDPOINT_TYPE),
    (9, E.UNSUPPORTED_ENDPOINT_TYPE)])
def test_describe_cluster_endpoint_types(serve: ServeProcess, endpoint_type: int,
                                         error: ErrorCode) -> None:
    response = call(serve.bootstrap, 60, 1, DescribeClusterRequest(endpoint_type=endpoint_type))
    assert response.error_code == error and response.error_message
    assert response.brokers == []


def test_clients_describe_cluster(serve: ServeProcess) -> None:
    from confluent_kafka.admin import AdminClient
    from kafka.admin import KafkaAdminClient

    client = AdminClient({"bootstrap.servers": serve.bootstrap})
    described = client.describe_cluster(include_authorized_operations=True).result(20)
    assert [node.id for node in described.nodes] == [1]
    assert described.controller.id == 1
    assert described.authorized_operations
    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert cluster["cluster_id"] == described.cluster_id
    assert [b["broker_id"] for b in cluster["brokers"]] == [1]


# ---- DescribeLogDirs -----------------------------------------------------------------------

def _produce(bootstrap: str, topic: str, partition: int, size: int) -> None:
    builder = BatchBuilder()
    builder.append(1_700_000_000_000, b"k", b"v" * size)
    response = call(bootstrap, 0, 9, ProduceRequest(acks=-1, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=partition, records=builder.build())])]))
    assert response.responses[0].partition_responses[0].error_code == E.NONE


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_log_dirs(serve: ServeProcess, version: int) -> None:
    topic = _name("ld")
    create(serve.bootstrap, topic, partitions=2)
    _produce(serve.bootstrap, topic, 1, 1000)
    wanted = DescribeLogDirsRequest(topics=[
        DescribeLogDirsRequest.DescribableLogDirTopic(topic=topic, partitions=[0, 1, 5]),
        DescribeLogDirsRequest.DescribableLogDirTopic(topic="missing-" + topic, partitions=[0]),
    ])
    response = call(serve.bootstrap, 35, version, wanted)
    assert response.error_code == E.NONE
    [result] = response.results
    assert result.error_code == E.NONE
    assert result.log_dir == str((serve.data_dir / "logs").resolve())
    [described] = result.topics
    assert described.name == topic
    sizes = {p.partition_index: p.partition_size for p in described.partitions}
    assert sorted(sizes) == [0, 1]
    assert sizes[0] == 0 and sizes[1] > 1000
    assert all(p.offset_lag == 0 and not p.is_future_key for p in described.partitions)
    if version >= 4:
        assert result.total_bytes > 0 and 0 <= result.usable_bytes <= result.total_bytes
    everything = call(serve.bootstrap, 35, version, DescribeLogDirsRequest(topics=None))
    names = {t.name for t in everything.results[0].topics}
    assert topic in names
    nothing = call(serve.bootstrap, 35, version, DescribeLogDirsRequest(topics=[]))
    assert nothing.results[0].topics == []


def test_kafka_python_describe_log_dirs(serve: ServeProcess) -> None:
    from kafka.admin import KafkaAdminClient

    topic = _name("kld")
    create(serve.bootstrap, topic)
    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap)
    try:
        described = admin.describe_log_dirs({topic: [0]})
    finally:
        admin.close()
    assert topic in repr(described)


def test_describe_log_dirs_two_dirs(serve_factory) -> None:
    broker = serve_factory()
    dirs = [broker.data_dir / "a", broker.data_dir / "b"]
    broker.overrides["log.dirs"] = ",".join(str(d) for d in dirs)
    broker.start()
    create(broker.bootstrap, "spread", partitions=4)
    response = call(broker.bootstrap, 35, 4, DescribeLogDirsRequest(topics=None))
    assert [r.log_dir for r in response.results] == [str(d.resolve()) for d in dirs]
    counts = [sum(len(t.partitions) for t in r.topics) for r in response.results]
    assert counts == [2, 2]  # placed in the log dir holding the fewest partitions
    assert broker.stop() == 0


# ---- DescribeTopicPartitions ---------------------------------------------------------------

def dtp(bootstrap: str, topics: list[str], limit: int = 2000,
        cursor: tuple[str, int] | None = None):
    return call(bootstrap, 75, 0, DescribeTopicPartitionsRequest(
        topics=[DescribeTopicPartitionsRequest.TopicRequest(name=t) for t in topics],
        response_partition_limit=limit,
        cursor=None if cursor is None else DescribeTopicPartitionsRequest.Cursor(
            topic_name=cursor[0], partition_index=cursor[1])))


def test_describe_topic_partitions(serve: ServeProcess) -> None:
    a, b = _name("dtpa"), _name("dtpb")
    create(serve.bootstrap, a, partitions=3)
    create(serve.bootstrap, b, partitions=2)
    response = dtp(serve.bootstrap, [b, a, a, "missing-x", "bad/name"])
    by_name = {t.name: t for t in response.topics}
    assert [t.name for t in response.topics] == sorted(by_name)
    assert by_name["missing-x"].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    assert by_name["bad/name"].error_code == E.INVALID_TOPIC_EXCEPTION
    topic = by_name[a]
    assert topic.error_code == E.NONE and not topic.is_internal
    assert [p.partition_index for p in topic.partitions] == [0, 1, 2]
    partition = topic.partitions[0]
    assert (partition.leader_id, partition.replica_nodes, partition.isr_nodes) == (1, [1], [1])
    assert partition.leader_epoch == 0 and partition.eligible_leader_replicas == []
    assert response.next_cursor is None


def test_describe_topic_partitions_pagination(serve: ServeProcess) -> None:
    a, b = _name("pga"), _name("pgb")
    create(serve.bootstrap, a, partitions=3)
    create(serve.bootstrap, b, partitions=2)
    first = dtp(serve.bootstrap, [a, b], limit=2)
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in first.topics] == [
        (a, [0, 1])]
    assert (first.next_cursor.topic_name, first.next_cursor.partition_index) == (a, 2)
    second = dtp(serve.bootstrap, [a, b], limit=2, cursor=(a, 2))
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in second.topics] == [
        (a, [2]), (b, [0])]
    assert (second.next_cursor.topic_name, second.next_cursor.partition_index) == (b, 1)
    exact = dtp(serve.bootstrap, [a, b], limit=3)  # limit met exactly at a topic boundary
    assert [t.name for t in exact.topics] == [a]
    assert (exact.next_cursor.topic_name, exact.next_cursor.partition_index) == (b, 0)
    last = dtp(serve.bootstrap, [a, b], limit=0, cursor=(b, 1))  # limit below 1 means 1
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in last.topics] == [
        (b, [1])]
    assert last.next_cursor is None
    listed = dtp(serve.bootstrap, [], cursor=(a, 1))
    assert listed.topics[0].name == a
    assert [p.partition_index for p in listed.topics[0].partitions] == [1, 2]


@pytest.mark.parametrize("cursor", [("not-listed", 0), ("", -1)])
def test_describe_topic_partitions_bad_cursor(serve: ServeProcess,
                                              cursor: tuple[str, int]) -> None:
    topic = _name("bc")
    create(serve.bootstrap, topic)
    names = [topic, ""] if cursor[0] == "" else [topic]
    response = dtp(serve.bootstrap, names, cursor=cursor)
    assert [t.error_code for t in response.topics] == [E.INVALID_REQUEST] * len(names)


def test_kafka_python_describe_topic_partitions(serve: ServeProcess) -> None:
    from kafka.admin import KafkaAdminClient

    topic = _name("kdtp")
    create(serve.bootstrap, topic, partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap)
    try:
        described = admin.describe_topic_partitions([topic], response_partition_limit=2)
    finally:
        admin.close()
    assert described["topics"][0]["name"] == topic
    assert described["next_cursor"]["partition_index"] == 2
