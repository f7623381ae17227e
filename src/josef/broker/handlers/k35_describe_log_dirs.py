"""DescribeLogDirs (key 35): the log dirs of this broker and the partitions each one holds.

Versions served: 1-4 (v0 is deprecated in Kafka 3.9 and removed in 4.0; v1 has the same layout).
Kafka semantics followed:
- One result per configured log dir (also those holding no partition), with its absolute path
  and error NONE. topics null means every partition; otherwise only the named partitions that
  exist here are listed (unknown topics and partitions are simply absent, as in Kafka).
- Per partition: partition_size = bytes of its segment files; offset_lag = max(high_watermark -
  log_end_offset, 0), Kafka's formula for a current (non-future) log, so 0 on a leader;
  is_future_key false (no AlterReplicaLogDirs moves exist).
- v3+ top-level error_code NONE; v4+ total_bytes / usable_bytes of the log dir's volume
  (os.statvfs: blocks and blocks available to unprivileged users, as Java's getUsableSpace);
  a log dir that cannot be stat'ed is answered KAFKA_STORAGE_ERROR with no topics.
"""

from __future__ import annotations

import os
from collections import defaultdict

from josef.broker.broker import Broker
from josef.protocol._generated.describe_log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 35
MIN_VERSION = 1
MAX_VERSION = 4

Result = DescribeLogDirsResponse.DescribeLogDirsResult
Topic = DescribeLogDirsResponse.DescribeLogDirsTopic
Partition = DescribeLogDirsResponse.DescribeLogDirsPartition


def _wanted(broker: Broker, body: DescribeLogDirsRequest) -> list[tuple[str, int]]:
    """(topic, partition) pairs to describe, sorted, each once."""
    if body.topics is None:
        return sorted((info.name, p) for info in broker.topics for p in range(info.num_partitions))
    pairs: set[tuple[str, int]] = set()
    for topic in body.topics:
        info = broker.topics.get(topic.topic)
        if info is None:
            continue
        pairs.update((info.name, p) for p in topic.partitions if 0 <= p < info.num_partitions)
    return sorted(pairs)


async def handle(broker: Broker, request: Request) -> DescribeLogDirsResponse:
    body: DescribeLogDirsRequest = request.body
    by_dir: dict[str, dict[str, list[Partition]]] = defaultdict(lambda: defaultdict(list))
    for topic, partition in _wanted(broker, body):
        plog = broker.logs.get(topic, partition)
        if plog is None:
            continue
        log_dir = os.path.dirname(os.path.abspath(plog.directory))
        by_dir[log_dir][topic].append(Partition(
            partition_index=partition,
            partition_size=plog.size_bytes,
            offset_lag=max(plog.high_watermark - plog.log_end_offset, 0),
            is_future_key=False,
        ))
    results: list[Result] = []
    for configured in broker.config.log_dirs:
        log_dir = os.path.abspath(configured)
        try:
            stat = os.statvfs(log_dir)
        except OSError:
            results.append(Result(error_code=ErrorCode.KAFKA_STORAGE_ERROR, log_dir=log_dir,
                                  topics=[]))
            continue
        topics = by_dir.get(log_dir, {})
        results.append(Result(
            error_code=ErrorCode.NONE,
            log_dir=log_dir,
            topics=[Topic(name=name, partitions=partitions)
                    for name, partitions in topics.items()],
            total_bytes=stat.f_blocks * stat.f_frsize,
            usable_bytes=stat.f_bavail * stat.f_frsize,
        ))
    return DescribeLogDirsResponse(throttle_time_ms=0, error_code=ErrorCode.NONE,
                                   results=results)
