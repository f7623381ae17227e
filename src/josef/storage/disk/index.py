"""Sparse per-segment indexes: offset -> file position, and timestamp -> offset.

File layouts are Kafka's: `.index` holds 8-byte entries (relative offset int32, position
int32), `.timeindex` 12-byte entries (timestamp int64, relative offset int32), big-endian.
Entries live in memory (arrays, searched with bisect); the segment appends the ones not yet
written (`pending_bytes`, `write_pending`) when the log flushes, and fsyncs the files only
once the segment is sealed: an index is a cache of the `.log` file, so entries need not be
durable (after a power loss `load` keeps a valid prefix and the log headers rebuild the rest).

Contract: entries are strictly increasing in both fields (offset index: relative offset and
position; time index: timestamp and relative offset). `load` returns None for a file that
breaks that or points past the log, and the caller rebuilds the index from the log.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_left, bisect_right

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
OFFSET_ENTRY_SIZE = _OFFSET_ENTRY.size  # 8, Kafka's OffsetIndex entry
TIME_ENTRY_SIZE = _TIME_ENTRY.size  # 12, Kafka's TimeIndex entry


class OffsetIndex:
    """Relative offset of a batch's base_offset -> position of that batch in the segment."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.offsets = array("i")
        self.positions = array("i")
        self.persisted = 0  # entries already written to the file

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def is_full(self) -> bool:
        return len(self.offsets) >= self.max_entries

    def append(self, relative_offset: int, position: int) -> None:
        self.offsets.append(relative_offset)
        self.positions.append(position)

    def lookup(self, relative_offset: int) -> int:
        """Position of the last indexed batch starting at or before relative_offset (or 0)."""
        i = bisect_right(self.offsets, relative_offset)
        return self.positions[i - 1] if i else 0

    def position_at_or_after(self, relative_offset: int) -> int | None:
        """Position of the first indexed batch starting at or after relative_offset."""
        i = bisect_left(self.offsets, relative_offset)
        return self.positions[i] if i < len(self.offsets) else None

    def last_position(self) -> int:
        return self.positions[-1] if self.positions else 0

    def truncate_entries(self, count: int) -> None:
        del self.offsets[count:]
        del self.positions[count:]
        self.persisted = min(self.persisted, count)

    def pending_bytes(self) -> bytes:
        out = bytearray()
        for i in range(self.persisted, len(self.offsets)):
            out += _OFFSET_ENTRY.pack(self.offsets[i], self.positions[i])
        return bytes(out)

    @classmethod
    def load(
        cls, path: str, max_entries: int, log_size: int, below: int | None = None
    ) -> OffsetIndex | None:
        """The index stored at path, or None when missing or corrupt (rebuild it).

        With `below` (a relative offset), only the entries under it are wanted: the valid
        prefix is returned and whatever follows (possibly never fsynced) is ignored."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        if len(data) % OFFSET_ENTRY_SIZE:
            if below is None:
                return None
            data = data[: len(data) - len(data) % OFFSET_ENTRY_SIZE]
        index = cls(max_entries)
        prev_offset, prev_position = -1, -1
        for offset, position in _OFFSET_ENTRY.iter_unpack(data):
            if offset <= prev_offset or position <= prev_position or position >= log_size:
                if below is None:
                    return None
                break
            if below is not None and offset >= below:
                break
            index.append(offset, position)
            prev_offset, prev_position = offset, position
        index.persisted = len(index)
        return index


class TimeIndex:
    """Max timestamp so far -> relative offset of the batch that first held it."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.timestamps = array("q")
        self.offsets = array("i")
        self.persisted = 0

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def is_full(self) -> bool:
        return len(self.timestamps) >= self.max_entries

    def maybe_append(self, timestamp: int, relative_offset: int) -> None:
        """Kafka's TimeIndex.maybeAppend: only a larger timestamp makes a new entry."""
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        if self.offsets and relative_offset <= self.offsets[-1]:
            return
        self.timestamps.append(timestamp)
        self.offsets.append(relative_offset)

    def lookup(self, timestamp: int) -> int:
        """Relative offset to start scanning from for the first batch with max >= timestamp:
        every batch before the entry with the largest timestamp <= target is older."""
        i = bisect_right(self.timestamps, timestamp)
        return self.offsets[i - 1] if i else 0

    def last_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def truncate_entries(self, count: int) -> None:
        del self.timestamps[count:]
        del self.offsets[count:]
        self.persisted = min(self.persisted, count)

    def pending_bytes(self) -> bytes:
        out = bytearray()
        for i in range(self.persisted, len(self.timestamps)):
            out += _TIME_ENTRY.pack(self.timestamps[i], self.offsets[i])
        return bytes(out)

    @classmethod
    def load(
        cls, path: str, max_entries: int, max_relative_offset: int, prefix: bool = False
    ) -> TimeIndex | None:
        """Like `OffsetIndex.load`; with `prefix`, the valid entries up to
        max_relative_offset are returned and the rest ignored."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        if len(data) % TIME_ENTRY_SIZE:
            if not prefix:
                return None
            data = data[: len(data) - len(data) % TIME_ENTRY_SIZE]
        index = cls(max_entries)
        prev_ts, prev_offset = -(2**63), -1
        for timestamp, offset in _TIME_ENTRY.iter_unpack(data):
            if timestamp <= prev_ts or offset <= prev_offset or offset > max_relative_offset:
                if not prefix:
                    return None
                break
            index.timestamps.append(timestamp)
            index.offsets.append(offset)
            prev_ts, prev_offset = timestamp, offset
        index.persisted = len(index)
        return index


def write_pending(fd: int, data: bytes, size_before: int) -> None:
    """Append index entries; on failure cut the file back so it never holds half an entry."""
    if not data:
        return
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(28, "short write to index file")
    except OSError:
        os.ftruncate(fd, size_before)
        raise
