"""The aborted-transaction index of one segment (`<20-digit base offset>.txnindex`).

Kafka's TransactionIndex layout: fixed 34-byte entries, big-endian,
    version int16 (0) | producer_id int64 | first_offset int64 | last_offset int64 |
    last_stable_offset int64
one per aborted transaction whose ABORT marker (at `last_offset`) lives in this segment,
appended in marker order (last_offset strictly increasing).

Contract for the log: `append(AbortedTxn.from_completed(txn))` for each aborted
`CompletedTxn` of an append; a Fetch at read_committed calls `collect_aborted(fetch_offset,
upper_bound_offset)` on this segment and the following ones until a result `is_complete`;
the segment's `truncate_to(offset)` on log truncation; `sanity_check()` after opening an
existing segment (a `CorruptTxnIndex` means: rebuild it while recovering the segment).
The file is created on first append and read with `os.pread`; nothing is cached beyond the
last entry's last_offset, so memory stays constant whatever the file size.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from josef.protocol.errors import ErrorCode
from josef.storage.errors import StorageError
from josef.storage.producer_state import CompletedTxn

TXN_INDEX_SUFFIX = ".txnindex"
ABORTED_TXN_VERSION = 0
_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size
assert ENTRY_SIZE == 34
# Entries read per pread while scanning: 64 KiB worth, a bounded buffer per scan.
_READ_ENTRIES = 65536 // ENTRY_SIZE


class CorruptTxnIndex(StorageError):
    """A .txnindex that fails its sanity check; the segment's recovery rebuilds it."""

    error_code = ErrorCode.KAFKA_STORAGE_ERROR


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    @classmethod
    def from_completed(cls, txn: CompletedTxn) -> AbortedTxn:
        return cls(txn.producer_id, txn.first_offset, txn.last_offset, txn.last_stable_offset)


class TxnIndexSearchResult(NamedTuple):
    aborted_transactions: list[AbortedTxn]
    # True once an entry's last_stable_offset reached the upper bound: later segments
    # cannot hold a transaction that overlaps the fetched range.
    is_complete: bool


class TransactionIndex:
    def __init__(self, path: Path, start_offset: int) -> None:
        self.path = Path(path)
        self.start_offset = start_offset  # the segment's base offset
        self._fd: int | None = None
        self._size = 0
        self.last_offset: int | None = None
        if self.path.exists():
            fd = self._open()
            self._size = os.fstat(fd).st_size
            whole = self._size - self._size % ENTRY_SIZE
            if whole:
                self.last_offset = _ENTRY.unpack(os.pread(fd, ENTRY_SIZE, whole - ENTRY_SIZE))[3]

    @property
    def size_bytes(self) -> int:
        return self._size

    def _open(self) -> int:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def _fd_or_open(self) -> int:
        return self._fd if self._fd is not None else self._open()

    def append(self, txn: AbortedTxn) -> None:
        if self.last_offset is not None and txn.last_offset <= self.last_offset:
            raise AssertionError(
                f"aborted transaction last offsets must increase: {txn.last_offset} after "
                f"{self.last_offset} in {self.path}"
            )
        data = _ENTRY.pack(ABORTED_TXN_VERSION, *txn)
        fd = self._fd_or_open()
        written = os.pwrite(fd, data, self._size)
        if written != ENTRY_SIZE:
            os.ftruncate(fd, self._size)
            raise OSError(f"short write to {self.path}")
        self._size += ENTRY_SIZE
        self.last_offset = txn.last_offset

    def _iter_entries(self, check: bool) -> Iterator[AbortedTxn]:
        if self._fd is None:
            return
        whole = self._size - self._size % ENTRY_SIZE
        pos = 0
        while pos < whole:
            chunk = os.pread(self._fd, min(_READ_ENTRIES * ENTRY_SIZE, whole - pos), pos)
            if not chunk:
                return
            usable = len(chunk) - len(chunk) % ENTRY_SIZE
            for version, *fields in _ENTRY.iter_unpack(memoryview(chunk)[:usable]):
                if check and version != ABORTED_TXN_VERSION:
                    raise CorruptTxnIndex(f"aborted transaction version {version} in {self.path}")
                yield AbortedTxn(*fields)
            pos += usable

    def collect_aborted(self, fetch_offset: int, upper_bound_offset: int) -> TxnIndexSearchResult:
        """Aborted transactions overlapping [fetch_offset, upper_bound_offset) (Kafka's
        collectAbortedTxns): the Fetch response's aborted_transactions for this segment."""
        found: list[AbortedTxn] = []
        for txn in self._iter_entries(check=False):
            if txn.last_offset >= fetch_offset and txn.first_offset < upper_bound_offset:
                found.append(txn)
            if txn.last_stable_offset >= upper_bound_offset:
                return TxnIndexSearchResult(found, True)
        return TxnIndexSearchResult(found, False)

    def all_aborted(self) -> list[AbortedTxn]:
        return list(self._iter_entries(check=False))

    def truncate_to(self, offset: int) -> None:
        """Remove the entries whose marker is at or after `offset`."""
        pos = 0
        last = None
        for txn in self._iter_entries(check=False):
            if txn.last_offset >= offset:
                break
            pos += ENTRY_SIZE
            last = txn.last_offset
        if self._fd is not None and pos != self._size:
            os.ftruncate(self._fd, pos)
            self._size = pos
        self.last_offset = last

    def reset(self) -> None:
        """Empty the file, whatever it holds (a corrupt one is about to be rebuilt)."""
        if self._fd is not None and self._size:
            os.ftruncate(self._fd, 0)
        self._size = 0
        self.last_offset = None

    def sanity_check(self) -> None:
        """Raise CorruptTxnIndex for a partial entry, an unknown version, a marker before
        the segment's base offset or last offsets not increasing."""
        if self._size % ENTRY_SIZE:
            raise CorruptTxnIndex(
                f"{self.path} has {self._size} bytes, not a multiple of {ENTRY_SIZE}"
            )
        previous = None
        for txn in self._iter_entries(check=True):
            if txn.last_offset < self.start_offset:
                raise CorruptTxnIndex(
                    f"aborted transaction {txn} in {self.path} ends before the segment's base "
                    f"offset {self.start_offset}"
                )
            if txn.first_offset > txn.last_offset or (
                previous is not None and txn.last_offset <= previous
            ):
                raise CorruptTxnIndex(f"aborted transaction {txn} out of order in {self.path}")
            previous = txn.last_offset

    def flush(self) -> None:
        """fsync (blocking: call it where the segment's other files are fsynced)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self._size = 0
        self.last_offset = None
