"""InitProducerId (key 22): a producer id and epoch for an idempotent producer (KIP-98).

Versions served: 0-5 (Kafka 3.9 and 4.0 serve 0-5).
Kafka semantics followed (KafkaApis.handleInitProducerIdRequest, TransactionCoordinator):
- producer_id / producer_epoch (v3+, KIP-360) must both be -1 or both be set, else the
  request is INVALID_REQUEST.
- transactional_id null (idempotent producer): a new producer id, never handed out before
  (`josef.broker.producer_ids`: persisted blocks of 1000, like Kafka's ProducerIdManager), with
  epoch 0; the v3+ id/epoch the producer sends are ignored, as Kafka does for null ids. If no
  block can be persisted: COORDINATOR_LOAD_IN_PROGRESS (retriable, Kafka's answer while its
  next block is not there yet); all 2^63 ids used: UNKNOWN_SERVER_ERROR (as Kafka).
- transactional_id "" : INVALID_REQUEST; a transaction_timeout_ms outside
  (0, transaction.max.timeout.ms]: INVALID_TRANSACTION_TIMEOUT.
- Any other transactional_id: NOT_COORDINATOR. Transactions are not built yet, so this broker
  owns no __transaction_state partition — what Kafka answers for a transactional id whose
  coordinator is elsewhere; FindCoordinator(TRANSACTION) answers COORDINATOR_NOT_AVAILABLE,
  so a transactional producer retries until its own timeout.
- Errors answer producer_id -1 and producer_epoch -1.
The sequence-number deduplication of the batches themselves is the partition log's (its
producer state), not this handler's.
"""

from __future__ import annotations

import logging

from josef.broker.broker import Broker
from josef.broker.producer_ids import ProducerIdsExhausted
from josef.protocol._generated.init_producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 22
MIN_VERSION = 0
MAX_VERSION = 5

NO_PRODUCER_ID = -1  # Kafka's RecordBatch.NO_PRODUCER_ID
NO_PRODUCER_EPOCH = -1  # Kafka's RecordBatch.NO_PRODUCER_EPOCH

log = logging.getLogger(__name__)


def _error(code: ErrorCode) -> InitProducerIdResponse:
    return InitProducerIdResponse(
        throttle_time_ms=0, error_code=code,
        producer_id=NO_PRODUCER_ID, producer_epoch=NO_PRODUCER_EPOCH,
    )


async def handle(broker: Broker, request: Request) -> InitProducerIdResponse:
    body: InitProducerIdRequest = request.body
    if (body.producer_id == NO_PRODUCER_ID) != (body.producer_epoch == NO_PRODUCER_EPOCH):
        return _error(ErrorCode.INVALID_REQUEST)
    transactional_id = body.transactional_id
    if transactional_id is not None:
        if transactional_id == "":
            return _error(ErrorCode.INVALID_REQUEST)
        timeout_ms = body.transaction_timeout_ms
        if not 0 < timeout_ms <= broker.config.transaction_max_timeout_ms:
            return _error(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        return _error(ErrorCode.NOT_COORDINATOR)
    try:
        producer_id = await broker.producer_ids.generate()
    except OSError as err:
        log.error("cannot persist a producer id block: %s", err)
        return _error(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
    except ProducerIdsExhausted as err:
        log.error("%s", err)
        return _error(ErrorCode.UNKNOWN_SERVER_ERROR)
    return InitProducerIdResponse(
        throttle_time_ms=0, error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0
    )
