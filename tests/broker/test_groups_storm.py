"""A rebalance storm against a real `josef serve` (issue 5): confluent-kafka consumers join and
leave one group at random while a producer keeps writing to a 12-partition topic. Each consumer
records what it processed, then commits (at-least-once). Afterwards the group is Stable, every
partition has exactly one owner (DescribeGroups with the assignment decoded), the committed
offsets sampled through the run never went backwards, and every produced record was consumed
at least once; duplicates are counted and printed, not failed on.

The full storm (20 consumers for a minute) is a soak test; a short one (6 consumers) runs with
the normal suite."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.broker.conftest import ServeProcess
from tests.broker.test_groups import GROUP_OVERRIDES
from tests.broker.test_groups_clients import _balanced, describe_group

pytestmark = pytest.mark.compat

PARTITIONS = 12
SETTLE_TIMEOUT_S = 60.0  # after the storm: everything consumed and the group Stable
CLIENT_TIMEOUT_S = 10.0
SAMPLE_INTERVAL_S = 0.3  # how often committed offsets are fetched during the storm


@dataclass(frozen=True, slots=True)
class Storm:
    max_members: int  # live consumers at most
    seconds: float  # how long members join and leave
    final_members: int  # members left running while the backlog drains
    records_per_second: int
    strategy: str  # partition.assignment.strategy


@dataclass
class Shared:
    """What the threads of one storm report; list.append is atomic, so no lock is needed."""

    processed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    commit_failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("groups-storm"), GROUP_OVERRIDES)
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def _client(bootstrap: str) -> dict[str, Any]:
    # Errors only: a storm makes librdkafka log every rebalance at info level.
    return {"bootstrap.servers": bootstrap, "log_level": 3}


class Member(threading.Thread):
    """One consumer: consume, record each record's value, then commit the positions."""

    def __init__(self, bootstrap: str, group: str, topic: str, strategy: str, shared: Shared):
        super().__init__(daemon=True)
        self.config = {
            **_client(bootstrap),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 300,
            "partition.assignment.strategy": strategy,
        }
        self.topic = topic
        self.shared = shared
        self.owned: set[int] = set()
        self.stop_event = threading.Event()

    def _commit(self, consumer: Any) -> None:
        from confluent_kafka import KafkaError, KafkaException

        try:
            consumer.commit(asynchronous=False)
        except KafkaException as e:
            # Nothing consumed yet, or the generation moved on: the next owner starts from the
            # last successful commit, which at-least-once allows.
            if e.args[0].code() != KafkaError._NO_OFFSET:
                self.shared.commit_failures.append(str(e.args[0]))

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(self.config)

        def on_revoke(c: Any, partitions: list[Any]) -> None:
            self._commit(c)  # hand over what was processed

        try:
            consumer.subscribe([self.topic], on_revoke=on_revoke)
            while not self.stop_event.is_set():
                messages = consumer.consume(500, 0.1)
                for message in messages:
                    if message.error() is not None:
                        self.shared.errors.append(str(message.error()))
                    else:
                        self.shared.processed.append(int(message.value()))
                if messages:
                    self._commit(consumer)
                self.owned = {tp.partition for tp in consumer.assignment()}
        except Exception as e:  # reported by the test thread
            self.shared.errors.append(f"consumer: {e!r}")
        finally:
            consumer.close()  # commits nothing more; sends LeaveGroup

    def leave(self) -> None:
        self.stop_event.set()
        self.join(CLIENT_TIMEOUT_S * 3)
        assert not self.is_alive(), "a consumer did not close"


class Producing(threading.Thread):
    """Writes 0, 1, 2, ... to partition i % PARTITIONS at a steady rate; `delivered` holds
    the values the broker acknowledged."""

    def __init__(self, bootstrap: str, topic: str, rate: int, shared: Shared):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.rate, self.shared = bootstrap, topic, rate, shared
        self.delivered: list[int] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        from confluent_kafka import Producer

        def on_delivery(err: Any, message: Any) -> None:
            if err is None:
                self.delivered.append(int(message.value()))
            else:
                self.shared.errors.append(f"delivery: {err}")

        producer = Producer({**_client(self.bootstrap), "acks": "all", "linger.ms": 5})
        i = 0
        start = time.monotonic()
        while not self.stop_event.is_set():
            while i < (time.monotonic() - start) * self.rate:
                producer.produce(self.topic, str(i).encode(), partition=i % PARTITIONS,
                                 on_delivery=on_delivery)
                i += 1
            producer.poll(0.01)
        if producer.flush(CLIENT_TIMEOUT_S * 3):
            self.shared.errors.append("producer: records left undelivered")


