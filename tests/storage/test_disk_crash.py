"""SIGKILL crash tests. A child appends and acknowledges like the broker: with write-behind it
keeps up to MAX_IN_FLIGHT appends whose writes are queued and prints an append's first_offset
only once its write is in the file (also on a disk slowed down so that the writes really
queue); with synchronous writes, right after the append. It is killed at a random moment; on
reopen every acknowledged batch is present, intact, in order, once, and the log continues
right after its last stored batch (with write-behind checked by a child killed while its
writes are stuck behind a roll)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from josef.records.batch import iter_batches
from josef.records.records import iter_records
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLogs

CONFIG = LogConfig(segment_bytes=20_000, index_interval_bytes=512)
TOPIC = "crash"
MODES = ["write_behind", "write_behind_slow_disk", "synchronous"]

CHILD = textwrap.dedent(
    """
    import asyncio
    import os
    import sys
    import time
    from collections import deque

    import josef.storage.disk.writer as writer_module
    from josef.records.builder import BatchBuilder
    from josef.storage.api import LogConfig
    from josef.storage.disk import DiskPartitionLogs

    # Appends whose acknowledgement waits for their write: a few, as a broker has a few
    # produce requests in flight per partition.
    MAX_IN_FLIGHT = 8

    class SlowDisk:
        # The OS as the I/O thread sees it: each writev takes a millisecond longer, as under
        # the kernel's dirty-page throttling, so that appends queue behind the writes.
        def writev(self, fd: int, buffers: list[bytes]) -> int:
            time.sleep(0.001)
            return os.writev(fd, buffers)

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

    async def main() -> None:
        mode = sys.argv[2]
        if mode == "write_behind":  # every append to the writer's thread, small ones too
            writer_module.LogDirWriter.hand_off_min_bytes = 0
        if mode == "write_behind_slow_disk":  # the broker's default: small ones to an idle
            writer_module.os = SlowDisk()     # log are written at once, others queue
        config = LogConfig(segment_bytes=20_000, index_interval_bytes=512)
        logs = DiskPartitionLogs(
            [sys.argv[1]], config_for=lambda _t: config, write_behind=mode != "synchronous",
        )
        log = logs.create("crash", 0, config, bytes(16))
        in_flight = deque()  # (first_offset, its PendingWrite or None), in append order
        i = log.log_end_offset
        while True:
            builder = BatchBuilder()
            for r in range(3):
                builder.append(1_000 + i, None, b"%d:%d|" % (i, r) * (1 + i % 40), [])
            info = log.append_as_leader(builder.build(), 0, 1_000 + i)
            in_flight.append((info.first_offset, log.pending_write()))
            # Acknowledge in order: what is written, and the oldest when too many wait.
            while in_flight and (
                len(in_flight) > MAX_IN_FLIGHT
                or in_flight[0][1] is None
                or in_flight[0][1].done
            ):
                first_offset, write = in_flight.popleft()
                if write is not None:
                    await log.wait_written(write)  # raises if the write failed
                print(first_offset, flush=True)
            i = info.last_offset + 1
            if i % 60 == 0:
                log.flush()
                log.set_high_watermark(log.log_end_offset)
                logs.checkpoint()

    asyncio.run(main())
    """
)


def expected_value(offset: int) -> bytes:
    base, r = offset - offset % 3, offset % 3
    return b"%d:%d|" % (base, r) * (1 + base % 40)


def child_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def stored_offsets(log_dir: Path) -> tuple[list[int], int]:
    """Reopen the crashed log dir: (every stored offset, checked, in order; log_end_offset)."""
    logs = DiskPartitionLogs([log_dir], config_for=lambda _t: CONFIG)
    try:
        log = logs.get(TOPIC, 0)
        assert log is not None
        data = log.read(log.log_start_offset, 1 << 30)
        offsets: list[int] = []
        for chunk in data.records:
            for header in iter_batches(bytes(chunk)):
                assert header.crc_valid()
                assert header.record_count == 3
                for record in iter_records(header):
                    offset = header.base_offset + record.offset_delta
                    assert record.value == expected_value(offset)
                    offsets.append(offset)
        return offsets, log.log_end_offset
    finally:
        logs.close()


def run_once(log_dir: Path, rng: random.Random, mode: str) -> int:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(log_dir), mode], stdout=subprocess.PIPE,
        env=child_env(),
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
    assert acked == sorted(set(acked)), "acknowledged out of order or twice"
    offsets, log_end_offset = stored_offsets(log_dir)
    assert offsets == sorted(set(offsets)), "not in order or not once"
    assert set(acked) <= set(offsets[::3]), "an acknowledged batch was lost"
    assert offsets == list(range(len(offsets))), "a gap in the offsets"
    assert log_end_offset == len(offsets), "the log does not continue after its last batch"
    return len(offsets)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(3))
def test_sigkill_loses_no_acked_batch(tmp_path: Path, seed: int, mode: str) -> None:
    rng = random.Random(seed)
    total = 0
    for _ in range(2):  # the second run restarts on the log the first crash left
        total = max(total, run_once(tmp_path, rng, mode))
    assert total > 0


@pytest.mark.soak
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(40))
def test_sigkill_loses_no_acked_batch_soak(tmp_path: Path, seed: int, mode: str) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(3):
        run_once(tmp_path, rng, mode)


STUCK_CHILD = textwrap.dedent(
    """
    import os
    import sys
    import threading
    import time

    import josef.storage.disk.writer as writer_module
    from josef.records.builder import BatchBuilder
    from josef.storage.api import LogConfig
    from josef.storage.disk import DiskPartitionLogs

    class StuckDisk:
        # The OS as the I/O thread sees it: once `stuck` is set, writev never returns.
        def __init__(self) -> None:
            self.stuck = threading.Event()

        def writev(self, fd: int, buffers: list[bytes]) -> int:
            if self.stuck.is_set():
                threading.Event().wait()
            return os.writev(fd, buffers)

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

    disk = StuckDisk()
    writer_module.os = disk
    writer_module.LogDirWriter.hand_off_min_bytes = 0  # small appends too go to the thread
    config = LogConfig(segment_bytes=20_000, index_interval_bytes=512)
    logs = DiskPartitionLogs([sys.argv[1]], config_for=lambda _t: config)
    log = logs.create("crash", 0, config, bytes(16))

    def append(i: int) -> int:
        builder = BatchBuilder()
        for r in range(3):
            builder.append(1_000 + i, None, b"%d:%d|" % (i, r) * (1 + i % 40), [])
        return log.append_as_leader(builder.build(), 0, 1_000 + i).last_offset + 1

    i = 0
    while i < 30:
        i = append(i)
    log.settle()
    print(log.log_end_offset, flush=True)  # all of it is in the file
    disk.stuck.set()
    while True:  # queue appends up to the roll, which must wait for them (killed there)
        i = append(i)
        print(i, flush=True)
    """
)


def test_no_offset_gap_after_a_crash_at_a_roll(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", STUCK_CHILD, str(tmp_path)], stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert child.stdout is not None
    lines: list[int] = []
    reader = threading.Thread(
        target=lambda: lines.extend(int(line) for line in child.stdout), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 30
        seen = -1
        while len(lines) != seen and time.monotonic() < deadline:  # until the child is stuck
            seen = len(lines)
            time.sleep(1.0)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    reader.join(5)
    written_end, queued_end = lines[0], lines[-1]
    assert queued_end > written_end, "no append was queued"
    offsets, log_end_offset = stored_offsets(tmp_path)
    assert offsets == list(range(written_end))
    assert log_end_offset == written_end
