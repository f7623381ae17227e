"""Consumer groups driven by real clients (librdkafka via confluent-kafka, kafka-python,
aiokafka, kcat) against a real `josef serve`: partitions split with no owner twice and none
orphaned, reassignment when members leave or die, commits resume, static members rejoin
without a rebalance."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.broker.conftest import ServeProcess
from tests.broker.test_groups import GROUP_OVERRIDES

pytestmark = pytest.mark.compat

TIMEOUT_S = 30
PARTITIONS = 6


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("group-clients"), GROUP_OVERRIDES)
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _topic(bootstrap: str, partitions: int = PARTITIONS, messages: int = 0) -> str:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = _name("t")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(TIMEOUT_S)
    if messages:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        for i in range(messages):
            producer.produce(topic, str(i).encode(), partition=i % partitions)
        assert producer.flush(TIMEOUT_S) == 0
    return topic


def _ck_consumer(bootstrap: str, group: str, **extra: Any) -> Any:
    from confluent_kafka import Consumer

    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 200,
        **extra,
    })


def _balanced(owned: Sequence[set[int]], partitions: int) -> bool:
    """Every partition owned exactly once, and every member owns one when there are enough."""
    every = [p for parts in owned for p in parts]
    return (
        sorted(every) == list(range(partitions))
        and (len(owned) > partitions or all(owned))
    )


def _settle(
    poll: Callable[[], None], owned: Callable[[], list[set[int]]], partitions: int = PARTITIONS
) -> list[set[int]]:
    """Poll until the assignment is balanced and has stayed so for a second."""
    deadline = time.monotonic() + TIMEOUT_S
    since: float | None = None
    while time.monotonic() < deadline:
        poll()
        current = owned()
        if _balanced(current, partitions):
            since = since or time.monotonic()
            if time.monotonic() - since > 1.0:
                return current
        else:
            since = None
    raise AssertionError(f"never balanced: {owned()}")


def _ck_owned(consumers: Sequence[Any]) -> list[set[int]]:
    return [{tp.partition for tp in c.assignment()} for c in consumers]


def _ck_poll(consumers: Sequence[Any]) -> Callable[[], None]:
    def poll() -> None:
        for c in consumers:
            message = c.poll(0.05)
            assert message is None or message.error() is None, message.error()
    return poll


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_confluent_kafka_members_split_partitions(broker: ServeProcess, strategy: str) -> None:
    topic = _topic(broker.bootstrap, messages=60)
    group = _name("g")
    consumers = [
        _ck_consumer(broker.bootstrap, group, **{"partition.assignment.strategy": strategy})
        for _ in range(3)
    ]
    try:
        two = consumers[:2]
        for c in two:
            c.subscribe([topic])
        _settle(_ck_poll(two), lambda: _ck_owned(two))
        consumers[2].subscribe([topic])
        _settle(_ck_poll(consumers), lambda: _ck_owned(consumers))
        consumers[0].close()
        rest = consumers[1:]
        _settle(_ck_poll(rest), lambda: _ck_owned(rest))
    finally:
        for c in consumers[1:]:
            c.close()


_DOOMED_CONSUMER = """
import sys
from confluent_kafka import Consumer
bootstrap, group, topic = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 1500,
              "heartbeat.interval.ms": 200})
c.subscribe([topic])
while True:
    m = c.poll(0.1)
    if m is None or m.error():
        continue
    print(m.value().decode(), flush=True)  # processed, then committed: at-least-once
    c.commit(message=m, asynchronous=False)
