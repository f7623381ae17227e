"""The group-coordinator runtime: `__consumer_offsets`, its shards, durability, timers, loading.

Contract
--------
- Design: one `GroupCoordinator` per `__consumer_offsets` partition (a *shard*), as in Kafka.
  A group lives in shard `partition_for(group_id, n)` (Kafka's hash, n = the topic's partition
  count), so tools that read the topic find each group where Kafka would put it, and a failed
  append reloads only its own shard.
- The topic is internal, compacted, `offsets.topic.num.partitions` partitions (Kafka's default
  50), and is created lazily by the first group request (`route`), as Kafka creates it on the
  first FindCoordinator. The empty shards of a topic just created are ACTIVE at once.
- Start-up (`start`): when the topic exists every shard is LOADING: a background task replays
  each partition log through `GroupCoordinator.replay` (in chunks of Kafka's
  offsets.load.buffer.size, yielding to the loop between chunks) and then calls
  `finish_loading`. Requests for a LOADING shard get COORDINATOR_LOAD_IN_PROGRESS; a shard whose
  log cannot be decoded is FAILED (logged) and answers NOT_COORDINATOR.
- Calls (`run`): the handler's function runs against the shard's coordinator synchronously on
  the loop (each shard has one writer and no locks); its records are appended to the shard's
  partition log as ONE batch right away, so the log order is the order of the calls. The
  answer waits until the log is fsynced up to its end (`GroupCommit.wait_durable`: one fsync
  for everything appended in the same loop turn), so a response never gets ahead of the
  records that it, or any earlier call of the shard, produced. Then the high watermark moves
  and the completions of parked requests are delivered. A parked JoinGroup/SyncGroup awaits
  its ticket.
- Failure: an append or fsync that raises `StorageError` leaves the coordinator ahead of its
  log: the call and every parked request of the shard get NOT_COORDINATOR, and the shard is
  reloaded from the log (the coordinator docstring explains why reload, not a snapshot).
- Timers: one `loop.call_later` per shard at `next_deadline_ms()`; `expire` runs through the
  same append/durability path.
- Shutdown (`close`): timers stop, parked requests are answered NOT_COORDINATOR so that clients
  look for the coordinator again, and every shard is CLOSED.

The coordinator takes wall-clock milliseconds (its records carry commit and state timestamps,
as Kafka's do); timers convert deadlines to delays at scheduling time.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from josef.broker.topics import LEADER_EPOCH, TopicError
from josef.coordinator.group import GroupConfig, GroupCoordinator, GroupRecord, Result
from josef.coordinator.group.consumer_group import ConsumerGroupConfig
from josef.coordinator.group.records import partition_for
from josef.protocol.errors import ErrorCode
from josef.protocol.exceptions import ProtocolError
from josef.records.batch import iter_batches
from josef.records.builder import BatchBuilder
from josef.records.errors import RecordsError
from josef.records.records import iter_records
from josef.storage.api import LONG_MAX, PartitionLog, TopicPartition
from josef.storage.errors import StorageError

if TYPE_CHECKING:
    from josef.broker.broker import Broker

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
# Kafka's offsets.topic.segment.bytes default: 100 MiB segments keep compaction effective.
OFFSETS_TOPIC_SEGMENT_BYTES = 104_857_600
# Kafka's offsets.load.buffer.size default: the log is replayed in reads of 5 MiB.
LOAD_BUFFER_BYTES = 5 * 1024 * 1024
# Deadlines are wall-clock ms and the loop's clock is monotonic: a timer that fires a little
# early finds nothing due and is set again; this slack makes that rare.
TIMER_SLACK_MS = 1

R = TypeVar("R")

# The peer address of the request being handled, set by the server for each request task;
# JoinGroup records it as the member's client_host (DescribeGroups shows it).
PEER_HOST: contextvars.ContextVar[str] = contextvars.ContextVar("peer_host", default="")


class ShardState(enum.Enum):
    LOADING = "Loading"
    ACTIVE = "Active"
    FAILED = "Failed"
    CLOSED = "Closed"


_TRANSITIONS: dict[ShardState, frozenset[ShardState]] = {
    ShardState.LOADING: frozenset({ShardState.ACTIVE, ShardState.FAILED, ShardState.CLOSED}),
    ShardState.ACTIVE: frozenset({ShardState.LOADING, ShardState.CLOSED}),
    ShardState.FAILED: frozenset({ShardState.CLOSED}),
    ShardState.CLOSED: frozenset(),
}

# What a request for a shard in each state is answered with (ACTIVE: served).
_UNAVAILABLE: dict[ShardState, ErrorCode] = {
    ShardState.LOADING: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ShardState.FAILED: ErrorCode.NOT_COORDINATOR,
    ShardState.CLOSED: ErrorCode.NOT_COORDINATOR,
}


def request_client_host() -> str:
    """The client_host of the current request: its peer address."""
    return PEER_HOST.get()


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def group_config(broker: Broker) -> GroupConfig:
    """The coordinator's settings from the broker config (Kafka names in GroupConfig)."""
    config = broker.config
    return GroupConfig(
        group_min_session_timeout_ms=config.group_min_session_timeout_ms,
        group_max_session_timeout_ms=config.group_max_session_timeout_ms,
        group_max_size=config.group_max_size,
        group_initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
        offsets_retention_ms=config.offsets_retention_minutes * 60_000,
        consumer=_consumer_group_config(broker),
    )


