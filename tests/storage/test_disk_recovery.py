"""Recovery after unclean shutdown: truncated and corrupted segment files (hypothesis)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.storage.api import LogConfig
from josef.storage.disk import DiskPartitionLog

NOW = 1_700_000_000_000
CONFIG = LogConfig(segment_bytes=900, index_interval_bytes=150)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_CRC_COVERED_FROM = 21  # attributes..end of batch; base_offset/length/epoch/magic/crc before


def make_log(directory: str, sizes: list[int], flush_after: int = -1) -> list[bytes]:
    """A log of one batch per size (records of that many bytes), fsynced after `flush_after`
    batches and closed without flushing the rest; returns the stored batches."""
    log = DiskPartitionLog.open(directory, CONFIG, now_ms=NOW)
    for i, size in enumerate(sizes):
        if i == flush_after:
            log.flush()
        builder = BatchBuilder()
        builder.append(NOW + i, b"k", bytes([i % 251]) * size, [])
        log.append_as_leader(builder.build(), 0, NOW)
    stored = read_all(log)
    if flush_after < 0:
        log.close()
    else:
        log.close_without_flush()
    return stored


def read_all(log: DiskPartitionLog) -> list[bytes]:
    data = log.read(log.log_start_offset, 1 << 30)
    return [bytes(h.view()) for r in data.records for h in iter_batches(bytes(r))]


def segment_files(directory: str) -> list[str]:
    return sorted(os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".log"))


def batch_layout(directory: str) -> list[tuple[str, int, int]]:
    """(file, position, size) of each stored batch, in log order."""
    layout = []
    for path in segment_files(directory):
        data = Path(path).read_bytes()
        layout += [(path, h.pos, h.size) for h in iter_batches(data)]
    return layout


def reopen_unclean(directory: str, recovery_point: int = 0) -> DiskPartitionLog:
    return DiskPartitionLog.open(directory, CONFIG, now_ms=NOW, recovery_point=recovery_point)


@SETTINGS
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=12),
    data=st.data(),
)
def test_truncated_log_file_recovers_whole_prefix(sizes: list[int], data: st.DataObject) -> None:
    directory = tempfile.mkdtemp(prefix="josef-recovery-")
    try:
        flushed = data.draw(st.integers(min_value=0, max_value=len(sizes)))
        stored = make_log(directory, sizes, flushed)
        layout = batch_layout(directory)
        # A crash only loses what was not fsynced: cut at or after the flushed batches.
        flushed_end = {p: pos + size for p, pos, size in layout[:flushed]}
        candidates = [p for p in segment_files(directory) if p not in flushed_end or (
            p == layout[flushed - 1][0])]
        victim = data.draw(st.sampled_from(candidates))
        cut = data.draw(
            st.integers(min_value=flushed_end.get(victim, 0), max_value=os.path.getsize(victim))
        )
        os.truncate(victim, cut)
        log = reopen_unclean(directory, recovery_point=flushed)  # one record per batch
        # Kafka's LogSegment.recover: the log is cut at the first invalid byte, i.e. a
        # partial batch cut the victim and every later segment; a victim that ends on a
        # batch boundary has no invalid byte, so later segments stay.
        kept = [
            i for i, (path, pos, size) in enumerate(layout)
            if path != victim or pos + size <= cut
        ]
        partial = any(path == victim and pos < cut < pos + size for path, pos, size in layout)
        if partial:
            kept = [i for i in kept if layout[i][0] <= victim]
        assert read_all(log) == [stored[i] for i in kept]
        survivors = len(kept)
        # The recovered log accepts appends at its end and reads them back.
        builder = BatchBuilder()
        builder.append(NOW, None, b"after", [])
        info = log.append_as_leader(builder.build(), 0, NOW)
        assert info.first_offset == log.log_end_offset - 1
        assert len(read_all(log)) == survivors + 1
        log.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@SETTINGS
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=12),
    data=st.data(),
)
def test_corrupt_byte_serves_nothing_after_it(sizes: list[int], data: st.DataObject) -> None:
    directory = tempfile.mkdtemp(prefix="josef-recovery-")
    try:
        stored = make_log(directory, sizes)
        layout = batch_layout(directory)
        index = data.draw(st.integers(min_value=0, max_value=len(layout) - 1))
        path, pos, size = layout[index]
        # Lengths, magic, CRC and everything the CRC covers; base_offset and leader epoch
        # are outside every check in Kafka's format too.
        within = data.draw(
            st.sampled_from([8, 9, 10, 11, 16, 17, 18, 19, 20])
            | st.integers(min_value=_CRC_COVERED_FROM, max_value=size - 1)
        )
        flip = data.draw(st.integers(min_value=1, max_value=255))
        with open(path, "r+b") as f:
            f.seek(pos + within)
            byte = f.read(1)[0]
            f.seek(pos + within)
            f.write(bytes([byte ^ flip]))
        log = reopen_unclean(directory)
        assert read_all(log) == stored[:index]
        assert log.log_end_offset == index
        log.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_garbage_tail_after_valid_batches(tmp_path: Path) -> None:
    stored = make_log(str(tmp_path), [50, 60, 70])
    last = segment_files(str(tmp_path))[-1]
    valid_size = os.path.getsize(last)
    with open(last, "ab") as f:
        f.write(os.urandom(100))
    log = reopen_unclean(str(tmp_path))
    assert read_all(log) == stored
    assert os.path.getsize(last) == valid_size
    log.close()


def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    """A crash after a file grew but before its data landed leaves zeros (ext4, xfs)."""
    stored = make_log(str(tmp_path), [10, 20])
    last = segment_files(str(tmp_path))[-1]
    with open(last, "ab") as f:
        f.write(bytes(4096))
    log = reopen_unclean(str(tmp_path))
    assert read_all(log) == stored
    log.close()


def test_recovery_resumes_at_last_index_entry_below_recovery_point(tmp_path: Path) -> None:
    """Start-up reads only the unflushed tail of the segment holding the recovery point: a
    flipped byte well below it is not even looked at, one above it cuts the log."""
    directory = str(tmp_path)
    stored = make_log(directory, [50] * 6, flush_after=4)  # index entries at offsets 2, 4
    (path,) = segment_files(directory)
    layout = batch_layout(directory)
    for victim in (1, 5):  # batch 1: below the resume point (offset 2); 5: unflushed
        _, pos, size = layout[victim]
        with open(path, "r+b") as f:
            f.seek(pos + size - 1)
            byte = f.read(1)[0]
            f.seek(pos + size - 1)
            f.write(bytes([byte ^ 0xFF]))
    log = reopen_unclean(directory, recovery_point=4)
    assert log.log_end_offset == 5
    recovered = read_all(log)
    assert recovered[0] == stored[0] and recovered[2:] == stored[2:5]
    assert recovered[1] != stored[1]  # served as found: below the recovery point
    log.close()