"""


def test_killed_member_partitions_are_reassigned_without_skipping(broker: ServeProcess) -> None:
    messages = 600
    topic = _topic(broker.bootstrap, messages=messages)
    group = _name("g")
    doomed = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_CONSUMER, broker.bootstrap, group, topic],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    survivor = _ck_consumer(broker.bootstrap, group)
    seen: set[str] = set()
    committed_by_doomed: list[str] = []
    assert doomed.stdout is not None
    # The survivor must keep polling while the doomed member works (rebalances need both).
    reader = threading.Thread(
        target=lambda: committed_by_doomed.extend(line.strip() for line in doomed.stdout)
    )
    reader.start()
    try:
        survivor.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT_S
        # Let the doomed member take part and commit a few records, then kill it (no LeaveGroup).
        while len(committed_by_doomed) < 5 and time.monotonic() < deadline:
            message = survivor.poll(0.05)
            if message is not None and message.error() is None:
                seen.add(message.value().decode())
        assert len(committed_by_doomed) >= 5, "the doomed consumer committed nothing"
        doomed.kill()
        doomed.wait()
        reader.join(TIMEOUT_S)
        # After the doomed member's 1.5 s session expires the survivor owns everything.
        while time.monotonic() < deadline and (
            len(seen | set(committed_by_doomed)) < messages
            or len(survivor.assignment()) < PARTITIONS
        ):
            message = survivor.poll(0.1)
            if message is not None and message.error() is None:
                seen.add(message.value().decode())
        assert seen | set(committed_by_doomed) == {str(i) for i in range(messages)}
        assert {tp.partition for tp in survivor.assignment()} == set(range(PARTITIONS))
    finally:
        if doomed.poll() is None:
            doomed.kill()
        reader.join(TIMEOUT_S)
        survivor.close()


def test_commit_close_reopen_resumes(broker: ServeProcess) -> None:
    topic = _topic(broker.bootstrap, partitions=1, messages=100)
    group = _name("g")
    consumer = _ck_consumer(broker.bootstrap, group)
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + TIMEOUT_S
    last = None
    while got < 40 and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            got, last = got + 1, message
    assert last is not None and got == 40
    consumer.commit(message=last, asynchronous=False)
    consumer.close()

    reopened = _ck_consumer(broker.bootstrap, group)
    reopened.subscribe([topic])
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            message = reopened.poll(0.2)
            if message is not None and message.error() is None:
                assert message.offset() == 40 and message.value() == b"40"
                break
        else:
            raise AssertionError("nothing consumed after reopening")
    finally:
        reopened.close()


def test_static_member_restart_without_rebalance(broker: ServeProcess) -> None:
    topic = _topic(broker.bootstrap)
    group = _name("g")
    rebalances: list[str] = []

    def on_assign(_consumer: Any, partitions: list[Any]) -> None:
        rebalances.append("assign")

    def on_revoke(_consumer: Any, partitions: list[Any]) -> None:
        rebalances.append("revoke")

    dynamic = _ck_consumer(broker.bootstrap, group)
    dynamic.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    static = _ck_consumer(broker.bootstrap, group, **{"group.instance.id": "static-1"})
    static.subscribe([topic])
    try:
        before = _settle(_ck_poll([dynamic, static]), lambda: _ck_owned([dynamic, static]))
        seen = len(rebalances)
        static.close()  # a static member does not send LeaveGroup (KIP-345)
        static = _ck_consumer(broker.bootstrap, group, **{"group.instance.id": "static-1"})
        static.subscribe([topic])
        after = _settle(_ck_poll([dynamic, static]), lambda: _ck_owned([dynamic, static]))
        assert after == before
        assert len(rebalances) == seen, rebalances  # the dynamic member saw no rebalance
    finally:
        dynamic.close()
        static.close()


def describe_group(bootstrap: str, group: str) -> tuple[str, list[set[int]]]:
    """(state, each member's partitions) from DescribeGroups, the assignment decoded by
    librdkafka's admin client from the consumer protocol bytes."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    owned = [
        {tp.partition for tp in member.assignment.topic_partitions}
        for member in description.members
    ]
    return description.state.name, owned


class _KafkaPythonMember(threading.Thread):
    """One kafka-python consumer on its own thread, polling continuously (kafka-python rejoins
    only from inside poll(), so a consumer that is not polled stalls every rebalance). The
    partitions it owns are tracked through its rebalance callbacks; `owners` is shared by all
    members and any partition assigned while another member still owns it is recorded in
    `doubled`."""

    def __init__(
        self, bootstrap: str, group: str, topic: str,
        owners: dict[int, int], doubled: list[str], lock: threading.Lock,
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.owners, self.doubled, self.lock = owners, doubled, lock
        self.owned: set[int] = set()
        self.in_rebalance = False
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                with member.lock:
                    member.in_rebalance = True
                    for tp in revoked:
                        member.owned.discard(tp.partition)
                        if member.owners.get(tp.partition) == id(member):
                            del member.owners[tp.partition]

            def on_partitions_assigned(self, assigned: Any) -> None:
                with member.lock:
                    for tp in assigned:
                        other = member.owners.get(tp.partition)
                        if other is not None and other != id(member):
                            member.doubled.append(f"partition {tp.partition} assigned twice")
                        member.owners[tp.partition] = id(member)
                        member.owned.add(tp.partition)
                    member.in_rebalance = False

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group,
            auto_offset_reset="earliest", enable_auto_commit=False,
            session_timeout_ms=6000, heartbeat_interval_ms=200,
        )
        try:
            consumer.subscribe([self.topic], listener=Listener())
            # kafka-python 3.0.12 strands a leader whose rejoin was started only because its
            # topic metadata changed (assignment snapshot != metadata snapshot): the assignment
            # in the join task makes need_rejoin() False, so a poll() whose join wait timed
            # out never collects the finished join; the member stops heartbeating and its
            # session expires. Such a rejoin happens when the first JoinGroup completes before
            # the subscribed topic's metadata arrived ("No partition metadata for topic"), so
            # wait for that metadata (topics() blocks on a refresh) before the first poll.
            consumer.topics()
            while not self.stop_event.is_set():
                consumer.poll(timeout_ms=50)
        except BaseException as e:  # reported by the test thread
            self.error = e
        finally:
            consumer.close()  # sends LeaveGroup
            with self.lock:
                for p in self.owned:
                    if self.owners.get(p) == id(self):
                        del self.owners[p]
                self.owned.clear()

    def leave(self) -> None:
        self.stop_event.set()
        self.join(TIMEOUT_S)
        assert not self.is_alive(), "kafka-python consumer did not close"


