"""`josef groups list | describe GROUP | reset-offsets | delete`: consumer groups of a broker.

Talks to one broker (`--bootstrap-server`, single node: it coordinates every group) with
`josef.client`. `describe` shows state, members with their assignment, and per partition the
committed offset, the log end offset and the lag. `reset-offsets` computes new offsets from
`--to-earliest`, `--to-latest`, `--to-datetime` (ms timestamp) or `--to-offset` for the topics
given; it only prints them unless `--execute` is given (Kafka's kafka-consumer-groups dry run),
and Kafka refuses it for a group with members (it must be inactive). Exit codes: 0 success,
1 a Kafka error answered, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
from collections.abc import Sequence

from josef.client import ClientError, KafkaConnection
from josef.protocol._generated.delete_groups import DeleteGroupsRequest
from josef.protocol._generated.describe_groups import DescribeGroupsRequest
from josef.protocol._generated.list_groups import ListGroupsRequest
from josef.protocol._generated.list_offsets import ListOffsetsRequest
from josef.protocol._generated.metadata import MetadataRequest
from josef.protocol._generated.offset_commit import OffsetCommitRequest
from josef.protocol._generated.offset_fetch import OffsetFetchRequest
from josef.protocol.errors import ErrorCode, describe

EARLIEST, LATEST = -2, -1  # ListOffsets timestamps (Kafka's ListOffsetsRequest constants)
CONSUMER_PROTOCOL = "consumer"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("groups", help="list, describe, reset or delete groups")
    parser.add_argument("--bootstrap-server", default="localhost:9092", metavar="HOST:PORT")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="every group and its state")
    d = sub.add_parser("describe", help="members, assignment, offsets and lag")
    d.add_argument("group")
    r = sub.add_parser("reset-offsets", help="move a group's committed offsets (dry run)")
    r.add_argument("group")
    r.add_argument("--topic", action="append", required=True, metavar="TOPIC[:P,P]")
    to = r.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true")
    to.add_argument("--to-latest", action="store_true")
    to.add_argument("--to-datetime", type=int, metavar="TIMESTAMP_MS")
    to.add_argument("--to-offset", type=int)
    r.add_argument("--execute", action="store_true", help="commit (default: only print)")
    x = sub.add_parser("delete", help="delete empty groups and their offsets")
    x.add_argument("group", nargs="+")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (ClientError, OSError) as err:
        print(f"josef groups: {err}")
        return 1


async def _run(args: argparse.Namespace) -> int:
    async with await KafkaConnection.open(args.bootstrap_server) as conn:
        if args.action == "list":
            return await _list(conn)
        if args.action == "describe":
            return await _describe(conn, args.group)
        if args.action == "reset-offsets":
            return await _reset(conn, args)
        return await _delete(conn, args.group)


def _fail(what: str, code: int) -> int:
    print(f"{what}: {ErrorCode(code).name if code in ErrorCode._value2member_map_ else code}"
          f" ({describe(code)})")
    return 1


async def _list(conn: KafkaConnection) -> int:
    response = await conn.send(ListGroupsRequest())
    rows = [(g.group_id, g.group_state or "", g.protocol_type) for g in response.groups]
    _table(("GROUP", "STATE", "PROTOCOL TYPE"), sorted(rows))
    return _fail("list", response.error_code) if response.error_code else 0


async def _committed(conn: KafkaConnection, group: str) -> dict[tuple[str, int], int]:
    response = await conn.send(OffsetFetchRequest(group_id=group, topics=None), version=7)
    if response.error_code:
        raise ClientError(f"OffsetFetch: {describe(response.error_code)}")
    return {(t.name, p.partition_index): p.committed_offset
            for t in response.topics for p in t.partitions}


async def _list_offsets(
    conn: KafkaConnection, partitions: Sequence[tuple[str, int]], timestamp: int
) -> dict[tuple[str, int], int]:
    by_topic: dict[str, list[int]] = {}
    for topic, p in partitions:
        by_topic.setdefault(topic, []).append(p)
    L = ListOffsetsRequest
    response = await conn.send(L(replica_id=-1, topics=[
        L.ListOffsetsTopic(name, [L.ListOffsetsPartition(partition_index=p, timestamp=timestamp)
                                  for p in parts])
        for name, parts in by_topic.items()
    ]))
    return {(t.name, p.partition_index): p.offset for t in response.topics for p in t.partitions
            if p.error_code == ErrorCode.NONE}


def _assigned(assignment: bytes) -> list[tuple[str, int]]:
    """Topic partitions of a ConsumerProtocolAssignment (version, [topic, [partition]])."""
    if len(assignment) < 6:
        return []
    pos, out = 2, []
    (topics,) = struct.unpack_from(">i", assignment, pos)
    pos += 4
    for _ in range(max(topics, 0)):
        (n,) = struct.unpack_from(">h", assignment, pos)
        name = assignment[pos + 2: pos + 2 + n].decode()
        pos += 2 + n
        (count,) = struct.unpack_from(">i", assignment, pos)
        pos += 4
        for _ in range(max(count, 0)):
            out.append((name, struct.unpack_from(">i", assignment, pos)[0]))
            pos += 4
    return out


async def _describe(conn: KafkaConnection, group: str) -> int:
    response = await conn.send(DescribeGroupsRequest(groups=[group]))
    g = response.groups[0]
    if g.error_code:
        return _fail(group, g.error_code)
    print(f"group {group}: state {g.group_state}, protocol {g.protocol_type or '-'}"
          f"/{g.protocol_data or '-'}, {len(g.members)} member(s)")
    owner: dict[tuple[str, int], str] = {}
    for m in g.members:
        if g.protocol_type == CONSUMER_PROTOCOL:
            for tp in _assigned(m.member_assignment):
                owner[tp] = m.member_id
    committed = await _committed(conn, group)
    partitions = sorted(set(committed) | set(owner))
    ends = await _list_offsets(conn, partitions, LATEST) if partitions else {}
    rows = []
    for tp in partitions:
        offset, end = committed.get(tp, -1), ends.get(tp)
        lag = "-" if offset < 0 or end is None else str(max(end - offset, 0))
        rows.append((tp[0], str(tp[1]), str(offset) if offset >= 0 else "-",
                     "-" if end is None else str(end), lag, owner.get(tp, "-")))
    _table(("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"), rows)
    if g.members:
        print()
        _table(("MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST"),
               [(m.member_id, m.group_instance_id or "-", m.client_id, m.client_host)
                for m in g.members])
    return 0


async def _topic_partitions(conn: KafkaConnection, specs: list[str]) -> list[tuple[str, int]]:
    wanted: list[tuple[str, int]] = []
    names = [s.split(":", 1)[0] for s in specs]
    M = MetadataRequest
    metadata = await conn.send(M(topics=[M.MetadataRequestTopic(name=n) for n in names]))
    counts = {t.name: len(t.partitions) for t in metadata.topics if t.error_code == 0}
    for spec in specs:
        name, _, parts = spec.partition(":")
        if name not in counts:
            raise ClientError(f"unknown topic {name}")
        chosen = [int(p) for p in parts.split(",")] if parts else range(counts[name])
        wanted += [(name, p) for p in chosen]
    return wanted


async def _reset(conn: KafkaConnection, args: argparse.Namespace) -> int:
    described = (await conn.send(DescribeGroupsRequest(groups=[args.group]))).groups[0]
    if described.members:
        print(f"group {args.group} has {len(described.members)} member(s): stop them first "
              f"(state {described.group_state})")
        return 1
    partitions = await _topic_partitions(conn, args.topic)
    if args.to_offset is not None:
        target = dict.fromkeys(partitions, args.to_offset)
    else:
        timestamp = (EARLIEST if args.to_earliest else LATEST if args.to_latest
                     else args.to_datetime)
        target = await _list_offsets(conn, partitions, timestamp)
        if timestamp >= 0:  # no record at or after the time: the end, as Kafka does
            ends = await _list_offsets(conn, partitions, LATEST)
            target = {tp: off if off >= 0 else ends[tp] for tp, off in target.items()}
    _table(("TOPIC", "PARTITION", "NEW-OFFSET"),
           [(t, str(p), str(o)) for (t, p), o in sorted(target.items())])
    if not args.execute:
        print("dry run: nothing committed (add --execute)")
        return 0
    C = OffsetCommitRequest
    by_topic: dict[str, list[C.OffsetCommitRequestPartition]] = {}
    for (topic, p), offset in target.items():
        by_topic.setdefault(topic, []).append(
            C.OffsetCommitRequestPartition(partition_index=p, committed_offset=offset))
    response = await conn.send(C(group_id=args.group, generation_id_or_member_epoch=-1,
                                 topics=[C.OffsetCommitRequestTopic(t, ps)
                                         for t, ps in by_topic.items()]))
    errors = [p.error_code for t in response.topics for p in t.partitions if p.error_code]
    return _fail(args.group, errors[0]) if errors else 0


async def _delete(conn: KafkaConnection, groups: list[str]) -> int:
    response = await conn.send(DeleteGroupsRequest(groups_names=groups))
    status = 0
    for r in response.results:
        if r.error_code:
            status = _fail(r.group_id, r.error_code)
        else:
            print(f"deleted {r.group_id}")
    return status


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
