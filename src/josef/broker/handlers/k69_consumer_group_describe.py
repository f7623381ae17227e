"""ConsumerGroupDescribe (key 69): describe KIP-848 consumer groups.

Versions served: 0.
Kafka semantics followed: per group its state (Empty/Assigning/Reconciling/Stable), group
epoch, assignment epoch, the assignor in use, and every member with its epoch, subscription,
current assignment and target assignment (topic ids with names). An unknown group, or a classic
one, gets GROUP_ID_NOT_FOUND; coordinator errors (COORDINATOR_LOAD_IN_PROGRESS,
NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) are per group. Answers keep request order.
Deviations: authorized operations are the fixed READ, DELETE and DESCRIBE set (no ACLs yet).
"""

from __future__ import annotations

import asyncio

from josef.broker.broker import Broker
from josef.protocol._generated.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 69
MIN_VERSION = 0
MAX_VERSION = 0

D = ConsumerGroupDescribeResponse


async def handle(broker: Broker, request: Request) -> ConsumerGroupDescribeResponse:
    body: ConsumerGroupDescribeRequest = request.body
    version = request.api_version
    groups = broker.groups

    async def one_shard(group_ids: list[str]) -> list[D.DescribedGroup]:
        sub = ConsumerGroupDescribeRequest(
            group_ids=group_ids, include_authorized_operations=body.include_authorized_operations
        )

        def error(code: ErrorCode) -> ConsumerGroupDescribeResponse:
            return D(groups=[D.DescribedGroup(error_code=code, group_id=g) for g in group_ids])

        shard = groups.route(group_ids[0])
        if shard is None:
            return error(ErrorCode.COORDINATOR_NOT_AVAILABLE).groups
        response = await groups.run(
            shard, lambda c, now_ms: c.handle_consumer_group_describe(sub, version, now_ms), error
        )
        return response.groups

    routed = groups.route_many(dict.fromkeys(body.group_ids))
    answered = await asyncio.gather(*(one_shard(ids) for ids in routed.values()))
    by_id = {g.group_id: g for part in answered for g in part}
    return D(groups=[by_id[g] for g in body.group_ids])
