"""The broker's scheduled work against `josef serve`: the log cleaner compacts a compacted topic,
offset checkpoints are written on their interval, and deleting `__consumer_offsets` leaves the
group coordinator working (it recreates the topic on the next group request)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from josef.protocol._generated.delete_topics import DeleteTopicsRequest
from josef.protocol._generated.offset_commit import OffsetCommitRequest
from josef.protocol._generated.offset_fetch import OffsetFetchRequest
from josef.protocol.errors import ErrorCode
from josef.records.batch import iter_batches
from josef.records.records import iter_records
from josef.storage.disk.checkpoint import REPLICATION_CHECKPOINT, read_offsets
from tests.broker import wire
from tests.broker.conftest import ServeProcess
from tests.broker.test_data_plane import batch, create, fetch_request, produce

E = ErrorCode
WAIT_S = 20.0
FAST_MAINTENANCE = {
    "log.cleaner.backoff.ms": "100",
    "log.flush.offset.checkpoint.interval.ms": "200",
    "offsets.topic.num.partitions": "3",
}


def _records(sock, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record of partition 0, from the log start."""
    data = wire.call(sock, 1, 12, fetch_request(topic, 0)).responses[0].partitions[0]
    assert data.error_code == E.NONE
    return [
        (b.base_offset + r.offset_delta, r.key, r.value)
        for b in iter_batches(bytes(data.records)) for r in iter_records(b)
    ]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_cleaner_compacts_and_checkpoints_follow(
    serve_factory: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    proc = serve_factory(FAST_MAINTENANCE).start()
    topic = f"compacted-{uuid.uuid4().hex[:8]}"
    keys = [b"k%d" % i for i in range(5)]
    with wire.connect(proc.bootstrap) as sock:
        configs = {
            "cleanup.policy": "compact",
            "segment.bytes": "1024",
            "min.cleanable.dirty.ratio": "0.01",
        }
        assert create(sock, topic, configs=configs).error_code == E.NONE
        for round_ in range(5):
            for key in keys:
                response = produce(sock, topic, batch(b"%s-%d" % (key, round_), key=key))
                assert response.error_code == E.NONE
        # Records with keys of their own push every k* record out of the active segment,
        # which the cleaner never touches.
        for i in range(20):
            assert produce(sock, topic, batch(b"filler", key=b"f%d" % i)).error_code == E.NONE
        end = 25 + 20

        def cleaned() -> bool:
            return sum(1 for _, key, _ in _records(sock, topic) if key in keys) == len(keys)

        _wait_for(cleaned, "the log cleaner")
        records = _records(sock, topic)
        latest = {key: value for _, key, value in records if key in keys}
        assert latest == {key: b"%s-4" % key for key in keys}
        offsets = [offset for offset, _, _ in records]
        assert offsets == sorted(offsets) and offsets[-1] == end - 1
        assert len(offsets) < end  # compaction keeps offsets: the log now has gaps
        assert "log cleaner:" in proc.log()

        checkpoint = proc.data_dir / "logs" / REPLICATION_CHECKPOINT
        _wait_for(
            lambda: read_offsets(str(checkpoint)).get((topic, 0)) == end,
            "the high-watermark checkpoint",
        )
    assert proc.stop() == 0
    # The cleaned log and its cleaner checkpoint survive a restart.
    proc.start()
    with wire.connect(proc.bootstrap) as sock:
        assert _records(sock, topic) == records


def _commit(sock, group: str, topic: str, offset: int) -> int:
    body = OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=-1, member_id="",
        group_instance_id=None, retention_time_ms=-1,
        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name=topic, partitions=[
            OffsetCommitRequest.OffsetCommitRequestPartition(
                partition_index=0, committed_offset=offset, committed_leader_epoch=-1,
                committed_metadata="")])])
    return wire.call(sock, 8, 8, body).topics[0].partitions[0].error_code


def _committed(sock, group: str, topic: str) -> int:
    body = OffsetFetchRequest(
        group_id=group, topics=[OffsetFetchRequest.OffsetFetchRequestTopic(
            name=topic, partition_indexes=[0])], require_stable=False)
    partition = wire.call(sock, 9, 7, body).topics[0].partitions[0]
    assert partition.error_code == E.NONE
    return partition.committed_offset


def test_deleting_consumer_offsets_resigns_the_coordinator(
    serve_factory: Callable[..., ServeProcess],
) -> None:
    """Kafka's controller deletes internal topics like any other; the coordinator resigns and
    the next group request recreates `__consumer_offsets` (the old commits are gone)."""
    proc = serve_factory(FAST_MAINTENANCE).start()
    group = f"g-{uuid.uuid4().hex[:8]}"
    with wire.connect(proc.bootstrap) as sock:
        assert _commit(sock, group, "t", 7) == E.NONE
        assert _committed(sock, group, "t") == 7
        deleted = wire.call(sock, 20, 6, DeleteTopicsRequest(
            topics=[DeleteTopicsRequest.DeleteTopicState(name="__consumer_offsets")],
            timeout_ms=1000)).responses
        assert [r.error_code for r in deleted] == [E.NONE]
        assert _committed(sock, group, "t") == -1
        assert _commit(sock, group, "t", 9) == E.NONE
        assert _committed(sock, group, "t") == 9
    assert proc.stop() == 0
    assert "Traceback" not in proc.log()
