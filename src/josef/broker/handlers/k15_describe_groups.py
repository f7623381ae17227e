"""DescribeGroups (key 15): state, protocol and members of classic groups.

Versions served: 0-5 (every version Kafka defines; v3+ authorized operations, KIP-430: with
no ACLs every group allows READ, DELETE and DESCRIBE; v4+ group.instance.id).
Kafka semantics followed (through `josef.coordinator.group`): each group is routed to its
shard; an unknown group is described as state "Dead" with error NONE; member metadata and
assignment are filled only while the group is Stable. Per-group errors:
COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE. Answers keep request
order.
Deviations: none known.
"""

from __future__ import annotations

import asyncio

from josef.broker.broker import Broker
from josef.protocol._generated.describe_groups import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
)
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 15
MIN_VERSION = 0
MAX_VERSION = 5

D = DescribeGroupsResponse


async def handle(broker: Broker, request: Request) -> DescribeGroupsResponse:
    body: DescribeGroupsRequest = request.body
    version = request.api_version
    groups = broker.groups

    async def one_shard(group_ids: list[str]) -> list[D.DescribedGroup]:
        sub = DescribeGroupsRequest(
            groups=group_ids, include_authorized_operations=body.include_authorized_operations
        )

        def error(code: ErrorCode) -> DescribeGroupsResponse:
            return D(groups=[D.DescribedGroup(error_code=code, group_id=g) for g in group_ids])

        shard = groups.route(group_ids[0])
        if shard is None:
            return error(ErrorCode.COORDINATOR_NOT_AVAILABLE).groups
        response = await groups.run(
            shard, lambda c, now_ms: c.handle_describe_groups(sub, version, now_ms), error
        )
        return response.groups

    routed = groups.route_many(dict.fromkeys(body.groups))
    answered = await asyncio.gather(*(one_shard(ids) for ids in routed.values()))
    by_id = {g.group_id: g for part in answered for g in part}
    return D(groups=[by_id[g] for g in body.groups])
