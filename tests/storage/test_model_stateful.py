"""Random operation sequences on every engine give the answers of a plain model.

The model is a list of segments, each a list of (offset, stored batch bytes), plus
log_start_offset, log_end_offset and high_watermark; its rules are Kafka's, written as plainly
as possible. The engine under test runs with segment.bytes = 1 KiB so it rolls often, and the
disk engine is restarted (closed and reopened from its directory) at random points.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from josef.records.batch import BatchHeader, iter_batches
from josef.storage.api import LogConfig
from josef.storage.errors import OffsetOutOfRange
from tests.storage.conftest import LogFactory, build_batch, disk_logs_class

SEGMENT_BYTES = 512  # tiny, so that segments roll every few appends
CONFIG = LogConfig(segment_bytes=SEGMENT_BYTES, retention_ms=-1, retention_bytes=-1)
EPOCHS = st.integers(min_value=0, max_value=5)
VALUES = st.lists(st.binary(min_size=20, max_size=60), min_size=1, max_size=5)  # 2-6 per segment
ADVANCE = st.integers(min_value=0, max_value=50)  # ms between appends


@dataclass
class ModelSegment:
    base_offset: int
    batches: list[tuple[int, bytes]] = field(default_factory=list)  # (base_offset, bytes)

    @property
    def size(self) -> int:
        return sum(len(b) for _, b in self.batches)

    @property
    def max_timestamp(self) -> int:
        return max((BatchHeader(b).max_timestamp for _, b in self.batches), default=-1)


def next_offset(batch: bytes) -> int:
    return BatchHeader(batch).next_offset


class LogMachine(RuleBasedStateMachine):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="josef-model-"))
        self.engine = LogFactory(self.kind, self.dir)
        self.log = self.engine.open(CONFIG)
        self.segments = [ModelSegment(0)]
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.now_ms = 1_000_000

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- model helpers ------------------------------------------------------------------------
    def batches(self) -> list[tuple[int, bytes]]:
        return [b for s in self.segments for b in s.batches]

    def truncation_points(self) -> list[int]:
        """Where truncation leaves log_end_offset at the end of the stored data: the first
        segment's base and the end of each batch. Elsewhere (inside a batch, or inside an
        offset gap) Kafka sets log_end_offset past the data, which a restart cannot
        reproduce; test_conformance covers truncation inside a batch without restarts."""
        return [self.segments[0].base_offset] + [next_offset(b) for _, b in self.batches()]

    def delete_segments(self, predicate: Callable[[ModelSegment, int], bool]) -> int:
        """Oldest first, while predicate(segment, next segment's base_offset); never the
        active segment, never past the high watermark."""
        count = 0
        while len(self.segments) > 1:
            segment, next_base = self.segments[0], self.segments[1].base_offset
            if next_base > self.high_watermark or not predicate(segment, next_base):
                break
            del self.segments[0]
            count += 1
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        return count

    # --- rules --------------------------------------------------------------------------------
    def store(self, stored: bytes) -> None:
        """Kafka's roll-on-size, then the batch goes to the active segment."""
        base_offset = BatchHeader(stored).base_offset
        active = self.segments[-1]
        if active.batches and active.size + len(stored) > SEGMENT_BYTES:
            active = ModelSegment(base_offset)
            self.segments.append(active)
        active.batches.append((base_offset, stored))
        self.log_end_offset = next_offset(stored)

    @rule(values=VALUES, epoch=EPOCHS, advance=ADVANCE)
    def append(self, values: list[bytes], epoch: int, advance: int) -> None:
        self.now_ms += advance
        produced = build_batch(values, [self.now_ms] * len(values))
        info = self.log.append_as_leader(produced, epoch, self.now_ms)
        assert (info.first_offset, info.last_offset, info.log_start_offset) == (
            self.log_end_offset,
            self.log_end_offset + len(values) - 1,
            self.log_start_offset,
        )
        stored = bytearray(produced)
        struct.pack_into(">qii", stored, 0, self.log_end_offset, len(produced) - 12, epoch)
        self.store(bytes(stored))

    @rule(values=VALUES, gap=st.integers(min_value=0, max_value=3), advance=ADVANCE)
    def replicate(self, values: list[bytes], gap: int, advance: int) -> None:
        """A follower append: offsets as given, gaps allowed (compacted leaders have them)."""
        self.now_ms += advance
        base_offset = self.log_end_offset + gap
        batch = build_batch(values, [self.now_ms] * len(values), base_offset=base_offset)
        info = self.log.append_as_follower(batch, self.now_ms)
        assert (info.first_offset, info.last_offset) == (
            base_offset,
            base_offset + len(values) - 1,
        )
        self.store(batch)

    @rule(data=st.data(), min_one_batch=st.booleans(), to_hw=st.booleans())
    def read(self, data: st.DataObject, min_one_batch: bool, to_hw: bool) -> None:
        offset = data.draw(
            st.integers(min_value=self.log_start_offset - 2, max_value=self.log_end_offset + 2)
        )
        # Exact fits matter most: sums of consecutive batch sizes, give or take a byte.
        sizes = [len(b) for _, b in self.batches()]
        fits = [
            sum(sizes[i:j]) + d
            for i in range(len(sizes))
            for j in range(i + 1, len(sizes) + 1)
            for d in (-1, 0, 1)
        ]
        max_bytes = data.draw(
            st.integers(min_value=0, max_value=3 * SEGMENT_BYTES) | st.sampled_from(fits or [0])
        )
        max_offset = self.high_watermark if to_hw else None
        if not self.log_start_offset <= offset <= self.log_end_offset:
            with pytest.raises(OffsetOutOfRange):
                self.log.read(offset, max_bytes, max_offset, min_one_batch)
            return
        got = self.log.read(offset, max_bytes, max_offset, min_one_batch)
        limit = self.log_end_offset if max_offset is None else max_offset
        expected: list[bytes] = []
        size = 0
        for _, batch in self.batches():
            if next_offset(batch) <= offset:
                continue
            if next_offset(batch) > limit:
                break
            if size + len(batch) > max_bytes and not (min_one_batch and not expected):
                break
            expected.append(batch)
            size += len(batch)
        assert b"".join(bytes(r) for r in got.records) == b"".join(expected)
        assert got.size == size
        assert (got.log_start_offset, got.log_end_offset, got.high_watermark) == (
            self.log_start_offset,
            self.log_end_offset,
            self.high_watermark,
        )

    @rule(data=st.data())
    def set_high_watermark(self, data: st.DataObject) -> None:
        # Mostly the log end, as a single-node broker does once appends are durable.
        offset = data.draw(
            st.just(self.log_end_offset)
            | st.integers(min_value=0, max_value=self.log_end_offset + 2)
        )
        self.log.set_high_watermark(offset)
        self.high_watermark = min(max(offset, self.log_start_offset), self.log_end_offset)

    @rule(data=st.data())
    def truncate_to(self, data: st.DataObject) -> None:
        offset = data.draw(st.sampled_from(self.truncation_points()))
        self.log.truncate_to(offset)
        if offset >= self.log_end_offset:
            return
        self.segments = [s for s in self.segments if s.base_offset <= offset]
        active = self.segments[-1]
        active.batches = [(o, b) for o, b in active.batches if o < offset]
        self.log_start_offset = min(self.log_start_offset, offset)
        self.log_end_offset = offset
        self.high_watermark = min(self.high_watermark, offset)

    @rule()
    def roll(self) -> None:
        self.log.roll(self.now_ms)
        if self.segments[-1].batches:
            self.segments.append(ModelSegment(self.log_end_offset))
        else:
            self.segments[-1].base_offset = self.log_end_offset

    @rule(data=st.data())
    def delete_records_before(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(min_value=0, max_value=self.high_watermark + 2))
        if offset > self.high_watermark:
            with pytest.raises(OffsetOutOfRange):
                self.log.delete_records_before(offset)
            return
        self.log_start_offset = max(self.log_start_offset, offset)
        self.delete_segments(lambda _segment, next_base: next_base <= self.log_start_offset)
        assert self.log.delete_records_before(offset) == self.log_start_offset

    @rule(data=st.data(), hw_to_end=st.booleans())
    def retention(self, data: st.DataObject, hw_to_end: bool) -> None:
        if hw_to_end:  # retention only deletes below the high watermark: often let it act
            self.log.set_high_watermark(self.log_end_offset)
            self.high_watermark = self.log_end_offset
        # Exact fits matter most: limits at a segment's age / the bytes after it, +- 1.
        ages = [self.now_ms - s.max_timestamp + d for s in self.segments[:-1] for d in (-1, 0, 1)]
        retention_ms = data.draw(st.just(-1) | st.sampled_from(ages or [-1]))
        kept = [
            sum(s.size for s in self.segments[i:]) + d
            for i in range(len(self.segments))
            for d in (-1, 0, 1)
        ]
        total = sum(s.size for s in self.segments)
        retention_bytes = data.draw(
            st.integers(min_value=-1, max_value=total + 10) | st.sampled_from(kept)
        )
        config = replace(CONFIG, retention_ms=retention_ms, retention_bytes=retention_bytes)
        self.log.update_config(config)
        deleted = 0
        if retention_ms >= 0:
            deleted += self.delete_segments(
                lambda segment, _next_base: self.now_ms - segment.max_timestamp > retention_ms
            )
        total = sum(s.size for s in self.segments)
        if retention_bytes >= 0 and total >= retention_bytes:
            excess = total - retention_bytes

            def over_size(segment: ModelSegment, _next_base: int) -> bool:
                nonlocal excess
                if excess < segment.size:
                    return False
                excess -= segment.size
                return True

            deleted += self.delete_segments(over_size)
        deleted += self.delete_segments(
            lambda _segment, next_base: next_base <= self.log_start_offset
        )
        assert self.log.apply_retention(self.now_ms) == deleted
        self.log.update_config(CONFIG)

    @rule()
    def flush(self) -> None:
        self.log.flush()
        assert self.log.recovery_point == self.log_end_offset

    @precondition(lambda self: self.kind != "memory")
    @rule()
    def restart(self) -> None:
        self.log = self.engine.reopen()

    # --- invariants ---------------------------------------------------------------------------
    @invariant()
    def offsets_match(self) -> None:
        assert self.log.log_start_offset == self.log_start_offset
        assert self.log.log_end_offset == self.log_end_offset
        assert self.log.high_watermark == self.high_watermark
        assert self.log.size_bytes == sum(s.size for s in self.segments)
        assert self.log.recovery_point <= self.log_end_offset

    @invariant()
    def full_read_matches(self) -> None:
        expected = [b for _, b in self.batches() if next_offset(b) > self.log_start_offset]
        got: list[bytes] = []
        offset = self.log_start_offset
        while offset < self.log_end_offset:
            data = self.log.read(offset, 1 << 20)
            if not data.records:
                break
            for header in (h for r in data.records for h in iter_batches(bytes(r))):
                got.append(bytes(header.view()))
                offset = header.next_offset
        assert got == expected


def machine_for(kind: str) -> type[LogMachine]:
    return type(f"{kind.capitalize()}LogMachine", (LogMachine,), {"kind": kind})


NORMAL = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SOAK = settings(NORMAL, max_examples=600, stateful_step_count=80)  # about 3 minutes
NO_DISK = pytest.mark.skipif(disk_logs_class() is None, reason="josef.storage.disk not there yet")


def test_memory_engine_follows_the_model() -> None:
    machine = machine_for("memory")
    machine.TestCase.settings = NORMAL
    machine.TestCase().runTest()


@NO_DISK
def test_disk_engine_follows_the_model() -> None:
    machine = machine_for("disk")
    machine.TestCase.settings = NORMAL
    machine.TestCase().runTest()


@pytest.mark.soak
@pytest.mark.timeout(900)  # about 3.5 minutes for both engines on an idle 2-core machine
@pytest.mark.parametrize("kind", ["memory", pytest.param("disk", marks=NO_DISK)])
def test_engines_follow_the_model_soak(kind: str) -> None:
    machine = machine_for(kind)
    machine.TestCase.settings = SOAK
    machine.TestCase().runTest()
