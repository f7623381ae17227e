"""ListGroups (key 16): every group this broker coordinates.

Versions served: 0-5 (every version Kafka defines; v4+ states filter, KIP-518; v5+ types
filter, KIP-848: every group here is "classic").
Kafka semantics followed: the groups of every loaded `__consumer_offsets` shard; while a
shard is still loading (or failed) the error is COORDINATOR_LOAD_IN_PROGRESS (NOT_COORDINATOR)
and the groups of the other shards are still listed, as Kafka does. ListGroups does not create
`__consumer_offsets`: before it exists there are no groups.
Deviations: none known.
"""

from __future__ import annotations

import asyncio

from josef.broker.broker import Broker
from josef.broker.groups import ShardState
from josef.protocol._generated.list_groups import ListGroupsRequest, ListGroupsResponse
from josef.protocol.connection import Request
from josef.protocol.errors import ErrorCode

API_KEY = 16
MIN_VERSION = 0
MAX_VERSION = 5


async def handle(broker: Broker, request: Request) -> ListGroupsResponse:
    body: ListGroupsRequest = request.body
    version = request.api_version
    groups = broker.groups

    def error(code: ErrorCode) -> ListGroupsResponse:
        return ListGroupsResponse(error_code=code)

    responses = await asyncio.gather(
        *(
            groups.run(shard, lambda c, now_ms: c.handle_list_groups(body, version, now_ms), error)
            for shard in groups.shards
        )
    )
    code = ErrorCode.NONE
    for shard in groups.shards:
        if shard.state is ShardState.LOADING:
            code = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
            break
        if shard.state is not ShardState.ACTIVE:
            code = ErrorCode.NOT_COORDINATOR
    return ListGroupsResponse(
        error_code=code, groups=[g for response in responses for g in response.groups]
    )
