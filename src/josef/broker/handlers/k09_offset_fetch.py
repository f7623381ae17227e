"""OffsetFetch (key 9): a group's committed offsets.

Versions served: 0-9 (every version Kafka defines; v9's member id/epoch are for KIP-848
groups and are not checked for classic ones, as Kafka does not).
Kafka semantics followed (through `josef.coordinator.group`):
- topics null (v2+): every committed offset of the group; a partition with no commit answers
  offset -1, leader epoch -1, metadata "".
- v8+ ask for several groups (KIP-709): each group is routed to its own shard and answered
  with its own error code, in request order.
- require_stable (v7+) needs no wait: no transactional offsets are pending (no transactions).
- Coordinator errors: v0-v1 on every partition, v2-v7 at the top level (and on each
  partition), v8+ per group: COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR,
  COORDINATOR_NOT_AVAILABLE.
Deviations: none known.
"""

from __future__ import annotations

import asyncio

from josef.broker.broker import Broker
from josef.protocol._generated.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 9
MIN_VERSION = 0
MAX_VERSION = 9
FIRST_MULTI_GROUP_VERSION = 8  # KIP-709

R = OffsetFetchResponse


async def handle(broker: Broker, request: Request) -> OffsetFetchResponse:
    body: OffsetFetchRequest = request.body
    version = request.api_version
    if version >= FIRST_MULTI_GROUP_VERSION:
        return await _multi_group(broker, body, version)

    def error(code: ErrorCode) -> OffsetFetchResponse:
        return R(
            error_code=code,
            topics=[
                R.OffsetFetchResponseTopic(
                    name=t.name,
                    partitions=[
                        R.OffsetFetchResponsePartition(
                            partition_index=i, committed_offset=-1, metadata="", error_code=code
                        )
                        for i in t.partition_indexes
                    ],
                )
                for t in body.topics or ()
            ],
        )

    return await broker.groups.call(
        body.group_id, lambda c, now_ms: c.handle_offset_fetch(body, version, now_ms), error
    )


async def _multi_group(
    broker: Broker, body: OffsetFetchRequest, version: int
) -> OffsetFetchResponse:
    groups = broker.groups
    requested = {g.group_id: g for g in body.groups}

    async def one_shard(group_ids: list[str]) -> list[R.OffsetFetchResponseGroup]:
        sub = OffsetFetchRequest(
            groups=[requested[g] for g in group_ids], require_stable=body.require_stable
        )

        def error(code: ErrorCode) -> OffsetFetchResponse:
            return R(groups=[R.OffsetFetchResponseGroup(group_id=g, error_code=code)
                             for g in group_ids])

        shard = groups.route(group_ids[0])
        if shard is None:
            return error(ErrorCode.COORDINATOR_NOT_AVAILABLE).groups
        response = await groups.run(
            shard, lambda c, now_ms: c.handle_offset_fetch(sub, version, now_ms), error
        )
        return response.groups

    routed = groups.route_many(requested)
    answered = await asyncio.gather(*(one_shard(ids) for ids in routed.values()))
    by_id = {g.group_id: g for part in answered for g in part}
    return R(groups=[by_id[g.group_id] for g in body.groups])