def test_kafka_python_members_split_partitions(broker: ServeProcess) -> None:
    topic = _topic(broker.bootstrap, messages=30)
    group = _name("g")
    owners: dict[int, int] = {}
    doubled: list[str] = []
    lock = threading.Lock()
    members = [
        _KafkaPythonMember(broker.bootstrap, group, topic, owners, doubled, lock)
        for _ in range(3)
    ]

    def settle(live: list[_KafkaPythonMember]) -> None:
        """Wait until the broker says Stable with exactly `live` as members, every member has
        finished its rebalance callbacks, and the members' own views match the broker's."""
        deadline = time.monotonic() + TIMEOUT_S
        state, described = "", []
        while time.monotonic() < deadline:
            for m in live:
                assert m.error is None, m.error
            state, described = describe_group(broker.bootstrap, group)
            with lock:
                views = [set(m.owned) for m in live]
                settled = not any(m.in_rebalance for m in live)
            if (
                state == "STABLE" and settled and len(described) == len(live)
                and sorted(map(sorted, views)) == sorted(map(sorted, described))
                and _balanced(views, PARTITIONS)
            ):
                return
            time.sleep(0.05)
        raise AssertionError(f"never settled: {state} {described} {[m.owned for m in live]}")

    try:
        for m in members[:2]:
            m.start()
        settle(members[:2])
        members[2].start()
        settle(members)
        members[0].leave()
        settle(members[1:])
        assert doubled == []
    finally:
        for m in members:
            if m.is_alive():
                m.leave()


def test_aiokafka_members_split_partitions(broker: ServeProcess) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = _topic(broker.bootstrap, messages=30)
    group = _name("g")

    async def run() -> None:
        consumers = [
            AIOKafkaConsumer(
                topic, bootstrap_servers=broker.bootstrap, group_id=group,
                auto_offset_reset="earliest", enable_auto_commit=False,
                session_timeout_ms=6000, heartbeat_interval_ms=200,
            )
            for _ in range(3)
        ]
        for c in consumers[:2]:
            await c.start()

        async def settle(members: list[Any]) -> None:
            deadline = time.monotonic() + TIMEOUT_S
            since: float | None = None
            while time.monotonic() < deadline:
                await asyncio.gather(*(c.getmany(timeout_ms=50) for c in members))
                current = [{tp.partition for tp in c.assignment()} for c in members]
                if _balanced(current, PARTITIONS):
                    since = since or time.monotonic()
                    if time.monotonic() - since > 1.0:
                        return
                else:
                    since = None
            raise AssertionError("never balanced")

        try:
            await settle(consumers[:2])
            await consumers[2].start()
            await settle(consumers)
            await consumers[0].stop()
            await settle(consumers[1:])
        finally:
            for c in consumers[1:]:
                await c.stop()

    asyncio.run(run())


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_consumes_as_a_group(broker: ServeProcess) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = _topic(broker.bootstrap, partitions=2, messages=20)
    group = _name("g")
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
         "-c", "20", "-q", "-f", "%s\\n", topic],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=True,
    )
    assert sorted(out.stdout.split(), key=int) == [str(i) for i in range(20)]
    # kcat commits as it goes (enable.auto.commit): the group's offsets are stored.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(2)], TIMEOUT_S)
        assert all(tp.offset >= 0 for tp in committed), committed
    finally:
        consumer.close()
