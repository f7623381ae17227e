"""DeleteTopics, CreatePartitions, DeleteRecords, OffsetForLeaderEpoch, InitProducerId and
FindCoordinator against `josef serve`: raw requests for every version and every invalid input,
then real admin clients and idempotent producers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from josef.protocol import primitives as _p
from josef.protocol._generated.create_partitions import CreatePartitionsRequest
from josef.protocol._generated.delete_records import DeleteRecordsRequest
from josef.protocol._generated.delete_topics import DeleteTopicsRequest
from josef.protocol._generated.find_coordinator import FindCoordinatorRequest
from josef.protocol._generated.init_producer_id import InitProducerIdRequest
from josef.protocol._generated.list_offsets import ListOffsetsRequest
from josef.protocol._generated.metadata import MetadataRequest
from josef.protocol._generated.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from josef.protocol.errors import ErrorCode
from josef.records.builder import BatchBuilder
from tests.broker import wire
from tests.broker.conftest import ServeProcess
from tests.broker.test_data_plane import batch, create, fetch_request, produce, values

E = ErrorCode
TIMEOUT_S = 20


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sock(serve: ServeProcess):
    with wire.connect(serve.bootstrap) as s:
        yield s


@pytest.fixture
def topic(sock) -> str:
    name = _name()
    assert create(sock, name, partitions=2).error_code == E.NONE
    return name


def delete_topics(sock, names: list[str], version: int = 6):
    if version >= 6:
        request = DeleteTopicsRequest(
            topics=[DeleteTopicsRequest.DeleteTopicState(name=n) for n in names], timeout_ms=1000)
    else:
        request = DeleteTopicsRequest(topic_names=names, timeout_ms=1000)
    return wire.call(sock, 20, version, request).responses


def delete_by_id(sock, states: list[tuple[str | None, uuid.UUID]]):
    request = DeleteTopicsRequest(
        topics=[DeleteTopicsRequest.DeleteTopicState(name=n, topic_id=i) for n, i in states],
        timeout_ms=1000)
    return wire.call(sock, 20, 6, request).responses


def metadata(sock, name: str):
    request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)],
                              allow_auto_topic_creation=False)
    return wire.call(sock, 3, 12, request).topics[0]


def create_partitions(sock, name: str, count: int, *, assignments=None,
                      validate_only: bool = False, version: int = 3):
    request = CreatePartitionsRequest(
        topics=[CreatePartitionsRequest.CreatePartitionsTopic(
            name=name, count=count,
            assignments=None if assignments is None else [
                CreatePartitionsRequest.CreatePartitionsAssignment(broker_ids=a)
                for a in assignments])],
        timeout_ms=1000, validate_only=validate_only)
    return wire.call(sock, 37, version, request).results


def delete_records(sock, name: str, offsets: dict[int, int], version: int = 2):
    request = DeleteRecordsRequest(
        topics=[DeleteRecordsRequest.DeleteRecordsTopic(name=name, partitions=[
            DeleteRecordsRequest.DeleteRecordsPartition(partition_index=p, offset=o)
            for p, o in offsets.items()])],
        timeout_ms=1000)
    return wire.call(sock, 21, version, request).topics[0].partitions


def epoch_end(sock, name: str, leader_epoch: int, current: int = -1, partition: int = 0,
              version: int = 4):
    request = OffsetForLeaderEpochRequest(replica_id=-1, topics=[
        OffsetForLeaderEpochRequest.OffsetForLeaderTopic(topic=name, partitions=[
            OffsetForLeaderEpochRequest.OffsetForLeaderPartition(
                partition=partition, current_leader_epoch=current, leader_epoch=leader_epoch)])])
    return wire.call(sock, 23, version, request).topics[0].partitions[0]


def init_producer_id(sock, version: int = 5, transactional_id: str | None = None,
                     timeout_ms: int = 60_000, producer_id: int = -1, producer_epoch: int = -1):
    request = InitProducerIdRequest(
        transactional_id=transactional_id, transaction_timeout_ms=timeout_ms,
        producer_id=producer_id, producer_epoch=producer_epoch)
    return wire.call(sock, 22, version, request)


def earliest(sock, name: str, partition: int = 0) -> int:
    request = ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=name, partitions=[
            ListOffsetsRequest.ListOffsetsPartition(partition_index=partition, timestamp=-2)])])
    return wire.call(sock, 2, 7, request).topics[0].partitions[0].offset


# ---- DeleteTopics --------------------------------------------------------------------------
@pytest.mark.parametrize("version", range(1, 7))
def test_delete_topics_every_version(serve: ServeProcess, sock, version: int) -> None:
    name = _name()
    assert create(sock, name, partitions=3).error_code == E.NONE
    assert produce(sock, name, batch(b"a", b"b"), partition=2).error_code == E.NONE
    topic_id = metadata(sock, name).topic_id
    [result] = delete_topics(sock, [name], version)
    assert (result.name, result.error_code) == (name, E.NONE)
    if version >= 6:
        assert result.topic_id == topic_id
    assert metadata(sock, name).error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    log_dir = serve.data_dir / "logs"
    assert not [p for p in log_dir.iterdir() if p.name.startswith(f"{name}-")]
    [again] = delete_topics(sock, [name], version)
    assert again.error_code == E.UNKNOWN_TOPIC_OR_PARTITION


def test_delete_topics_invalid_input(sock, topic: str) -> None:
    results = delete_topics(sock, [topic, topic, "no-such-topic", "bad name!", ""], 5)
    assert [(r.name, r.error_code) for r in results] == [
        (topic, E.INVALID_REQUEST), (topic, E.INVALID_REQUEST),
        ("no-such-topic", E.UNKNOWN_TOPIC_OR_PARTITION),
        ("bad name!", E.UNKNOWN_TOPIC_OR_PARTITION), ("", E.UNKNOWN_TOPIC_OR_PARTITION)]
    assert results[0].error_message == "Duplicate topic name."
    assert metadata(sock, topic).error_code == E.NONE  # a duplicate deletes nothing


def test_delete_topics_by_id(sock, topic: str) -> None:
    topic_id = metadata(sock, topic).topic_id
    unknown = uuid.uuid4()
    results = delete_by_id(sock, [
        (topic, topic_id),  # both: INVALID_REQUEST
        (None, _p.ZERO_UUID),  # neither: INVALID_REQUEST
        (None, unknown), (None, unknown),  # duplicate id
        (None, uuid.uuid4()),  # unknown id
    ])
    assert [r.error_code for r in results] == [
        E.INVALID_REQUEST, E.INVALID_REQUEST, E.INVALID_REQUEST, E.INVALID_REQUEST,
        E.UNKNOWN_TOPIC_ID]
    assert results[4].name is None
    [result] = delete_by_id(sock, [(None, topic_id)])
    assert (result.name, result.topic_id, result.error_code) == (topic, topic_id, E.NONE)
    assert metadata(sock, topic).error_code == E.UNKNOWN_TOPIC_OR_PARTITION


def test_recreated_topic_starts_empty_with_a_new_id(sock) -> None:
    name = _name()
    assert create(sock, name).error_code == E.NONE
    old_id = metadata(sock, name).topic_id
    assert produce(sock, name, batch(b"old-1", b"old-2")).error_code == E.NONE
    assert delete_topics(sock, [name])[0].error_code == E.NONE
    assert create(sock, name).error_code == E.NONE
    assert metadata(sock, name).topic_id != old_id
    response = produce(sock, name, batch(b"new"))
    assert (response.error_code, response.base_offset) == (E.NONE, 0)
    data = wire.call(sock, 1, 12, fetch_request(name, 0)).responses[0].partitions[0]
    assert values(data.records) == [b"new"]


def test_delete_disabled_and_deletion_survives_restart(serve_factory) -> None:
    proc = serve_factory({"delete.topic.enable": "false"}).start()
    name = _name()
    with wire.connect(proc.bootstrap) as s:
        assert create(s, name).error_code == E.NONE
        assert delete_topics(s, [name], 3)[0].error_code == E.TOPIC_DELETION_DISABLED
        assert delete_topics(s, [name], 1)[0].error_code == E.INVALID_REQUEST
        assert metadata(s, name).error_code == E.NONE
    assert proc.stop() == 0
    proc.overrides["delete.topic.enable"] = "true"
    proc.start()
    with wire.connect(proc.bootstrap) as s:
        assert delete_topics(s, [name])[0].error_code == E.NONE
    proc.kill()  # no clean shutdown: the topic table must already say it is gone
    proc.start()
    with wire.connect(proc.bootstrap) as s:
        assert metadata(s, name).error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    proc.stop()


# ---- CreatePartitions ----------------------------------------------------------------------
@pytest.mark.parametrize("version", range(0, 4))
def test_create_partitions_every_version(sock, topic: str, version: int) -> None:
    [result] = create_partitions(sock, topic, 5, validate_only=True, version=version)
    assert result.error_code == E.NONE
    assert len(metadata(sock, topic).partitions) == 2
    [result] = create_partitions(sock, topic, 4, version=version)
    assert (result.name, result.error_code) == (topic, E.NONE)
    assert [p.partition_index for p in metadata(sock, topic).partitions] == [0, 1, 2, 3]
    response = produce(sock, topic, batch(b"in-new-partition"), partition=3)
    assert (response.error_code, response.base_offset) == (E.NONE, 0)


def test_create_partitions_invalid_input(sock, topic: str) -> None:
    def code(name: str, count: int, **kwargs) -> tuple[int, str | None]:
        [result] = create_partitions(sock, name, count, **kwargs)
        return result.error_code, result.error_message

    assert code(topic, 2) == (E.INVALID_PARTITIONS, "Topic already has 2 partition(s).")
    assert code(topic, 1)[0] == E.INVALID_PARTITIONS
    assert code(topic, -3)[0] == E.INVALID_PARTITIONS
    assert code(topic, 1_000_000)[0] == E.INVALID_PARTITIONS
    assert code("no-such-topic", 3)[0] == E.UNKNOWN_TOPIC_OR_PARTITION
    assert code(topic, 4, assignments=[[1]])[0] == E.INVALID_REPLICA_ASSIGNMENT
    assert code(topic, 3, assignments=[[1, 1]])[0] == E.INVALID_REPLICA_ASSIGNMENT
    assert code(topic, 3, assignments=[[12345]])[0] == E.INVALID_REPLICA_ASSIGNMENT
    assert code(topic, 3, assignments=[[]])[0] == E.INVALID_REPLICA_ASSIGNMENT
    request = CreatePartitionsRequest(topics=[
        CreatePartitionsRequest.CreatePartitionsTopic(name=topic, count=3, assignments=None),
        CreatePartitionsRequest.CreatePartitionsTopic(name=topic, count=4, assignments=None)],
        timeout_ms=1000, validate_only=False)
    results = wire.call(sock, 37, 3, request).results
    assert [r.error_code for r in results] == [E.INVALID_REQUEST, E.INVALID_REQUEST]
    assert len(metadata(sock, topic).partitions) == 2  # nothing above changed the topic
    node_id = metadata_node(sock)
    assert code(topic, 3, assignments=[[node_id]]) == (E.NONE, None)
    assert len(metadata(sock, topic).partitions) == 3


def metadata_node(sock) -> int:
    return wire.call(sock, 3, 12, MetadataRequest(topics=[])).brokers[0].node_id


# ---- DeleteRecords -------------------------------------------------------------------------
@pytest.mark.parametrize("version", range(0, 3))
def test_delete_records(sock, topic: str, version: int) -> None:
    assert produce(sock, topic, batch(*[b"v%d" % i for i in range(10)])).error_code == E.NONE
    [result] = delete_records(sock, topic, {0: 4}, version)
    assert (result.partition_index, result.error_code, result.low_watermark) == (0, E.NONE, 4)
    assert earliest(sock, topic) == 4
    data = wire.call(sock, 1, 12, fetch_request(topic, 0)).responses[0].partitions[0]
    assert data.error_code == E.OFFSET_OUT_OF_RANGE
    data = wire.call(sock, 1, 12, fetch_request(topic, 4)).responses[0].partitions[0]
    assert (data.error_code, data.log_start_offset) == (E.NONE, 4)
    assert delete_records(sock, topic, {0: 2}, version)[0].low_watermark == 4  # no step back
    [result] = delete_records(sock, topic, {0: -1}, version)  # -1: up to the high watermark
    assert (result.error_code, result.low_watermark) == (E.NONE, 10)
    assert earliest(sock, topic) == 10


def test_delete_records_invalid_input(serve: ServeProcess, sock, topic: str) -> None:
    assert produce(sock, topic, batch(b"a", b"b", b"c")).error_code == E.NONE
    results = delete_records(sock, topic, {0: 4, 1: -2, 2: 0})
    assert [(r.partition_index, r.error_code, r.low_watermark) for r in results] == [
        (0, E.OFFSET_OUT_OF_RANGE, -1), (1, E.OFFSET_OUT_OF_RANGE, -1),
        (2, E.UNKNOWN_TOPIC_OR_PARTITION, -1)]
    assert earliest(sock, topic) == 0
    [result] = delete_records(sock, "no-such-topic", {0: 0})
    assert result.error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    compacted = _name("compacted")
    assert create(sock, compacted, configs={"cleanup.policy": "compact"}).error_code == E.NONE
    assert delete_records(sock, compacted, {0: 0})[0].error_code == E.POLICY_VIOLATION


# ---- OffsetForLeaderEpoch ------------------------------------------------------------------
@pytest.mark.parametrize("version", range(2, 5))
def test_offset_for_leader_epoch(sock, topic: str, version: int) -> None:
    empty = epoch_end(sock, topic, 0, version=version)
    assert (empty.error_code, empty.leader_epoch, empty.end_offset) == (E.NONE, 0, 0)
    assert produce(sock, topic, batch(b"a", b"b", b"c", b"d", b"e")).error_code == E.NONE
    got = epoch_end(sock, topic, 0, current=0, version=version)
    assert (got.error_code, got.partition, got.leader_epoch, got.end_offset) == (E.NONE, 0, 0, 5)
    for requested in (-1, 1, 7):
        got = epoch_end(sock, topic, requested, version=version)
        assert (got.error_code, got.leader_epoch, got.end_offset) == (E.NONE, -1, -1)
    got = epoch_end(sock, topic, 0, current=1, version=version)
    assert (got.error_code, got.end_offset) == (E.UNKNOWN_LEADER_EPOCH, -1)
    got = epoch_end(sock, topic, 0, current=-5, version=version)
    assert got.error_code == E.FENCED_LEADER_EPOCH
    assert epoch_end(sock, topic, 0, partition=2).error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    assert epoch_end(sock, "no-such-topic", 0).error_code == E.UNKNOWN_TOPIC_OR_PARTITION


# ---- InitProducerId ------------------------------------------------------------------------
@pytest.mark.parametrize("version", range(0, 6))
def test_init_producer_id_idempotent(sock, version: int) -> None:
    first = init_producer_id(sock, version)
    second = init_producer_id(sock, version)
    assert (first.error_code, first.producer_epoch) == (E.NONE, 0)
    assert second.producer_id != first.producer_id >= 0


def test_init_producer_id_invalid_input(sock) -> None:
    def answer(**kwargs) -> tuple[int, int, int]:
        response = init_producer_id(sock, **kwargs)
        return response.error_code, response.producer_id, response.producer_epoch

    assert answer(transactional_id="") == (E.INVALID_REQUEST, -1, -1)
    assert answer(transactional_id="txn", timeout_ms=0) == (E.INVALID_TRANSACTION_TIMEOUT, -1, -1)
    assert answer(transactional_id="txn", timeout_ms=10**9)[0] == E.INVALID_TRANSACTION_TIMEOUT
    assert answer(transactional_id="txn") == (E.NOT_COORDINATOR, -1, -1)
    assert answer(producer_id=5, producer_epoch=-1) == (E.INVALID_REQUEST, -1, -1)
    assert answer(producer_id=-1, producer_epoch=3) == (E.INVALID_REQUEST, -1, -1)
    code, producer_id, epoch = answer(producer_id=5, producer_epoch=3)
    assert (code, epoch) == (E.NONE, 0) and producer_id >= 0


def test_producer_ids_never_repeat_after_a_crash(serve_factory) -> None:
    proc = serve_factory().start()
    with wire.connect(proc.bootstrap) as s:
        before = {init_producer_id(s).producer_id for _ in range(5)}
    proc.kill()
    proc.start()
    with wire.connect(proc.bootstrap) as s:
        after = {init_producer_id(s).producer_id for _ in range(5)}
    proc.stop()
    assert len(before) == len(after) == 5 and not before & after


# ---- FindCoordinator -----------------------------------------------------------------------
@pytest.mark.parametrize("version", range(0, 7))
def test_find_coordinator(serve: ServeProcess, sock, version: int) -> None:
    node_id = metadata_node(sock)
    if version < 4:
        response = wire.call(sock, 10, version, FindCoordinatorRequest(key="group-1", key_type=0))
        assert (response.error_code, response.node_id, response.host, response.port) == (
            E.NONE, node_id, "127.0.0.1", serve.port)
        if version >= 1:
            assert response.error_message == "NONE"
            txn = wire.call(sock, 10, version, FindCoordinatorRequest(key="t", key_type=1))
            assert (txn.error_code, txn.node_id, txn.host, txn.port) == (
                E.COORDINATOR_NOT_AVAILABLE, -1, "", -1)
            bad = wire.call(sock, 10, version, FindCoordinatorRequest(key="g", key_type=9))
            assert bad.error_code == E.INVALID_REQUEST
        return
    response = wire.call(sock, 10, version, FindCoordinatorRequest(
        key_type=0, coordinator_keys=["group-a", "group-b"]))
    assert [(c.key, c.error_code, c.node_id, c.port) for c in response.coordinators] == [
        ("group-a", E.NONE, node_id, serve.port), ("group-b", E.NONE, node_id, serve.port)]
    txn = wire.call(sock, 10, version, FindCoordinatorRequest(
        key_type=1, coordinator_keys=["t1"])).coordinators
    assert [(c.key, c.error_code, c.node_id) for c in txn] == [
        ("t1", E.COORDINATOR_NOT_AVAILABLE, -1)]
    for key_type in (2, 9):
        bad = wire.call(sock, 10, version, FindCoordinatorRequest(
            key_type=key_type, coordinator_keys=["x"])).coordinators
        assert [c.error_code for c in bad] == [E.INVALID_REQUEST]


# ---- idempotent producers ------------------------------------------------------------------
def test_retried_idempotent_batch_is_acknowledged_with_its_original_offset(
    sock, topic: str
) -> None:
    producer_id = init_producer_id(sock).producer_id

    def idempotent_batch(sequence: int, *vals: bytes) -> bytes:
        builder = BatchBuilder(producer_id=producer_id, producer_epoch=0, base_sequence=sequence)
        for i, value in enumerate(vals):
            builder.append(1_700_000_000_000 + i, b"k", value)
        return builder.build()

    assert produce(sock, topic, batch(b"other")).base_offset == 0
    first = produce(sock, topic, idempotent_batch(0, b"a", b"b"))
    assert (first.error_code, first.base_offset) == (E.NONE, 1)
    retry = produce(sock, topic, idempotent_batch(0, b"a", b"b"))
    assert (retry.error_code, retry.base_offset) == (E.NONE, 1)
    following = produce(sock, topic, idempotent_batch(2, b"c"))
    assert (following.error_code, following.base_offset) == (E.NONE, 3)
    gap = produce(sock, topic, idempotent_batch(9, b"z"))
    assert gap.error_code == E.OUT_OF_ORDER_SEQUENCE_NUMBER
    data = wire.call(sock, 1, 12, fetch_request(topic, 0)).responses[0].partitions[0]
    assert values(data.records) == [b"other", b"a", b"b", b"c"]


# ---- real clients --------------------------------------------------------------------------
@pytest.mark.compat
def test_confluent_admin_lifecycle(serve: ServeProcess) -> None:
    from confluent_kafka import Producer
    from confluent_kafka import TopicPartition as CKTopicPartition
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": serve.bootstrap})
    name = _name("ck-admin")
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(
        TIMEOUT_S)
    admin.create_partitions([NewPartitions(name, 3)])[name].result(TIMEOUT_S)
    with pytest.raises(Exception, match=r"INVALID_PARTITIONS|partition"):
        admin.create_partitions([NewPartitions(name, 2)])[name].result(TIMEOUT_S)
    assert len(admin.list_topics(name, timeout=TIMEOUT_S).topics[name].partitions) == 3
    producer = Producer({"bootstrap.servers": serve.bootstrap})
    for i in range(6):
        producer.produce(name, value=b"v%d" % i, partition=2)
    assert producer.flush(TIMEOUT_S) == 0
    futures = admin.delete_records([CKTopicPartition(name, 2, 4)])
    deleted = next(iter(futures.values())).result(TIMEOUT_S)
    assert deleted.low_watermark == 4
    admin.delete_topics([name])[name].result(TIMEOUT_S)
    with pytest.raises(Exception, match="UNKNOWN_TOPIC"):
        admin.delete_topics([name])[name].result(TIMEOUT_S)


@pytest.mark.compat
def test_kafka_python_admin_lifecycle(serve: ServeProcess) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions, NewTopic
    from kafka.errors import InvalidPartitionsError, UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=serve.bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        name = _name("kp-admin")
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        admin.create_partitions({name: NewPartitions(total_count=2)})
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions({name: NewPartitions(total_count=2)})
        admin.delete_topics([name])
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([name])
    finally:
        admin.close()


@pytest.mark.compat
def test_confluent_idempotent_producer_end_to_end(serve: ServeProcess) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as CKTopicPartition

    name = _name("idem")
    producer = Producer({"bootstrap.servers": serve.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    count = 2000
    for i in range(count):
        producer.produce(name, key=b"k", value=b"%d" % i)
    assert producer.flush(TIMEOUT_S) == 0
    consumer = Consumer({"bootstrap.servers": serve.bootstrap, "group.id": _name("g"),
                         "enable.auto.commit": False})
    consumer.assign([CKTopicPartition(name, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                got.append(message.value())
    finally:
        consumer.close()
    assert got == [b"%d" % i for i in range(count)]


@pytest.mark.compat
def test_kafka_python_idempotent_producer_end_to_end(serve: ServeProcess, tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    name = _name("kp-idem")
    producer = KafkaProducer(bootstrap_servers=serve.bootstrap, enable_idempotence=True,
                             acks="all", linger_ms=5)
    try:
        for i in range(500):
            producer.send(name, key=b"k", value=b"%d" % i)
        producer.flush(TIMEOUT_S)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=serve.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    try:
        consumer.assign([TopicPartition(name, 0)])
        consumer.seek_to_beginning()
        got = []
        for message in consumer:
            got.append(message.value)
            if len(got) == 500:
                break
    finally:
        consumer.close()
    assert got == [b"%d" % i for i in range(500)]


# ---- malformed requests --------------------------------------------------------------------
MALFORMED = [
    (20, 6, DeleteTopicsRequest(topics=[DeleteTopicsRequest.DeleteTopicState(name="x")])),
    (21, 2, DeleteRecordsRequest(topics=[DeleteRecordsRequest.DeleteRecordsTopic(
        name="x", partitions=[DeleteRecordsRequest.DeleteRecordsPartition(0, 1)])])),
    (22, 5, InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1)),
    (23, 4, OffsetForLeaderEpochRequest(topics=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic(
        topic="x", partitions=[OffsetForLeaderEpochRequest.OffsetForLeaderPartition(0, -1, 0)])])),
    (37, 3, CreatePartitionsRequest(topics=[CreatePartitionsRequest.CreatePartitionsTopic(
        name="x", count=2, assignments=None)])),
    (10, 6, FindCoordinatorRequest(key_type=0, coordinator_keys=["g"])),
]


@pytest.mark.parametrize(("api_key", "version", "body"), MALFORMED,
                         ids=[str(k) for k, _, _ in MALFORMED])
def test_truncated_request_body_closes_only_that_connection(
    serve: ServeProcess, sock, api_key: int, version: int, body
) -> None:
    frame = wire.encode_request(api_key, version, body)
    cut = frame[4:-3]
    with wire.connect(serve.bootstrap) as hostile:
        hostile.sendall(len(cut).to_bytes(4, "big") + cut)
        assert wire.is_closed(hostile)
    assert metadata_node(sock) >= 0  # the server and other connections carry on
