"""Producer ids for InitProducerId: handed out from persisted blocks (Kafka's ProducerIdManager).

Contract: ids are unique for the life of the log dirs, across restarts and crashes. The start
of the next unallocated block is kept in `<first log dir>/josef-producer-ids.json`; a new block
[start, start + BLOCK_SIZE) is persisted as allocated (file rewritten atomically, fsynced on a
worker thread, never on the event loop) BEFORE any id from it is returned, so a crash only ever
skips the unused rest of a block, never reuses an id. Concurrent callers waiting for the same
block share one write. Ids run from 0 up to 2^63 - 1 (a producer id is an int64; -1 means none).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from josef.broker.topics import write_atomically

PRODUCER_IDS_FILE = "josef-producer-ids.json"
STORE_VERSION = 1
# Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE: the controller hands brokers 1000 at a time.
BLOCK_SIZE = 1000
MAX_PRODUCER_ID = 2**63 - 1


class ProducerIdsExhausted(Exception):
    """Every int64 producer id has been handed out (Kafka: UnknownServerException)."""


class ProducerIdManager:
    """Single writer: the event loop. `generate()` may await one block allocation."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / PRODUCER_IDS_FILE
        self._next_block_start = self._load()
        self._next_id = 0
        self._block_end = 0  # no block in hand until the first allocation
        self._allocation: asyncio.Future[None] | None = None

    def _load(self) -> int:
        if not self._path.exists():
            return 0
        doc = json.loads(self._path.read_text(encoding="utf-8"))
        if doc.get("version") != STORE_VERSION:
            raise RuntimeError(f"{self._path}: unsupported version {doc.get('version')!r}")
        start = int(doc["next_block_start"])
        if start < 0:
            raise RuntimeError(f"{self._path}: negative next_block_start {start}")
        return start

    @property
    def next_block_start(self) -> int:
        """The first id of the next block to allocate (what the file records)."""
        return self._next_block_start

    async def generate(self) -> int:
        """A producer id never returned before (by this or any earlier broker run)."""
        while self._next_id >= self._block_end:
            if self._allocation is None:
                self._allocation = asyncio.ensure_future(self._allocate_block())
            # shield: one waiter's cancellation must not cancel the write the others wait on.
            await asyncio.shield(self._allocation)
        producer_id = self._next_id
        self._next_id += 1
        return producer_id

    async def _allocate_block(self) -> None:
        try:
            start = self._next_block_start
            end = start + BLOCK_SIZE
            if end - 1 > MAX_PRODUCER_ID:
                raise ProducerIdsExhausted(f"no producer id block left after {start}")
            doc = {"version": STORE_VERSION, "next_block_start": end}
            await asyncio.to_thread(
                write_atomically, self._path, json.dumps(doc, sort_keys=True).encode()
            )
            self._next_block_start = end
            self._next_id, self._block_end = start, end
        finally:
            self._allocation = None
