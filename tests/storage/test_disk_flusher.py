"""Group commit: one fsync run per loop turn, on a worker thread; flush.messages / flush.ms."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog
from josef.storage.flusher import GroupCommit
from josef.storage.memory import MemoryPartitionLog

NOW = 1_700_000_000_000


class CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that counts the runs it is given and the threads they ran on."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.runs = 0
        self.threads: set[int] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.runs += 1

        def call() -> Any:
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(call)


def batch() -> bytes:
    builder = BatchBuilder()
    builder.append(NOW, None, b"v" * 100, [])
    return builder.build()


def open_logs(tmp_path: Path, n: int, config: LogConfig | None = None) -> list[DiskPartitionLog]:
    return [
        DiskPartitionLog.open(str(tmp_path / f"t-{i}"), config or LogConfig(), now_ms=NOW)
        for i in range(n)
    ]


def test_callers_in_one_turn_share_one_run(tmp_path: Path) -> None:
    logs = open_logs(tmp_path, 3)
    executor = CountingExecutor()
    commit = GroupCommit(executor)

    async def main() -> None:
        waits = []
        for log in logs:
            for _ in range(5):
                info = log.append_as_leader(batch(), 0, NOW)
                waits.append(commit.wait_durable(log, info.last_offset + 1))
        await asyncio.gather(*waits)

    asyncio.run(main())
    assert executor.runs == 1
    assert threading.main_thread().ident not in executor.threads
    assert [log.recovery_point for log in logs] == [5, 5, 5]
    for log in logs:
        log.close()
    executor.shutdown()


def test_waiters_during_a_run_share_the_next_one(tmp_path: Path) -> None:
    (log,) = open_logs(tmp_path, 1)
    executor = CountingExecutor()
    commit = GroupCommit(executor)

    async def appender(n: int) -> None:
        for _ in range(n):
            info = log.append_as_leader(batch(), 0, NOW)
            await commit.wait_durable(log, info.last_offset + 1)

    async def main() -> None:
        await asyncio.gather(*(appender(10) for _ in range(8)))

    asyncio.run(main())
    assert log.recovery_point == log.log_end_offset == 80
    assert executor.runs <= 11  # about one run per round of the 8 appenders, not 80
    log.close()
    executor.shutdown()


def test_flush_messages_one_is_fsync_before_ack(tmp_path: Path) -> None:
    (log,) = open_logs(tmp_path, 1, LogConfig(flush_messages=1))
    commit = GroupCommit()

    async def main() -> None:
        for _ in range(3):
            log.append_as_leader(batch(), 0, NOW)
            await commit.after_append(log, NOW)
            assert log.recovery_point == log.log_end_offset

    asyncio.run(main())
    log.close()


def test_flush_messages_n_and_flush_ms(tmp_path: Path) -> None:
    (counted,) = open_logs(tmp_path, 1, LogConfig(flush_messages=3))
    (timed,) = open_logs(tmp_path / "b", 1, LogConfig(flush_ms=100))
    commit = GroupCommit()

    async def main() -> None:
        for i in range(1, 7):
            counted.append_as_leader(batch(), 0, NOW)
            await commit.after_append(counted, NOW)
            assert counted.recovery_point == (i // 3) * 3
        timed.append_as_leader(batch(), 0, NOW)
        await commit.after_append(timed, NOW)
        await commit.flush_expired([timed, counted], NOW + 50)
        assert timed.recovery_point == 0
        await commit.flush_expired([timed, counted], NOW + 100)
        assert timed.recovery_point == 1

    asyncio.run(main())
    counted.close()
    timed.close()


def test_memory_log_is_durable_at_once() -> None:
    log = MemoryPartitionLog(LogConfig())
    log.append_as_leader(batch(), 0, NOW)

    async def main() -> None:
        await GroupCommit().wait_durable(log, 1)

    asyncio.run(main())


def test_roll_starts_a_background_flush(tmp_path: Path) -> None:
    """Kafka flushes the segments a roll closed without making the producer wait."""
    (log,) = open_logs(tmp_path, 1, LogConfig(segment_bytes=1000))
    commit = GroupCommit()

    async def main() -> None:
        while len(log.segment_base_offsets) < 3:
            log.append_as_leader(batch(), 0, NOW)
            await commit.after_append(log, NOW)
            assert log.recovery_point < log.log_end_offset  # nobody waited for an fsync
        for _ in range(20):  # let the background run finish
            await asyncio.sleep(0.01)
            if log.recovery_point >= log.active_base_offset:
                break
        assert log.recovery_point >= log.active_base_offset

    asyncio.run(main())
    log.close()
