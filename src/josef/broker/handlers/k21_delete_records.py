"""DeleteRecords (key 21): move partitions' log start offset forward (KIP-107).

Versions served: 0-2 (all of them; Kafka 3.9 and 4.0 serve 0-2).
Kafka semantics followed (ReplicaManager / Partition.deleteRecordsOnLeader), per partition:
- Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
- Internal topics (__consumer_offsets, __transaction_state): INVALID_TOPIC_EXCEPTION
  ("Cannot delete records of internal topic").
- A topic whose cleanup.policy lacks "delete" (compact only): POLICY_VIOLATION.
- offset -1 means the high watermark; any other negative offset, or one above the high
  watermark, is OFFSET_OUT_OF_RANGE. An offset at or below the current log start offset
  changes nothing and succeeds.
- low_watermark is the log start offset afterwards (single node: no replica to wait for, so
  the answer is immediate); -1 with any error. Whole segments below it are deleted at once.
Deviations: timeout_ms is not needed (no follower has to catch up).
"""

from __future__ import annotations

from josef.broker.broker import Broker
from josef.protocol._generated.delete_records import DeleteRecordsRequest, DeleteRecordsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode
from josef.storage.errors import StorageError

API_KEY = 21
MIN_VERSION = 0
MAX_VERSION = 2

HIGH_WATERMARK = -1  # Kafka's DeleteRecordsRequest.HIGH_WATERMARK

PartitionResult = DeleteRecordsResponse.DeleteRecordsPartitionResult


async def handle(broker: Broker, request: Request) -> DeleteRecordsResponse:
    body: DeleteRecordsRequest = request.body
    topics: list[DeleteRecordsResponse.DeleteRecordsTopicResult] = []
    for topic in body.topics:
        info = broker.topics.get(topic.name)
        partitions: list[PartitionResult] = []
        topics.append(
            DeleteRecordsResponse.DeleteRecordsTopicResult(name=topic.name, partitions=partitions)
        )
        for wanted in topic.partitions:
            index = wanted.partition_index
            low_watermark = -1
            if info is None or not 0 <= index < info.num_partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif info.is_internal:
                code = ErrorCode.INVALID_TOPIC_EXCEPTION
            elif not info.log_config.delete:
                code = ErrorCode.POLICY_VIOLATION
            else:
                plog = info.logs[index]
                offset = plog.high_watermark if wanted.offset == HIGH_WATERMARK else wanted.offset
                if offset < 0:
                    code = ErrorCode.OFFSET_OUT_OF_RANGE
                else:
                    try:
                        low_watermark = plog.delete_records_before(offset)
                        code = ErrorCode.NONE
                    except StorageError as err:
                        code = err.error_code
            partitions.append(
                PartitionResult(partition_index=index, low_watermark=low_watermark,
                                error_code=code)
            )
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)
