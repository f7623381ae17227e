"""The leader-epoch cache of one partition log and its `leader-epoch-checkpoint` file
(KIP-101, KIP-279): which leader epoch started at which offset.

Semantics are Kafka's LeaderEpochFileCache:
- `assign(epoch, start_offset)`: a no-op when `epoch` is the latest epoch and `start_offset`
  is not below its start; otherwise entries at the end with epoch >= `epoch` or
  start_offset >= `start_offset` are removed first, so epochs and offsets both increase.
- `end_offset_for(requested_epoch, log_end_offset)`: OffsetForLeaderEpoch. The latest epoch
  ends at log_end_offset; an older epoch ends where the next higher epoch starts, answered
  with the largest epoch <= requested; a requested epoch below every known one answers
  (requested_epoch, start of the first epoch); UNDEFINED (-1, -1) for an empty cache, a
  requested epoch above the latest, or requested_epoch -1.
- `truncate_from_end(end_offset)` removes epochs starting at or after it (log truncation);
  `truncate_from_start(start_offset)` drops epochs wholly before it and moves the start of
  the one containing it (log start offset moved).

Every change rewrites the checkpoint atomically (temp file, fsync, rename, fsync dir).
Changes happen when a new leader epoch first appends, on truncation and on retention, so
the fsync is rare; it is not on the per-append path. Format (Kafka's CheckpointFile):
"0\\n<count>\\n<epoch> <start_offset>\\n...".
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import NamedTuple

from josef.protocol.errors import ErrorCode
from josef.storage.errors import StorageError
from josef.storage.files import write_atomically

LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
CHECKPOINT_VERSION = 0
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
# A partition sees a new leader epoch per leader change; Kafka bounds nothing here, but a
# checkpoint claiming more entries than this is corrupt rather than real.
MAX_CHECKPOINT_ENTRIES = 1_000_000


class CorruptCheckpoint(StorageError):
    """A leader-epoch-checkpoint that does not parse (Kafka fails the log dir)."""

    error_code = ErrorCode.KAFKA_STORAGE_ERROR


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochCache:
    def __init__(self, path: Path | None) -> None:
        """`path` is the checkpoint file (`<partition dir>/leader-epoch-checkpoint`); it is
        read if present. None keeps the cache in memory only (the memory engine)."""
        self.path = Path(path) if path is not None else None
        self._entries: list[EpochEntry] = (
            read_checkpoint(self.path) if self.path is not None and self.path.exists() else []
        )
        self._epochs: list[int] = [e.epoch for e in self._entries]  # bisect keys

    @property
    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int | None:
        return self._entries[-1].epoch if self._entries else None

    @property
    def latest_entry(self) -> EpochEntry | None:
        return self._entries[-1] if self._entries else None

    @property
    def earliest_entry(self) -> EpochEntry | None:
        return self._entries[0] if self._entries else None

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset`; True when the cache changed."""
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"invalid leader epoch {epoch} at offset {start_offset}")
        latest = self.latest_entry
        if latest is not None and latest.epoch == epoch and start_offset >= latest.start_offset:
            return False
        while self._entries and (
            self._entries[-1].epoch >= epoch or self._entries[-1].start_offset >= start_offset
        ):
            self._entries.pop()
            self._epochs.pop()
        self._entries.append(EpochEntry(epoch, start_offset))
        self._epochs.append(epoch)
        self._persist()
        return True

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as OffsetForLeaderEpoch answers it; see the module docstring."""
        undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return undefined
        if requested_epoch == self._epochs[-1]:
            return requested_epoch, log_end_offset
        higher = bisect.bisect_right(self._epochs, requested_epoch)
        if higher == len(self._entries):
            return undefined
        next_start = self._entries[higher].start_offset
        if higher == 0:
            # The requested epoch's data was removed; the follower starts from here.
            return requested_epoch, next_start
        return self._entries[higher - 1].epoch, next_start

    def epoch_for_offset(self, offset: int) -> int | None:
        """The epoch of the leader that wrote `offset` (ListOffsets leader_epoch)."""
        i = bisect.bisect_right([e.start_offset for e in self._entries], offset)
        return self._entries[i - 1].epoch if i else None

    def truncate_from_end(self, end_offset: int) -> None:
        """Remove epochs that start at or after `end_offset` (the log was truncated there)."""
        if end_offset < 0 or not self._entries or self._entries[-1].start_offset < end_offset:
            return
        while self._entries and self._entries[-1].start_offset >= end_offset:
            self._entries.pop()
            self._epochs.pop()
        self._persist()

    def truncate_from_start(self, start_offset: int) -> None:
        """Forget epochs wholly before `start_offset`; the epoch containing it now starts
        there (the log start offset moved)."""
        removed = 0
        while removed < len(self._entries) and self._entries[removed].start_offset <= start_offset:
            removed += 1
        if not removed:
            return
        first = EpochEntry(self._entries[removed - 1].epoch, start_offset)
        self._entries[: removed] = [first]
        self._epochs[: removed] = [first.epoch]
        self._persist()

    def clear(self) -> None:
        self._entries.clear()
        self._epochs.clear()
        self._persist()

    def _persist(self) -> None:
        if self.path is not None:
            write_checkpoint(self.path, self._entries)


def write_checkpoint(path: Path, entries: list[EpochEntry]) -> None:
    lines = [str(CHECKPOINT_VERSION), str(len(entries))]
    lines += [f"{e.epoch} {e.start_offset}" for e in entries]
    data = ("\n".join(lines) + "\n").encode()
    write_atomically(path, data)


def read_checkpoint(path: Path) -> list[EpochEntry]:
    """Parse a checkpoint strictly: version 0, a count that matches, increasing epochs and
    offsets; anything else raises CorruptCheckpoint."""
    try:
        lines = path.read_text(encoding="ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise CorruptCheckpoint(f"{path} is not text: {exc}") from None
    if lines and lines[-1] == "":
        lines.pop()
    try:
        if len(lines) < 2 or int(lines[0]) != CHECKPOINT_VERSION:
            raise CorruptCheckpoint(f"{path}: missing or unknown version line")
        count = int(lines[1])
        if not 0 <= count <= MAX_CHECKPOINT_ENTRIES or count != len(lines) - 2:
            raise CorruptCheckpoint(f"{path}: count {count} but {len(lines) - 2} entries")
        entries: list[EpochEntry] = []
        for line in lines[2:]:
            fields = line.split(" ")
            if len(fields) != 2:
                raise CorruptCheckpoint(f"{path}: malformed entry {line!r}")
            entry = EpochEntry(int(fields[0]), int(fields[1]))
            if entry.epoch < 0 or entry.start_offset < 0 or (
                entries and (entry.epoch <= entries[-1].epoch
                             or entry.start_offset < entries[-1].start_offset)
            ):
                raise CorruptCheckpoint(f"{path}: entry {line!r} out of order or negative")
            entries.append(entry)
    except ValueError as exc:
        raise CorruptCheckpoint(f"{path}: {exc}") from None
    return entries
