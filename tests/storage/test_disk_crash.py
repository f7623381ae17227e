"""SIGKILL crash test: a child appends and prints an ack after each append returns; it is
killed at a random moment; on reopen every acked batch is present, intact, in order, once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from josef.records.batch import iter_batches
from josef.records.records import iter_records
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLogs

CONFIG = LogConfig(segment_bytes=20_000, index_interval_bytes=512)
TOPIC = "crash"

CHILD = textwrap.dedent(
    """
    import sys
    from josef.records.builder import BatchBuilder
    from josef.storage.api import LogConfig
    from josef.storage.disk import DiskPartitionLogs

    config = LogConfig(segment_bytes=20_000, index_interval_bytes=512)
    logs = DiskPartitionLogs([sys.argv[1]], config_for=lambda _t: config)
    log = logs.create("crash", 0, config, bytes(16))
    i = log.log_end_offset
    while True:
        builder = BatchBuilder()
        for r in range(3):
            builder.append(1_000 + i, None, b"%d:%d|" % (i, r) * (1 + i % 40), [])
        info = log.append_as_leader(builder.build(), 0, 1_000 + i)
        print(info.first_offset, flush=True)
        i = info.last_offset + 1
        if i % 60 == 0:
            log.flush()
            log.set_high_watermark(log.log_end_offset)
            logs.checkpoint()
    """
)


def expected_value(offset: int) -> bytes:
    base, r = offset - offset % 3, offset % 3
    return b"%d:%d|" % (base, r) * (1 + base % 40)


def run_once(log_dir: Path, rng: random.Random) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(log_dir)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    acked: list[int] = []
    target = rng.randint(1, 300)
    try:
        while len(acked) < target:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        time.sleep(rng.random() * 0.01)  # land somewhere inside a later append
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the child died on its own"
    logs = DiskPartitionLogs([log_dir], config_for=lambda _t: CONFIG)
    log = logs.get(TOPIC, 0)
    assert log is not None
    data = log.read(log.log_start_offset, 1 << 30)
    offsets = []
    for chunk in data.records:
        for header in iter_batches(bytes(chunk)):
            assert header.crc_valid()
            assert header.record_count == 3
            for record in iter_records(header):
                offset = header.base_offset + record.offset_delta
                assert record.value == expected_value(offset)
                offsets.append(offset)
    assert offsets == list(range(len(offsets))), "not in order or not once"
    assert set(acked) <= set(offsets[::3]), "an acknowledged batch was lost"
    logs.close()
    return len(offsets)


@pytest.mark.parametrize("seed", range(3))
def test_sigkill_loses_no_acked_batch(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    total = 0
    for _ in range(2):  # the second run restarts on the log the first crash left
        total = max(total, run_once(tmp_path, rng))
    assert total > 0


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(40))
def test_sigkill_loses_no_acked_batch_soak(tmp_path: Path, seed: int) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(3):
        run_once(tmp_path, rng)
