"""Fixtures that give each conformance test a fresh engine: memory and disk, parametrized.

`engine` is a `LogFactory`: `open(config)` makes an empty partition log and `reopen()` closes
it and opens it again from what it stored (disk: the same directory; memory: the test is
skipped, a memory log has nothing to reopen from). The disk engine joins the run as soon as
`josef.storage.disk` imports. `build_batch` makes valid magic-2 batches for the tests.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from josef.records.batch import Compression, TimestampType
from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig, PartitionLog, PartitionLogs
from josef.storage.memory import MemoryPartitionLogs

TOPIC = "conformance"
PARTITION = 0
TOPIC_ID = bytes(range(16))
ENGINES = ("memory", "disk")


def build_batch(
    values: Sequence[bytes | None],
    timestamps: Sequence[int] | None = None,
    keys: Sequence[bytes | None] | None = None,
    base_offset: int = 0,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    compression: Compression = Compression.NONE,
) -> bytes:
    """One batch of records as a producer sends it (base_offset 0 by default)."""
    if timestamps is None:
        timestamps = [1_000 + i for i in range(len(values))]
    if keys is None:
        keys = [None] * len(values)
    builder = BatchBuilder(
        base_offset=base_offset, timestamp_type=timestamp_type, compression=compression
    )
    for timestamp, key, value in zip(timestamps, keys, values, strict=True):
        builder.append(timestamp, key, value, [])
    return builder.build()


def disk_logs_class() -> type | None:
    """`DiskPartitionLogs` once the disk engine imports, else None."""
    try:
        return importlib.import_module("josef.storage.disk.manager").DiskPartitionLogs
    except ImportError:
        return None


class LogFactory:
    """Opens one partition log of the chosen engine, and reopens it (disk only)."""

    def __init__(self, kind: str, log_dir: Path) -> None:
        self.kind = kind
        self.log_dir = log_dir
        self._logs: PartitionLogs | None = None
        self.config = LogConfig()

    def _new_logs(self) -> PartitionLogs:
        if self.kind == "memory":
            return MemoryPartitionLogs()
        cls = disk_logs_class()
        assert cls is not None
        # A reopened log gets its config from config_for, as the broker's topic configs.
        return cls([self.log_dir], config_for=lambda _topic: self.config)

    def open(self, config: LogConfig | None = None) -> PartitionLog:
        """A new, empty log with `config` (Kafka's defaults when None)."""
        self.config = config or LogConfig()
        self._logs = self._new_logs()
        return self._logs.create(TOPIC, PARTITION, self.config, TOPIC_ID)

    @property
    def logs(self) -> PartitionLogs:
        assert self._logs is not None, "open() first"
        return self._logs

    def open_partition(self, partition: int) -> PartitionLog:
        """Another empty log beside the one `open` made, with the same config."""
        assert self._logs is not None
        return self._logs.create(TOPIC, partition, self.config, TOPIC_ID)

    def reopen(self) -> PartitionLog:
        """Close everything and open the same log again from what it stored."""
        if self.kind == "memory":
            pytest.skip("a memory log has nothing to reopen from")
        assert self._logs is not None
        self._logs.close()
        self._logs = self._new_logs()
        log = self._logs.get(TOPIC, PARTITION)
        assert log is not None, "the reopened log dir lost the partition"
        return log

    def close(self) -> None:
        if self._logs is not None:
            self._logs.close()
            self._logs = None


def engine_params() -> list[object]:
    return [
        pytest.param(
            kind,
            marks=pytest.mark.skipif(
                kind == "disk" and disk_logs_class() is None,
                reason="josef.storage.disk does not import yet",
            ),
        )
        for kind in ENGINES
    ]


@pytest.fixture(params=engine_params())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogFactory]:
    factory = LogFactory(request.param, tmp_path)
    yield factory
    factory.close()


@pytest.fixture(autouse=True)
def every_append_written_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """With write-behind, hand every append to the writer's thread, small ones too (the
    broker writes small appends to an idle log at once: `LogDirWriter.hand_off_min_bytes`),
    so that these tests exercise the writer; test_write_behind covers the threshold."""
    writer_module = importlib.import_module("josef.storage.disk.writer")
    monkeypatch.setattr(writer_module.LogDirWriter, "hand_off_min_bytes", 0)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs, for disk-full tests (skipped where mount is not permitted)."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        # Lazily when busy: a failed test may leave a log's files open.
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
