"""A tiny Kafka responder for compatibility tests: it records every request a real client sends.

Contract: `CaptureServer` listens on 127.0.0.1 (ephemeral port), one thread per connection. Every
frame goes through `josef.protocol.connection.ServerConnection`; each decoded request is kept as
a `Captured` (the decoded `Request` plus the raw frame after its size prefix), so a test can
check that the codec consumed the client's bytes exactly and re-encodes them byte for byte.

It answers with the generated response classes, just enough for a client to move on to its next
request: ApiVersions (the `ADVERTISED` ranges, optionally capped), Metadata (one broker, itself;
every topic a client names exists with `PARTITIONS` partitions led by it), Produce (appends the
batches to an in-memory log and returns their base_offset), Fetch (the batches at or after
fetch_offset, or nothing after a short wait), ListOffsets, FindCoordinator (itself), a one-member
classic group (JoinGroup makes the caller leader; SyncGroup hands back the leader's assignment),
Heartbeat, LeaveGroup, OffsetCommit/OffsetFetch (kept in memory), InitProducerId and the
transactional calls (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn: no error, no
transaction markers written). It is not a broker: no validation beyond what the codec and the
record batch view do.

A frame the codec rejects is recorded in `errors` and closes that connection, as a broker would.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from josef.protocol._generated.add_offsets_to_txn import AddOffsetsToTxnResponse
from josef.protocol._generated.add_partitions_to_txn import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopicResult,
)
from josef.protocol._generated.api_versions import ApiVersionsResponse
from josef.protocol._generated.end_txn import EndTxnResponse
from josef.protocol._generated.fetch import FetchResponse
from josef.protocol._generated.find_coordinator import FindCoordinatorResponse
from josef.protocol._generated.heartbeat import HeartbeatResponse
from josef.protocol._generated.init_producer_id import InitProducerIdResponse
from josef.protocol._generated.join_group import JoinGroupResponse
from josef.protocol._generated.leave_group import LeaveGroupResponse
from josef.protocol._generated.list_offsets import ListOffsetsResponse
from josef.protocol._generated.metadata import MetadataResponse
from josef.protocol._generated.offset_commit import OffsetCommitResponse
from josef.protocol._generated.offset_fetch import OffsetFetchResponse
from josef.protocol._generated.produce import ProduceResponse
from josef.protocol._generated.sync_group import SyncGroupResponse
from josef.protocol._generated.txn_offset_commit import TxnOffsetCommitResponse
from josef.protocol.connection import Request, ServerConnection, api_versions_fallback
from josef.protocol.exceptions import ProtocolError
from josef.protocol.messages import API_KEYS
from josef.records.batch import BatchHeader, iter_batches

NODE_ID = 1
CLUSTER_ID = "josef-capture-cluster"
PARTITIONS = 1
PRODUCER_ID = 1
PRODUCER_EPOCH = 0
GENERATION_ID = 1
LEADER_EPOCH = 0
# The ListOffsets timestamp that asks for log_start_offset (Kafka's EARLIEST_TIMESTAMP); every
# other one (LATEST_TIMESTAMP -1, a time) gets the log_end_offset here.
EARLIEST_TIMESTAMP = -2
# An empty fetch is answered after min(max_wait_ms, this): clients long-poll with 100-500 ms
# (fetch.wait.max.ms / fetch_max_wait_ms); a shorter wait keeps the tests fast without
# letting an idle consumer spin.
EMPTY_FETCH_WAIT_S = 0.05
# Bounds for one test run: a scenario sends a few dozen requests; far more means a client is
# looping on something this responder gets wrong, and the test should fail, not fill memory.
MAX_CAPTURED = 5_000
RECV_BYTES = 65_536
# serve_forever's poll interval, which is how long close() waits (socketserver's default: 0.5 s).
SHUTDOWN_POLL_S = 0.02
ERROR_BYTES = 256  # of a rejected frame, quoted in `errors`

# The API keys answered here, with the versions advertised: every version the specifications
# define, so each client picks the newest it knows.
ANSWERED_KEYS = (0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 22, 24, 25, 26, 28)
ADVERTISED: dict[int, tuple[int, int]] = {
    key: (API_KEYS[key].min_version, API_KEYS[key].max_version) for key in ANSWERED_KEYS
}


def pre_flexible_caps() -> dict[int, int]:
    """Caps that keep every answered API below its first flexible version (ApiVersions v2,
    Metadata v8, Produce v8, Fetch v11 ...): exercises the classic encodings end to end."""
    caps: dict[int, int] = {}
    for key in ANSWERED_KEYS:
        flexible = API_KEYS[key].first_flexible_version
        if flexible is not None:
            caps[key] = flexible - 1
    return caps


@dataclass(frozen=True, slots=True)
class Captured:
    request: Request
    frame: bytes  # header + body as received, without the int32 size prefix


@dataclass
class _Group:
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


class CaptureServer:
    """Start with `start()` (or as a context manager); `bootstrap` is "127.0.0.1:<port>"."""

    def __init__(self, caps: dict[int, int] | None = None) -> None:
        """`caps` lowers the advertised max version of some API keys (api_key -> max)."""
        self.advertised = {
            key: (low, min(high, (caps or {}).get(key, high)))
            for key, (low, high) in ADVERTISED.items()
        }
        self.captured: list[Captured] = []
        self.errors: list[str] = []
        self._lock = threading.RLock()  # handlers holding it call helpers that take it too
        self._topics: dict[str, uuid.UUID] = {}
        self._log: dict[tuple[str, int], list[bytes]] = {}
        self._groups: dict[str, _Group] = {}
        self._member_ids = 0
        self._server = _TCPServer(("127.0.0.1", 0), _Handler)
        self._server.capture = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True
        )
        self._handlers: dict[int, Callable[[Request], Any]] = {
            0: self._produce,
            1: self._fetch,
            2: self._list_offsets,
            3: self._metadata,
            8: self._offset_commit,
            9: self._offset_fetch,
            10: self._find_coordinator,
            11: self._join_group,
            12: self._heartbeat,
            13: self._leave_group,
            14: self._sync_group,
            18: self._api_versions,
            22: self._init_producer_id,
            24: self._add_partitions_to_txn,
            25: self._add_offsets_to_txn,
            26: self._end_txn,
            28: self._txn_offset_commit,
        }

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> CaptureServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def requests(self, api_key: int | None = None) -> list[Captured]:
        """A snapshot of the captured requests (of one API key, or all), in arrival order."""
        with self._lock:
            return [c for c in self.captured if api_key in (None, c.request.api_key)]

    def supported(self, api_key: int, api_version: int) -> bool:
        versions = self.advertised.get(api_key)
        return versions is not None and versions[0] <= api_version <= versions[1]

    # -- connection pump (called from the per-connection thread) --

    def serve_connection(self, sock: socket.socket) -> None:
        conn = ServerConnection(supported=self.supported)
        raw = bytearray()  # the same stream, to slice out each request's frame as sent
        while True:
            data = sock.recv(RECV_BYTES)
            if not data:
                return
            raw += data
            try:
                conn.receive_data(data)
                while (request := conn.next_request()) is not None:
                    frame = bytes(raw[4 : 4 + request.frame_size])
                    del raw[: 4 + request.frame_size]
                    if not self._record(Captured(request, frame)):
                        return
                    body = self._respond(request)
                    if body is not None:
                        sock.sendall(b"".join(conn.encode_response(request, body)))
            except ProtocolError as e:
                # The rejected frame leads `raw`: keep its start for the failure message.
                with self._lock:
                    self.errors.append(f"{type(e).__name__}: {e}; frame {raw[:ERROR_BYTES].hex()}")
                return

    def _record(self, captured: Captured) -> bool:
        with self._lock:
            if len(self.captured) >= MAX_CAPTURED:
                self.errors.append(f"more than {MAX_CAPTURED} requests: client looping")
                return False
            self.captured.append(captured)
            return True

    def _respond(self, request: Request) -> Any:
        if request.unsupported_version:
            return api_versions_fallback(self.advertised[18][1])
        return self._handlers[request.api_key](request)

    def topic_id(self, name: str) -> uuid.UUID:
        """The topic's id, creating the topic if it is new (as auto-creation would)."""
        with self._lock:
            return self._topics.setdefault(name, uuid.uuid5(uuid.NAMESPACE_URL, name))

    def _topic_name(self, name: str | None, topic_id: uuid.UUID) -> str:
        if name:
            return name
        with self._lock:
            for known, known_id in self._topics.items():
                if known_id == topic_id:
                    return known
        return ""

    def _log_end_offset(self, tp: tuple[str, int]) -> int:
        batches = self._log.get(tp)
        return BatchHeader(batches[-1]).next_offset if batches else 0

    # -- one method per API key --

    def _api_versions(self, request: Request) -> ApiVersionsResponse:
        return ApiVersionsResponse(
            api_keys=[
                ApiVersionsResponse.ApiVersion(api_key=key, min_version=low, max_version=high)
                for key, (low, high) in sorted(self.advertised.items())
            ]
        )

    def _metadata(self, request: Request) -> MetadataResponse:
        body = request.body
        if body.topics:
            names = [self._topic_name(t.name, t.topic_id) for t in body.topics]
            for name in names:
                self.topic_id(name)
        else:
            with self._lock:
                names = list(self._topics)
        return MetadataResponse(
            brokers=[
                MetadataResponse.MetadataResponseBroker(
                    node_id=NODE_ID, host="127.0.0.1", port=self.port
                )
            ],
            cluster_id=CLUSTER_ID,
            controller_id=NODE_ID,
            topics=[
                MetadataResponse.MetadataResponseTopic(
                    name=name,
                    topic_id=self.topic_id(name),
                    partitions=[
                        MetadataResponse.MetadataResponsePartition(
                            partition_index=p,
                            leader_id=NODE_ID,
                            leader_epoch=LEADER_EPOCH,
                            replica_nodes=[NODE_ID],
                            isr_nodes=[NODE_ID],
                        )
                        for p in range(PARTITIONS)
                    ],
                )
                for name in names
            ],
        )

    def _produce(self, request: Request) -> ProduceResponse | None:
        body = request.body
        responses = []
        with self._lock:
            for topic in body.topic_data:
                partitions = []
                for data in topic.partition_data:
                    tp = (topic.name, data.index)
                    base_offset = self._log_end_offset(tp)
                    next_offset = base_offset
                    for header in iter_batches(data.records or b""):
                        # The stored copy gets its offsets, as a broker assigns them on append.
                        stored = bytearray(header.view())
                        stored_header = BatchHeader(stored)
                        stored_header.set_base_offset(next_offset)
                        stored_header.set_partition_leader_epoch(LEADER_EPOCH)
                        self._log.setdefault(tp, []).append(bytes(stored))
                        next_offset = stored_header.next_offset
                    partitions.append(
                        ProduceResponse.PartitionProduceResponse(
                            index=data.index, base_offset=base_offset, log_start_offset=0
                        )
                    )
                responses.append(
                    ProduceResponse.TopicProduceResponse(
                        name=topic.name, partition_responses=partitions
                    )
                )
        if body.acks == 0:  # Kafka sends no response at all for acks=0
            return None
        return ProduceResponse(responses=responses)

    def _fetch(self, request: Request) -> FetchResponse:
        body = request.body
        topics = []
        found = False
        with self._lock:
            for topic in body.topics:
                name = self._topic_name(topic.topic, topic.topic_id)
                partitions = []
                for part in topic.partitions:
                    tp = (name, part.partition)
                    chosen: list[bytes] = []
                    size = 0
                    for batch in self._log.get(tp, []):
                        if BatchHeader(batch).next_offset <= part.fetch_offset:
                            continue
                        # Kafka returns at least one whole batch, then stops at the limit.
                        if chosen and size + len(batch) > part.partition_max_bytes:
                            break
                        chosen.append(batch)
                        size += len(batch)
                    found = found or bool(chosen)
                    partitions.append(
                        FetchResponse.PartitionData(
                            partition_index=part.partition,
                            high_watermark=self._log_end_offset(tp),
                            last_stable_offset=self._log_end_offset(tp),
                            log_start_offset=0,
                            records=b"".join(chosen),
                        )
                    )
                topics.append(
                    FetchResponse.FetchableTopicResponse(
                        topic=name, topic_id=topic.topic_id, partitions=partitions
                    )
                )
        if not found:
            time.sleep(min(body.max_wait_ms / 1000, EMPTY_FETCH_WAIT_S))
        return FetchResponse(responses=topics)

    def _list_offsets(self, request: Request) -> ListOffsetsResponse:
        topics = []
        with self._lock:
            for topic in request.body.topics:
                partitions = []
                for part in topic.partitions:
                    end = self._log_end_offset((topic.name, part.partition_index))
                    offset = 0 if part.timestamp == EARLIEST_TIMESTAMP else end
                    partitions.append(
                        ListOffsetsResponse.ListOffsetsPartitionResponse(
                            partition_index=part.partition_index,
                            old_style_offsets=[offset],
                            offset=offset,
                            leader_epoch=LEADER_EPOCH,
                        )
                    )
                topics.append(
                    ListOffsetsResponse.ListOffsetsTopicResponse(
                        name=topic.name, partitions=partitions
                    )
                )
        return ListOffsetsResponse(topics=topics)

    def _find_coordinator(self, request: Request) -> FindCoordinatorResponse:
        body = request.body
        keys = body.coordinator_keys or [body.key]
        return FindCoordinatorResponse(
            error_message=None,
            node_id=NODE_ID,
            host="127.0.0.1",
            port=self.port,
            coordinators=[
                FindCoordinatorResponse.Coordinator(
                    key=key, node_id=NODE_ID, host="127.0.0.1", port=self.port, error_message=None
                )
                for key in keys
            ],
        )

    def _group(self, group_id: str) -> _Group:
        return self._groups.setdefault(group_id, _Group())

    def _join_group(self, request: Request) -> JoinGroupResponse:
        body = request.body
        with self._lock:
            group = self._group(body.group_id)
            if body.member_id:
                member_id = body.member_id
            else:
                self._member_ids += 1
                member_id = f"{request.client_id}-member-{self._member_ids}"
            protocol = body.protocols[0]
            group.protocol_type = body.protocol_type
            group.protocol_name = protocol.name
        return JoinGroupResponse(
            generation_id=GENERATION_ID,
            protocol_type=body.protocol_type,
            protocol_name=protocol.name,
            leader=member_id,
            member_id=member_id,
            members=[
                JoinGroupResponse.JoinGroupResponseMember(
                    member_id=member_id,
                    group_instance_id=body.group_instance_id,
                    metadata=bytes(protocol.metadata),
                )
            ],
        )

    def _sync_group(self, request: Request) -> SyncGroupResponse:
        body = request.body
        with self._lock:
            group = self._group(body.group_id)
            for assignment in body.assignments:
                if assignment.member_id == body.member_id:
                    group.assignment = bytes(assignment.assignment)
            return SyncGroupResponse(
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name,
                assignment=group.assignment,
            )

    def _heartbeat(self, request: Request) -> HeartbeatResponse:
        return HeartbeatResponse()

    def _leave_group(self, request: Request) -> LeaveGroupResponse:
        return LeaveGroupResponse(
            members=[
                LeaveGroupResponse.MemberResponse(
                    member_id=m.member_id, group_instance_id=m.group_instance_id
                )
                for m in request.body.members
            ]
        )

    def _offset_commit(self, request: Request) -> OffsetCommitResponse:
        body = request.body
        with self._lock:
            group = self._group(body.group_id)
            for topic in body.topics:
                for part in topic.partitions:
                    group.committed[(topic.name, part.partition_index)] = part.committed_offset
        return OffsetCommitResponse(
            topics=[
                OffsetCommitResponse.OffsetCommitResponseTopic(
                    name=topic.name,
                    partitions=[
                        OffsetCommitResponse.OffsetCommitResponsePartition(
                            partition_index=part.partition_index
                        )
                        for part in topic.partitions
                    ],
                )
                for topic in body.topics
            ]
        )

    def _offset_fetch(self, request: Request) -> OffsetFetchResponse:
        body = request.body
        if request.api_version >= 8:  # v8+ asks for several groups at once
            with self._lock:
                groups = [
                    OffsetFetchResponse.OffsetFetchResponseGroup(
                        group_id=g.group_id,
                        topics=[
                            OffsetFetchResponse.OffsetFetchResponseTopics(
                                name=t.name,
                                partitions=[
                                    OffsetFetchResponse.OffsetFetchResponsePartitions(
                                        partition_index=p,
                                        committed_offset=self._committed(g.group_id, t.name, p),
                                    )
                                    for p in t.partition_indexes
                                ],
                            )
                            for t in g.topics or []
                        ],
                    )
                    for g in body.groups
                ]
            return OffsetFetchResponse(groups=groups)
        with self._lock:
            topics = [
                OffsetFetchResponse.OffsetFetchResponseTopic(
                    name=t.name,
                    partitions=[
                        OffsetFetchResponse.OffsetFetchResponsePartition(
                            partition_index=p,
                            committed_offset=self._committed(body.group_id, t.name, p),
                        )
                        for p in t.partition_indexes
                    ],
                )
                for t in body.topics or []
            ]
        return OffsetFetchResponse(topics=topics)

    def _committed(self, group_id: str, topic: str, partition: int) -> int:
        return self._group(group_id).committed.get((topic, partition), -1)

    def _init_producer_id(self, request: Request) -> InitProducerIdResponse:
        return InitProducerIdResponse(producer_id=PRODUCER_ID, producer_epoch=PRODUCER_EPOCH)

    def _add_partitions_to_txn(self, request: Request) -> AddPartitionsToTxnResponse:
        body = request.body

        def results(topics: list[Any]) -> list[AddPartitionsToTxnTopicResult]:
            return [
                AddPartitionsToTxnTopicResult(
                    name=topic.name,
                    results_by_partition=[
                        AddPartitionsToTxnPartitionResult(partition_index=p)
                        for p in topic.partitions
                    ],
                )
                for topic in topics
            ]

        if request.api_version >= 4:  # v4+ (KIP-890) batches several transactions
            return AddPartitionsToTxnResponse(
                results_by_transaction=[
                    AddPartitionsToTxnResponse.AddPartitionsToTxnResult(
                        transactional_id=txn.transactional_id, topic_results=results(txn.topics)
                    )
                    for txn in body.transactions
                ]
            )
        return AddPartitionsToTxnResponse(
            results_by_topic_v3_and_below=results(body.v3_and_below_topics)
        )

    def _add_offsets_to_txn(self, request: Request) -> AddOffsetsToTxnResponse:
        return AddOffsetsToTxnResponse()

    def _end_txn(self, request: Request) -> EndTxnResponse:
        return EndTxnResponse(producer_id=PRODUCER_ID, producer_epoch=PRODUCER_EPOCH)

    def _txn_offset_commit(self, request: Request) -> TxnOffsetCommitResponse:
        return TxnOffsetCommitResponse(
            topics=[
                TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic(
                    name=topic.name,
                    partitions=[
                        TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition(
                            partition_index=part.partition_index
                        )
                        for part in topic.partitions
                    ],
                )
                for topic in request.body.topics
            ]
        )


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    capture: CaptureServer


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.server.capture.serve_connection(self.request)
        except OSError:  # the client hung up mid-response: its scenario is over
            return