def _consumer_group_config(broker: Broker) -> ConsumerGroupConfig:
    config = broker.config
    return ConsumerGroupConfig(
        session_timeout_ms=config.group_consumer_session_timeout_ms,
        heartbeat_interval_ms=config.group_consumer_heartbeat_interval_ms,
        max_size=config.group_consumer_max_size,
        assignors=config.group_consumer_assignors,
    )


class Shard:
    """One `__consumer_offsets` partition and the coordinator of its groups."""

    def __init__(self, partition: int, plog: PartitionLog) -> None:
        self.partition = partition
        self.plog = plog
        self.state = ShardState.LOADING
        self.coordinator: GroupCoordinator | None = None
        # Parked JoinGroup/SyncGroup requests by ticket; resolved with a response or an
        # ErrorCode when the shard fails.
        self.waiters: dict[int, asyncio.Future[Any]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.timer_deadline_ms: int | None = None

    def transition_to(self, state: ShardState) -> None:
        if state not in _TRANSITIONS[self.state]:
            raise AssertionError(f"shard {self.partition}: {self.state.value} -> {state.value}")
        self.state = state

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        self.timer_deadline_ms = None

    def fail_waiters(self, code: ErrorCode) -> None:
        waiters, self.waiters = self.waiters, {}
        for future in waiters.values():
            if not future.done():
                future.set_result(code)


class GroupCoordinatorRuntime:
    """Every shard of `__consumer_offsets` on this broker; see the module docstring."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._shards: list[Shard] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Load the shards of an existing `__consumer_offsets` in the background."""
        info = self._broker.topics.get(OFFSETS_TOPIC)
        if info is None or self._shards:
            return
        self._shards = [Shard(p, plog) for p, plog in enumerate(info.logs)]
        self._spawn(self._load_all(self._shards))

    def close(self) -> None:
        """Shutdown: stop timers and loads, answer parked requests NOT_COORDINATOR."""
        self._closed = True
        for shard in self._shards:
            shard.cancel_timer()
            shard.fail_waiters(ErrorCode.NOT_COORDINATOR)
            if shard.state is not ShardState.CLOSED:
                shard.transition_to(ShardState.CLOSED)
        for task in list(self._tasks):
            task.cancel()

    def resign(self) -> None:
        """`__consumer_offsets` was deleted (DeleteTopics): every shard resigns, as Kafka's
        coordinator does when the topic leaves the metadata. Timers stop, parked requests get
        NOT_COORDINATOR (clients look for the coordinator again), calls in flight fail on the
        closed logs the same way, and the groups are gone with the records they lived in; the
        next group request creates the topic again."""
        shards, self._shards = self._shards, []
        for shard in shards:
            shard.cancel_timer()
            shard.fail_waiters(ErrorCode.NOT_COORDINATOR)
            if shard.state is not ShardState.CLOSED:
                shard.transition_to(ShardState.CLOSED)
            shard.coordinator = None

    @property
    def shards(self) -> list[Shard]:
        return self._shards

    # ---- routing -------------------------------------------------------------------------
    def ensure_topic(self) -> bool:
        """Create `__consumer_offsets` on first use; False when that is impossible now."""
        if self._shards:
            return True
        if self._closed:
            return False
        broker = self._broker
        info = broker.topics.get(OFFSETS_TOPIC)
        if info is None:
            configs = {
                "cleanup.policy": "compact",
                "segment.bytes": str(OFFSETS_TOPIC_SEGMENT_BYTES),
                # A coordinator batch holds what one request carried (commits of many
                # partitions, a large group's metadata): bound it by the request size.
                "max.message.bytes": str(broker.config.socket_request_max_bytes),
            }
            try:
                info = broker.topics.create(
                    OFFSETS_TOPIC, broker.config.offsets_topic_num_partitions, configs,
                    is_internal=True,
                )
            except (TopicError, StorageError, OSError) as err:
                log.error("cannot create %s: %s", OFFSETS_TOPIC, err)
                return False
            for plog in info.logs:
                plog.set_high_watermark(plog.log_end_offset)
            self._shards = [Shard(p, plog) for p, plog in enumerate(info.logs)]
            for shard in self._shards:
                self._activate(shard, GroupCoordinator(group_config(broker)))
            return True
        # The topic exists but start() was not called (a runtime used without the app).
        self.start()
        return True

    def route(self, group_id: str) -> Shard | None:
        """The shard of `group_id`; None when `__consumer_offsets` cannot be created."""
        if not self.ensure_topic():
            return None
        return self._shards[partition_for(group_id, len(self._shards))]

    def route_many(self, group_ids: Iterable[str]) -> dict[Shard | None, list[str]]:
        """Group ids by shard, in first-seen order (None: no coordinator available)."""
        routed: dict[Shard | None, list[str]] = {}
        for group_id in group_ids:
            routed.setdefault(self.route(group_id), []).append(group_id)
        return routed

    # ---- calls ---------------------------------------------------------------------------
    async def call(
        self,
        group_id: str,
        fn: Callable[[GroupCoordinator, int], Result[R]],
        error: Callable[[ErrorCode], R],
    ) -> R:
        """Run `fn(coordinator, now_ms)` on the shard of `group_id`; see `run`."""
        shard = self.route(group_id)
        if shard is None:
            return error(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        return await self.run(shard, fn, error)

    async def run(
        self,
        shard: Shard,
        fn: Callable[[GroupCoordinator, int], Result[R]],
        error: Callable[[ErrorCode], R],
    ) -> R:
        """The response once durable, or `error(code)` when the shard cannot serve it."""
        coordinator = shard.coordinator
        if shard.state is not ShardState.ACTIVE or coordinator is None:
            return error(_UNAVAILABLE.get(shard.state, ErrorCode.NOT_COORDINATOR))
        result = fn(coordinator, wall_ms())
        future: asyncio.Future[Any] | None = None
        if result.response is None:
            assert result.ticket is not None, "a parked request needs a ticket"
            future = asyncio.get_running_loop().create_future()
            shard.waiters[result.ticket] = future
        try:
            durable = self._append(shard, coordinator, result.records)
            self._reschedule(shard)
            if not await self._settle(shard, coordinator, result, durable):
                return error(ErrorCode.NOT_COORDINATOR)
            if future is None:
                assert result.response is not None
                return result.response
            answer = await future
        finally:
            if result.ticket is not None:
                shard.waiters.pop(result.ticket, None)
        if isinstance(answer, ErrorCode):
            return error(answer)
        return answer  # type: ignore[no-any-return]

    def _append(
        self, shard: Shard, coordinator: GroupCoordinator, records: list[GroupRecord]
    ) -> int | None:
        """Append `records` as one batch; the offset to wait durable for (None: failed)."""
        plog = shard.plog
        if records:
            now = wall_ms()
            builder = BatchBuilder(max_batch_bytes=LONG_MAX)
            for record in records:
                builder.append(now, record.key, record.value)
            try:
                plog.append_as_leader(builder.build(), LEADER_EPOCH, now)
            except StorageError as err:
                self._fail(shard, coordinator, err)
                return None
        return plog.log_end_offset

    async def _settle(
        self,
        shard: Shard,
        coordinator: GroupCoordinator,
        result: Result[Any],
        durable: int | None,
    ) -> bool:
        """Wait for durability up to `durable`, then deliver the completions."""
        if durable is None:
            return False
        plog = shard.plog
        try:
            await self._broker.group_commit.wait_durable(plog, durable)
        except StorageError as err:
            self._fail(shard, coordinator, err)
            return False
        if shard.coordinator is not coordinator or shard.state is not ShardState.ACTIVE:
            return False  # failed (and perhaps reloaded) while waiting
        if durable > plog.high_watermark:
            plog.set_high_watermark(durable)
            self._broker.purgatory.notify(TopicPartition(OFFSETS_TOPIC, shard.partition))
        for completion in result.completions:
            future = shard.waiters.pop(completion.ticket, None)
            if future is not None and not future.done():
                future.set_result(completion.response)
        return True

    def _fail(self, shard: Shard, coordinator: GroupCoordinator, err: StorageError) -> None:
        if shard.coordinator is not coordinator or shard.state is not ShardState.ACTIVE:
            return  # already failed by an earlier call
        log.error(
            "%s-%d: append failed (%s); answering NOT_COORDINATOR and reloading",
            OFFSETS_TOPIC, shard.partition, err,
        )
        shard.transition_to(ShardState.LOADING)
        shard.coordinator = None
        shard.cancel_timer()
        shard.fail_waiters(ErrorCode.NOT_COORDINATOR)
        self._spawn(self._load_all([shard]))

    # ---- timers --------------------------------------------------------------------------
    def _reschedule(self, shard: Shard) -> None:
        coordinator = shard.coordinator
        if coordinator is None or shard.state is not ShardState.ACTIVE:
            return
        deadline = coordinator.next_deadline_ms()
        if deadline == shard.timer_deadline_ms:
            return
        shard.cancel_timer()
        if deadline is None:
            return
        delay_s = max(deadline - wall_ms() + TIMER_SLACK_MS, 0) / 1000.0
        shard.timer = asyncio.get_running_loop().call_later(
            delay_s, self._on_timer, shard, coordinator
        )
        shard.timer_deadline_ms = deadline

    def _on_timer(self, shard: Shard, coordinator: GroupCoordinator) -> None:
        shard.timer = None
        shard.timer_deadline_ms = None
        if shard.coordinator is not coordinator or shard.state is not ShardState.ACTIVE:
            return
        result = coordinator.expire(wall_ms())
        durable = self._append(shard, coordinator, result.records)
        self._reschedule(shard)
        if result.records or result.completions:
            self._spawn(self._settle(shard, coordinator, result, durable))

    # ---- loading -------------------------------------------------------------------------
    def _activate(self, shard: Shard, coordinator: GroupCoordinator) -> None:
        shard.coordinator = coordinator
        shard.transition_to(ShardState.ACTIVE)
        self._reschedule(shard)

    async def _load_all(self, shards: list[Shard]) -> None:
        config = group_config(self._broker)
        for shard in shards:
            if shard.state is not ShardState.LOADING:
                continue
            started = time.monotonic()
            coordinator = GroupCoordinator(config)
            try:
                records = await self._replay(shard.plog, coordinator)
            except (ProtocolError, RecordsError, StorageError) as err:
                log.error("%s-%d: cannot load: %s", OFFSETS_TOPIC, shard.partition, err)
                if shard.state is ShardState.LOADING:
                    shard.transition_to(ShardState.FAILED)
                continue
            if shard.state is not ShardState.LOADING:
                continue  # closed meanwhile
            coordinator.finish_loading(wall_ms())
            self._activate(shard, coordinator)
            if records:
                log.info(
                    "%s-%d: loaded %d records in %.0f ms", OFFSETS_TOPIC, shard.partition,
                    records, (time.monotonic() - started) * 1000,
                )

    @staticmethod
    async def _replay(plog: PartitionLog, coordinator: GroupCoordinator) -> int:
        """Feed every record of `plog` to `coordinator.replay`; returns how many."""
        offset = plog.log_start_offset
        end = plog.log_end_offset
        count = 0
        while offset < end:
            data = plog.read(offset, LOAD_BUFFER_BYTES, max_offset=end)
            if not data.records:
                break
            for chunk in data.records:
                for batch in iter_batches(chunk):
                    if not batch.is_control:
                        for record in iter_records(batch):
                            if record.key is None:
                                continue  # not a coordinator record: Kafka skips these too
                            coordinator.replay(record.key, record.value)
                            count += 1
                    offset = batch.last_offset + 1
            await asyncio.sleep(0)  # let requests in (they get COORDINATOR_LOAD_IN_PROGRESS)
        return count

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
