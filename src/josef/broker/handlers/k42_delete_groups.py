"""DeleteGroups (key 42): delete empty groups and their committed offsets.

Versions served: 0-2 (every version Kafka defines).
Kafka semantics followed (through `josef.coordinator.group`): each group is routed to its
shard; an Empty group's offsets and metadata are tombstoned in `__consumer_offsets` and the
answer waits until the tombstones are durable. Per-group errors: GROUP_ID_NOT_FOUND,
NON_EMPTY_GROUP, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE.
Answers keep request order.
Deviations: none known.
"""

from __future__ import annotations

import asyncio

from josef.broker.broker import Broker
from josef.protocol._generated.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 42
MIN_VERSION = 0
MAX_VERSION = 2

D = DeleteGroupsResponse


async def handle(broker: Broker, request: Request) -> DeleteGroupsResponse:
    body: DeleteGroupsRequest = request.body
    version = request.api_version
    groups = broker.groups

    async def one_shard(group_ids: list[str]) -> list[D.DeletableGroupResult]:
        sub = DeleteGroupsRequest(groups_names=group_ids)

        def error(code: ErrorCode) -> DeleteGroupsResponse:
            return D(results=[D.DeletableGroupResult(group_id=g, error_code=code)
                              for g in group_ids])

        shard = groups.route(group_ids[0])
        if shard is None:
            return error(ErrorCode.COORDINATOR_NOT_AVAILABLE).results
        response = await groups.run(
            shard, lambda c, now_ms: c.handle_delete_groups(sub, version, now_ms), error
        )
        return response.results

    routed = groups.route_many(dict.fromkeys(body.groups_names))
    answered = await asyncio.gather(*(one_shard(ids) for ids in routed.values()))
    by_id = {r.group_id: r for part in answered for r in part}
    return D(results=[by_id[g] for g in body.groups_names])
