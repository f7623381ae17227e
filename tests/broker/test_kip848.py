"""KIP-848 (`group.protocol=consumer`) driven by librdkafka (confluent-kafka) against a real
`josef serve`: partitions split with none owned twice and none orphaned, rebalances are
incremental, a closing member's partitions move, commits resume, and a broker restart keeps
the group. The broker's heartbeat interval is Kafka's 5 s, so multi-step rebalances are slow:
those run under `soak`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from josef.protocol._generated.consumer_group_describe import ConsumerGroupDescribeRequest
from tests.broker import wire
from tests.broker.conftest import ServeProcess

pytestmark = pytest.mark.compat

TIMEOUT_S = 40
PARTITIONS = 6


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("kip848"))
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def _topic(bootstrap: str, messages: int) -> str:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(TIMEOUT_S)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(messages):
        producer.produce(topic, str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(TIMEOUT_S) == 0
    return topic


class Member:
    """A KIP-848 confluent-kafka consumer that records what it is given and what it revokes."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.revoked: list[int] = []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        self.consumer.subscribe(
            [topic], on_revoke=lambda _c, tps: self.revoked.extend(tp.partition for tp in tps)
        )
        self.values: list[int] = []

    def poll(self, timeout: float = 0.1) -> None:
        msg = self.consumer.poll(timeout)
        if msg is not None and msg.error() is None:
            self.values.append(int(msg.value()))

    def owned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}


def _until(members: list[Member], done: Callable[[list[set[int]]], bool]) -> list[set[int]]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        for m in members:
            m.poll(0.05)
        owned = [m.owned() for m in members]
        every = [p for o in owned for p in o]
        assert len(every) == len(set(every)), f"a partition owned twice: {owned}"
        if done(owned):
            return owned
    raise AssertionError(f"not reached: {[m.owned() for m in members]}")


def _split(owned: list[set[int]]) -> bool:
    every = sorted(p for o in owned for p in o)
    return every == list(range(PARTITIONS)) and all(owned)


def _describe(bootstrap: str, group: str) -> Any:
    sock = wire.connect(bootstrap)
    try:
        response = wire.call(sock, 69, 0, ConsumerGroupDescribeRequest(group_ids=[group]))
    finally:
        sock.close()
    return response.groups[0]


def test_single_member_commit_resume_and_restart(
    serve_factory: Callable[..., ServeProcess],
) -> None:
    broker = serve_factory().start()
    topic = _topic(broker.bootstrap, 60)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = Member(broker.bootstrap, group, topic)
    _until([first], lambda owned: owned[0] == set(range(PARTITIONS)))
    deadline = time.monotonic() + TIMEOUT_S
    while len(first.values) < 60 and time.monotonic() < deadline:
        first.poll()
    assert sorted(first.values) == list(range(60))
    first.consumer.commit(asynchronous=False)
    described = _describe(broker.bootstrap, group)
    assert (described.error_code, described.group_state, len(described.members)) == (
        0, "Stable", 1)
    assert described.members[0].assignment.topic_partitions[0].topic_name == topic
    first.consumer.close()

    broker.stop()
    broker.start()
    described = _describe(broker.bootstrap, group)
    assert (described.error_code, described.group_state) == (0, "Empty")
    assert described.group_epoch >= 2  # joined, then left
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(60, 66):
        producer.produce(topic, str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(TIMEOUT_S) == 0
    second = Member(broker.bootstrap, group, topic)
    deadline = time.monotonic() + TIMEOUT_S
    while len(second.values) < 6 and time.monotonic() < deadline:
        second.poll()
    # Resumed at the committed offsets: only the records produced after the commit.
    assert sorted(second.values) == list(range(60, 66))
    second.consumer.close()


@pytest.mark.soak
def test_members_split_incrementally_and_take_over(broker: ServeProcess) -> None:
    topic = _topic(broker.bootstrap, 0)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [Member(broker.bootstrap, group, topic)]
    _until(members, _split)
    members.append(Member(broker.bootstrap, group, topic))
    two = _until(members, _split)
    assert sorted(len(o) for o in two) == [3, 3]
    members[0].revoked.clear()
    members.append(Member(broker.bootstrap, group, topic))
    three = _until(members, lambda owned: _split(owned) and len(owned[2]) == 2)
    assert sorted(len(o) for o in three) == [2, 2, 2]
    # Incremental: the first member kept what it still owns, it only gave partitions away.
    assert three[0] <= two[0]
    assert set(members[0].revoked) == two[0] - three[0]
    members.pop(1).consumer.close()
    after = _until(members, _split)
    assert after[0] >= three[0] and after[1] >= three[2]
    for m in members:
        m.consumer.close()
