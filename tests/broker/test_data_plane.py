"""Produce / Fetch / ListOffsets / CreateTopics / Metadata against `josef serve`, byte-level:
the per-partition error codes Kafka gives, long polling, KIP-74 sizes."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from josef.protocol._generated.create_topics import CreateTopicsRequest
from josef.protocol._generated.fetch import FetchRequest
from josef.protocol._generated.list_offsets import ListOffsetsRequest
from josef.protocol._generated.metadata import MetadataRequest
from josef.protocol._generated.produce import ProduceRequest
from josef.protocol.errors import ErrorCode
from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.records.records import iter_records
from tests.broker import wire
from tests.broker.conftest import ServeProcess

E = ErrorCode


def batch(*values: bytes, timestamp: int = 1_700_000_000_000, key: bytes | None = b"k") -> bytes:
    builder = BatchBuilder()
    for i, value in enumerate(values):
        builder.append(timestamp + i, key, value)
    return builder.build()


def create(sock, name: str, partitions: int = 1, rf: int = 1, configs=None,
           validate_only: bool = False, version: int = 7):
    topic = CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=rf,
        configs=[CreateTopicsRequest.CreatableTopicConfig(name=k, value=v)
                 for k, v in (configs or {}).items()])
    response = wire.call(sock, 19, version, CreateTopicsRequest(
        topics=[topic], timeout_ms=1000, validate_only=validate_only))
    return response.topics[0]


def produce(sock, topic: str, records: bytes | None, partition: int = 0, acks: int = -1,
            version: int = 9, correlation_id: int = 1):
    request = ProduceRequest(acks=acks, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=partition, records=records)])])
    return wire.call(sock, 0, version, request, correlation_id).responses[0].partition_responses[0]


def fetch_request(topic: str, offset: int, *, partition: int = 0, max_wait_ms: int = 0,
                  min_bytes: int = 1, max_bytes: int = 50_000_000,
                  partition_max_bytes: int = 1_000_000) -> FetchRequest:
    return FetchRequest(
        replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
        isolation_level=0, session_id=0, session_epoch=-1,
        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[FetchRequest.FetchPartition(
            partition=partition, fetch_offset=offset, partition_max_bytes=partition_max_bytes)])],
        forgotten_topics_data=[], rack_id="")


def values(records) -> list[bytes]:
    return [r.value for b in iter_batches(bytes(records)) for r in iter_records(b)]


@pytest.fixture
def sock(serve: ServeProcess):
    with wire.connect(serve.bootstrap) as s:
        yield s


@pytest.fixture
def topic(sock) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    assert create(sock, name, partitions=2).error_code == E.NONE
    return name


def test_create_topics_errors(sock) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    result = create(sock, name, partitions=3, configs={"retention.ms": "1000"}, validate_only=True)
    assert result.error_code == E.NONE and result.num_partitions == 3
    assert {c.name: c.value for c in result.configs}["retention.ms"] == "1000"
    assert create(sock, name).error_code == E.NONE  # validate_only created nothing
    assert create(sock, name).error_code == E.TOPIC_ALREADY_EXISTS
    assert create(sock, "bad/name").error_code == E.INVALID_TOPIC_EXCEPTION
    assert create(sock, "x" * 250).error_code == E.INVALID_TOPIC_EXCEPTION
    assert create(sock, "..").error_code == E.INVALID_TOPIC_EXCEPTION
    assert create(sock, name.replace("-", ".") + "_z").error_code == E.NONE
    assert create(sock, name.replace("-", ".") + ".z").error_code == E.INVALID_TOPIC_EXCEPTION
    assert create(sock, f"{name}-rf", rf=3).error_code == E.INVALID_REPLICATION_FACTOR
    assert create(sock, f"{name}-p", partitions=0).error_code == E.INVALID_PARTITIONS
    bad = create(sock, f"{name}-cfg", configs={"retention.ms": "soon"})
    assert bad.error_code == E.INVALID_CONFIG and "retention.ms" in bad.error_message
    assert create(sock, f"{name}-cfg", configs={"no.such": "1"}).error_code == E.INVALID_CONFIG
    defaults = create(sock, f"{name}-d", partitions=-1, rf=-1)
    assert defaults.error_code == E.NONE and defaults.num_partitions == 1


def test_metadata_topics_and_auto_create(sock, topic: str) -> None:
    response = wire.call(sock, 3, 12, MetadataRequest(topics=[
        MetadataRequest.MetadataRequestTopic(name=topic),
        MetadataRequest.MetadataRequestTopic(name="no-auto-" + topic),
        MetadataRequest.MetadataRequestTopic(name="bad name"),
    ], allow_auto_topic_creation=False))
    by_name = {t.name: t for t in response.topics}
    assert by_name[topic].error_code == E.NONE
    assert [p.partition_index for p in by_name[topic].partitions] == [0, 1]
    assert by_name[topic].partitions[0].isr_nodes == [1]
    assert by_name[topic].topic_id != uuid.UUID(int=0)
    assert by_name["no-auto-" + topic].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    assert by_name["bad name"].error_code == E.INVALID_TOPIC_EXCEPTION
    assert response.cluster_id and response.controller_id == 1
    auto = wire.call(sock, 3, 4, MetadataRequest(
        topics=[MetadataRequest.MetadataRequestTopic(name="auto-" + topic)],
        allow_auto_topic_creation=True))
    assert auto.topics[0].error_code == E.NONE and len(auto.topics[0].partitions) == 1
    by_id = wire.call(sock, 3, 12, MetadataRequest(topics=[
        MetadataRequest.MetadataRequestTopic(topic_id=by_name[topic].topic_id, name=None)]))
    assert by_id.topics[0].name == topic


def test_produce_fetch_round_trip_all_versions(sock, topic: str) -> None:
    for i, version in enumerate(range(3, 12)):
        response = produce(sock, topic, batch(b"v%d" % version), version=version)
        assert response.error_code == E.NONE, version
        assert response.base_offset == i
    for version in range(4, 13):
        fetched = wire.call(sock, 1, version, fetch_request(topic, 0))
        data = fetched.responses[0].partitions[0]
        assert data.error_code == E.NONE and data.high_watermark == 9
        assert values(data.records) == [b"v%d" % v for v in range(3, 12)]


def test_produce_errors(sock, topic: str) -> None:
    assert produce(sock, "missing-" + topic, batch(b"x")).error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    assert produce(sock, topic, batch(b"x"), partition=7).error_code == (
        E.UNKNOWN_TOPIC_OR_PARTITION)
    assert produce(sock, topic, batch(b"x"), acks=2).error_code == E.INVALID_REQUIRED_ACKS
    corrupt = bytearray(batch(b"hello"))
    corrupt[-1] ^= 0xFF
    assert produce(sock, topic, bytes(corrupt)).error_code == E.CORRUPT_MESSAGE
    assert produce(sock, topic, batch(b"a") + batch(b"b")).error_code == E.INVALID_RECORD
    assert produce(sock, topic, None).error_code == E.INVALID_RECORD
    small = f"{topic}-small"
    assert create(sock, small, configs={"max.message.bytes": "1000"}).error_code == E.NONE
    assert produce(sock, small, batch(b"x" * 2000)).error_code == E.MESSAGE_TOO_LARGE
    compacted = f"{topic}-compact"
    assert create(sock, compacted, configs={"cleanup.policy": "compact"}).error_code == E.NONE
    refused = produce(sock, compacted, batch(b"v", key=None))
    assert refused.error_code == E.INVALID_RECORD and refused.record_errors
    assert produce(sock, compacted, batch(b"v")).error_code == E.NONE
    # Nothing refused was written.
    assert produce(sock, topic, batch(b"ok")).base_offset == 0


def test_acks_zero_sends_no_response(sock, topic: str) -> None:
    request = ProduceRequest(acks=0, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch(b"fire"))])])
    sock.sendall(wire.encode_request(0, 9, request, correlation_id=1))
    # The next response on the wire answers the next request, not the acks=0 one.
    listed = wire.call(sock, 2, 7, ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
            ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=-1)])]),
        correlation_id=2)
    assert listed.topics[0].partitions[0].offset == 1


def test_acks_zero_failure_closes_connection(sock) -> None:
    request = ProduceRequest(acks=0, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name="does-not-exist-anywhere", partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch(b"x"))])])
    sock.sendall(wire.encode_request(0, 9, request))
    assert wire.is_closed(sock)


def test_list_offsets(sock, topic: str) -> None:
    base = 1_700_000_000_000
    produce(sock, topic, batch(b"a", b"b", timestamp=base))
    produce(sock, topic, batch(b"c", timestamp=base + 5000))
    produce(sock, topic, batch(b"d", timestamp=base + 1000))

    def lookup(timestamp: int, version: int = 9, partition: int = 0):
        response = wire.call(sock, 2, version, ListOffsetsRequest(replica_id=-1, topics=[
            ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
                ListOffsetsRequest.ListOffsetsPartition(partition_index=partition,
                                                        timestamp=timestamp)])]))
        p = response.topics[0].partitions[0]
        return p.error_code, p.offset, p.timestamp

    assert lookup(-1) == (E.NONE, 4, -1)
    assert lookup(-2) == (E.NONE, 0, -1)
    assert lookup(-3) == (E.NONE, 2, base + 5000)
    assert lookup(base + 1) == (E.NONE, 1, base + 1)
    assert lookup(base + 2000)[:2] == (E.NONE, 2)
    assert lookup(base + 10_000) == (E.NONE, -1, -1)
    assert lookup(-1, version=1) == (E.NONE, 4, -1)
    assert lookup(-1, partition=9)[0] == E.UNKNOWN_TOPIC_OR_PARTITION


def test_fetch_errors_and_sizes(sock, topic: str) -> None:
    for i in range(5):
        produce(sock, topic, batch(b"x" * 1000, b"y%d" % i))
    out_of_range = wire.call(sock, 1, 12, fetch_request(topic, 99)).responses[0].partitions[0]
    assert out_of_range.error_code == E.OFFSET_OUT_OF_RANGE
    at_end = wire.call(sock, 1, 12, fetch_request(topic, 10)).responses[0].partitions[0]
    assert at_end.error_code == E.NONE and bytes(at_end.records) == b""
    # KIP-74: a limit smaller than one batch still returns that first whole batch.
    tiny = wire.call(sock, 1, 12, fetch_request(topic, 0, partition_max_bytes=10))
    assert len(values(tiny.responses[0].partitions[0].records)) == 2
    # max_bytes bounds the whole response after the first batch.
    capped = wire.call(sock, 1, 12, fetch_request(topic, 0, max_bytes=2500))
    assert len(values(capped.responses[0].partitions[0].records)) == 4
    # From the middle of a batch: the whole batch comes back.
    middle = wire.call(sock, 1, 12, fetch_request(topic, 3)).responses[0].partitions[0]
    assert values(middle.records)[0] == b"x" * 1000
    missing = wire.call(sock, 1, 12, fetch_request("nope-" + topic, 0))
    assert missing.responses[0].partitions[0].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
    session = fetch_request(topic, 0)
    session.session_id = 1234
    assert wire.call(sock, 1, 12, session).error_code == E.FETCH_SESSION_ID_NOT_FOUND


def test_fetch_by_topic_id(sock, topic: str) -> None:
    produce(sock, topic, batch(b"by-id"))
    meta = wire.call(sock, 3, 12, MetadataRequest(topics=[
        MetadataRequest.MetadataRequestTopic(name=topic)]))
    request = fetch_request(topic, 0)
    request.topics[0].topic_id = meta.topics[0].topic_id
    response = wire.call(sock, 1, 13, request)
    assert response.responses[0].topic_id == meta.topics[0].topic_id
    assert values(response.responses[0].partitions[0].records) == [b"by-id"]
    request.topics[0].topic_id = uuid.uuid4()
    unknown = wire.call(sock, 1, 16, request)
    assert unknown.responses[0].partitions[0].error_code == E.UNKNOWN_TOPIC_ID


def test_long_poll_waits_then_answers_when_data_arrives(serve: ServeProcess, sock,
                                                        topic: str) -> None:
    started = time.monotonic()
    empty = wire.call(sock, 1, 12, fetch_request(topic, 0, max_wait_ms=300))
    assert 0.25 <= time.monotonic() - started < 3
    assert bytes(empty.responses[0].partitions[0].records) == b""

    def later() -> None:
        time.sleep(0.3)
        with wire.connect(serve.bootstrap) as other:
            produce(other, topic, batch(b"wake"))

    producer = threading.Thread(target=later)
    started = time.monotonic()
    producer.start()
    woken = wire.call(sock, 1, 12, fetch_request(topic, 0, max_wait_ms=10_000))
    elapsed = time.monotonic() - started
    producer.join()
    assert values(woken.responses[0].partitions[0].records) == [b"wake"]
    assert 0.25 <= elapsed < 2, elapsed


def test_parked_fetch_does_not_block_later_requests_on_other_connections(
    serve: ServeProcess, sock, topic: str
) -> None:
    sock.sendall(wire.encode_request(1, 12, fetch_request(topic, 0, max_wait_ms=2000)))
    with wire.connect(serve.bootstrap) as other:
        started = time.monotonic()
        assert produce(other, topic, batch(b"z"), partition=1).error_code == E.NONE
        assert time.monotonic() - started < 1
    _, response = wire.recv_response(sock, 1, 12)
    assert bytes(response.responses[0].partitions[0].records) == b""
