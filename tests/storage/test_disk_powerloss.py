"""Simulated power loss: bytes not fsynced are dropped (files cut back to their size at the
last fsync, files created since then gone, index files possibly stale); every append that an
fsync-before-ack wait acknowledged must survive, intact and in order."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.flusher import GroupCommit

NOW = 1_700_000_000_000
CONFIG = LogConfig(segment_bytes=3000, index_interval_bytes=200, flush_messages=1)


def batch(i: int, rng: random.Random) -> bytes:
    builder = BatchBuilder()
    builder.append(NOW + i, None, bytes([i % 256]) * rng.randint(1, 400), [])
    return builder.build()


def file_sizes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in directory.iterdir()}


def power_loss(directory: Path, synced: dict[str, int], rng: random.Random) -> None:
    for path in directory.iterdir():
        if path.name not in synced:
            path.unlink()  # created after the last fsync (its directory entry was not synced)
        elif path.suffix == ".log":
            # Some of the unsynced tail may have reached the disk; the rest is lost.
            size = path.stat().st_size
            os.truncate(path, rng.randint(synced[path.name], max(size, synced[path.name])))
        else:
            os.truncate(path, min(path.stat().st_size, synced[path.name]))


@pytest.mark.parametrize("seed", range(6))
def test_fsync_acked_appends_survive_power_loss(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    directory = tmp_path / "t-0"
    log = DiskPartitionLog.open(str(directory), CONFIG, now_ms=NOW)
    commit = GroupCommit()
    acked: list[bytes] = []
    synced: dict[str, int] = {}
    recovery_point = 0

    async def produce() -> None:
        nonlocal synced, recovery_point
        for i in range(rng.randint(5, 40)):
            produced = batch(i, rng)
            info = log.append_as_leader(produced, 0, NOW)
            if rng.random() < 0.7:  # acks with fsync-before-ack; others stay unsynced
                await commit.after_append(log, NOW)
                assert log.recovery_point == info.last_offset + 1
                acked.append(produced[61:])
                synced, recovery_point = file_sizes(directory), log.recovery_point

    asyncio.run(produce())
    log.close_without_flush()
    power_loss(directory, synced, rng)
    log = DiskPartitionLog.open(str(directory), CONFIG, now_ms=NOW, recovery_point=recovery_point)
    data = log.read(0, 1 << 30)
    stored = [bytes(h.view())[61:] for r in data.records for h in iter_batches(bytes(r))]
    offsets = [h.base_offset for r in data.records for h in iter_batches(bytes(r))]
    assert offsets == list(range(len(offsets)))
    assert log.log_end_offset >= recovery_point
    # Every fsync-acked batch is there, in order; a batch appended but not acked may be too.
    it = iter(stored)
    assert all(any(s == a for s in it) for a in acked)
    log.close()