class OffsetSampler(threading.Thread):
    """Fetches the group's committed offsets (OffsetFetch, no membership) over and over and
    records every partition whose committed offset went down."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.last: dict[int, int] = {}
        self.regressions: list[str] = []
        self.samples = 0
        self.stop_event = threading.Event()

    def sample(self, consumer: Any) -> None:
        from confluent_kafka import TopicPartition

        asked = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        for tp in consumer.committed(asked, timeout=CLIENT_TIMEOUT_S):
            if tp.offset < 0:
                continue  # nothing committed yet
            before = self.last.get(tp.partition, -1)
            if tp.offset < before:
                self.regressions.append(f"partition {tp.partition}: {before} -> {tp.offset}")
            self.last[tp.partition] = max(before, tp.offset)
        self.samples += 1

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer({**_client(self.bootstrap), "group.id": self.group})
        try:
            while not self.stop_event.wait(SAMPLE_INTERVAL_S):
                self.sample(consumer)
            self.sample(consumer)
        finally:
            consumer.close()


def _create_topic(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"storm-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(_client(bootstrap))
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(CLIENT_TIMEOUT_S)
    return topic


def _high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**_client(bootstrap), "group.id": "storm-watermarks"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), CLIENT_TIMEOUT_S)[1]
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def run_storm(bootstrap: str, storm: Storm, seed: int) -> None:
    rng = random.Random(seed)
    topic = _create_topic(bootstrap)
    group = f"storm-{uuid.uuid4().hex[:8]}"
    shared = Shared()
    live: list[Member] = []

    def join() -> None:
        member = Member(bootstrap, group, topic, storm.strategy, shared)
        member.start()
        live.append(member)

    def leave() -> None:
        live.pop(rng.randrange(len(live))).leave()

    producing = Producing(bootstrap, topic, storm.records_per_second, shared)
    sampler = OffsetSampler(bootstrap, group, topic)
    producing.start()
    sampler.start()
    joins = leaves = 0
    try:
        # The storm: every 0.1-0.6 s one member joins or one leaves, at random.
        end = time.monotonic() + storm.seconds
        while time.monotonic() < end:
            if not live or (len(live) < storm.max_members and rng.random() < 0.55):
                join()
                joins += 1
            else:
                leave()
                leaves += 1
            time.sleep(rng.uniform(0.1, 0.6))
        producing.stop_event.set()
        producing.join(CLIENT_TIMEOUT_S * 4)
        while len(live) > storm.final_members:
            leave()
        while len(live) < storm.final_members:
            join()

        # Drain: every acknowledged record consumed, every offset committed, group settled.
        high_watermarks = _high_watermarks(bootstrap, topic)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        missing: set[int] = set()
        state, described = "", []
        while time.monotonic() < deadline:
            assert not shared.errors, shared.errors[:5]
            missing = set(producing.delivered) - set(shared.processed)
            state, described = describe_group(bootstrap, group)
            views = [m.owned for m in live]
            if (
                not missing
                and sampler.last == high_watermarks
                and state == "STABLE"
                and len(described) == len(live)
                and _balanced(described, PARTITIONS)
                and sorted(map(sorted, views)) == sorted(map(sorted, described))
            ):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(
                f"not settled: {len(missing)} records never consumed, committed "
                f"{sampler.last} vs high watermarks {high_watermarks}, {state} {described}, "
                f"members see {[m.owned for m in live]}"
            )
    finally:
        producing.stop_event.set()
        for member in live:
            member.leave()
        sampler.stop_event.set()
        sampler.join(CLIENT_TIMEOUT_S * 2)
    assert not shared.errors, shared.errors[:5]
    assert sampler.regressions == [], sampler.regressions
    assert len(producing.delivered) == sum(high_watermarks.values())
    duplicates = len(shared.processed) - len(set(shared.processed))
    print(
        f"storm {storm}: {joins} joins, {leaves} leaves, {len(producing.delivered)} records, "
        f"{duplicates} consumed twice or more ({duplicates / len(producing.delivered):.1%}), "
        f"{len(shared.commit_failures)} commits refused, {sampler.samples} offset samples"
    )


def test_short_rebalance_storm(broker: ServeProcess) -> None:
    run_storm(broker.bootstrap, Storm(6, 8.0, 3, 200, "cooperative-sticky"), seed=5)


@pytest.mark.soak
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_rebalance_storm(broker: ServeProcess, strategy: str) -> None:
    run_storm(broker.bootstrap, Storm(20, 60.0, 4, 500, strategy), seed=20)
