"""ProducerIdManager: unique ids across restarts and crashes, blocks persisted before use."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from josef.broker.producer_ids import (
    BLOCK_SIZE,
    MAX_PRODUCER_ID,
    PRODUCER_IDS_FILE,
    ProducerIdManager,
    ProducerIdsExhausted,
)


def _generate(manager: ProducerIdManager, count: int) -> list[int]:
    async def run() -> list[int]:
        return [await manager.generate() for _ in range(count)]

    return asyncio.run(run())


def _persisted(data_dir: Path) -> int:
    return json.loads((data_dir / PRODUCER_IDS_FILE).read_text())["next_block_start"]


def test_ids_are_consecutive_within_a_block_and_the_block_is_persisted_first(
    tmp_path: Path,
) -> None:
    manager = ProducerIdManager(tmp_path)
    assert not (tmp_path / PRODUCER_IDS_FILE).exists()
    assert _generate(manager, 3) == [0, 1, 2]
    assert _persisted(tmp_path) == BLOCK_SIZE
    ids = _generate(manager, BLOCK_SIZE)
    assert ids == list(range(3, BLOCK_SIZE + 3))
    assert _persisted(tmp_path) == 2 * BLOCK_SIZE


def test_a_crash_never_reuses_an_id(tmp_path: Path) -> None:
    first = _generate(ProducerIdManager(tmp_path), 10)
    # No shutdown step exists: a new manager on the same dir is what a restart after
    # SIGKILL sees.
    second = _generate(ProducerIdManager(tmp_path), 10)
    assert second[0] == BLOCK_SIZE
    assert not set(first) & set(second)


def test_concurrent_callers_share_one_block(tmp_path: Path) -> None:
    manager = ProducerIdManager(tmp_path)

    async def run() -> list[int]:
        return list(await asyncio.gather(*(manager.generate() for _ in range(2 * BLOCK_SIZE + 5))))

    ids = asyncio.run(run())
    assert sorted(ids) == list(range(2 * BLOCK_SIZE + 5))
    assert _persisted(tmp_path) == 3 * BLOCK_SIZE


def test_exhaustion_and_bad_files(tmp_path: Path) -> None:
    (tmp_path / PRODUCER_IDS_FILE).write_text(
        json.dumps({"version": 1, "next_block_start": MAX_PRODUCER_ID - 10})
    )
    with pytest.raises(ProducerIdsExhausted):
        _generate(ProducerIdManager(tmp_path), 1)
    (tmp_path / PRODUCER_IDS_FILE).write_text(json.dumps({"version": 9, "next_block_start": 0}))
    with pytest.raises(RuntimeError):
        ProducerIdManager(tmp_path)


def test_a_failed_write_hands_out_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-a-dir"
    data_dir.write_text("a file where the directory should be")
    manager = ProducerIdManager(data_dir)
    with pytest.raises(OSError):
        _generate(manager, 1)
    assert manager.next_block_start == 0
