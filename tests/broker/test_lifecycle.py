"""Start-up, clean shutdown (SIGTERM, exit 0), SIGKILL, restart, connection limits, bad
configuration: data and identity survive, limits hold. (Helper F's file.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from josef.protocol._generated.metadata import MetadataRequest
from josef.protocol.errors import ErrorCode
from josef.records.batch import iter_batches
from josef.records.records import iter_records
from tests.broker import wire
from tests.broker.conftest import ServeProcess
from tests.broker.test_data_plane import batch, create, fetch_request, produce


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value of partition 0, in offset order, each once."""
    out: list[bytes] = []
    with wire.connect(bootstrap) as sock:
        while True:
            response = wire.call(sock, 1, 12, fetch_request(topic, len(out)))
            data = response.responses[0].partitions[0]
            assert data.error_code == ErrorCode.NONE
            fetched = [
                (b.base_offset + r.offset_delta, r.value)
                for b in iter_batches(bytes(data.records))
                for r in iter_records(b)
            ]
            if not fetched:
                return out
            # Whole batches come back: skip records before the offset asked for.
            for offset, value in fetched:
                if offset == len(out):
                    out.append(value)


def _metadata(bootstrap: str):
    with wire.connect(bootstrap) as sock:
        return wire.call(sock, 3, 12, MetadataRequest(topics=None))


def test_sigterm_is_clean_and_restart_keeps_everything(
    serve_factory: Callable[..., ServeProcess]
) -> None:
    server = serve_factory().start()
    with wire.connect(server.bootstrap) as sock:
        assert create(sock, "keep", partitions=2).error_code == ErrorCode.NONE
        for i in range(50):
            assert produce(sock, "keep", batch(b"r%d" % i), acks=-1).base_offset == i
    before = _metadata(server.bootstrap)
    assert server.stop() == 0
    assert "shut down cleanly" in server.log()
    server.start()
    after = _metadata(server.bootstrap)
    assert after.cluster_id == before.cluster_id
    assert [(t.name, t.topic_id, len(t.partitions)) for t in after.topics] == [
        (t.name, t.topic_id, len(t.partitions)) for t in before.topics]
    assert _read_all(server.bootstrap, "keep") == [b"r%d" % i for i in range(50)]
    with wire.connect(server.bootstrap) as sock:
        assert produce(sock, "keep", batch(b"next")).base_offset == 50
    assert server.stop() == 0


def test_sigkill_loses_no_acknowledged_record(
    serve_factory: Callable[..., ServeProcess]
) -> None:
    server = serve_factory().start()
    with wire.connect(server.bootstrap) as sock:
        assert create(sock, "crash").error_code == ErrorCode.NONE
        for i in range(100):
            assert produce(sock, "crash", batch(b"c%d" % i), acks=-1).error_code == 0
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.start()
    assert _read_all(server.bootstrap, "crash") == [b"c%d" % i for i in range(100)]
    assert server.stop() == 0


def test_fsync_before_ack_topic(serve_factory: Callable[..., ServeProcess]) -> None:
    server = serve_factory({"log.flush.interval.messages": "1"}).start()
    with wire.connect(server.bootstrap) as sock:
        assert create(sock, "synced").error_code == ErrorCode.NONE
        assert create(sock, "timed", configs={"flush.ms": "200",
                                               "flush.messages": "1000000"}).error_code == 0
        for i in range(20):
            assert produce(sock, "synced", batch(b"s%d" % i), acks=-1).base_offset == i
            assert produce(sock, "timed", batch(b"t%d" % i), acks=1).base_offset == i
        data = wire.call(sock, 1, 12, fetch_request("synced", 0)).responses[0].partitions[0]
        assert data.high_watermark == 20
    assert server.stop() == 0
    # Both topics were fsynced before the clean shutdown flushed everything anyway: restart
    # and read back.
    server.start()
    assert _read_all(server.bootstrap, "synced") == [b"s%d" % i for i in range(20)]
    assert _read_all(server.bootstrap, "timed") == [b"t%d" % i for i in range(20)]
    assert server.stop() == 0


def test_node_id_mismatch_refuses_to_start(serve_factory: Callable[..., ServeProcess]) -> None:
    server = serve_factory().start()
    assert server.stop() == 0
    other = serve_factory({"node.id": "7"})
    try:
        other.start()
    except RuntimeError as err:
        assert "node.id" in str(err)
    else:
        raise AssertionError("a log dir of node 1 was opened by node 7")


def test_connection_limits_and_idle_timeout(serve_factory: Callable[..., ServeProcess]) -> None:
    server = serve_factory(
        {"max.connections": "4", "connections.max.idle.ms": "400"}).start()
    held = [wire.connect(server.bootstrap) for _ in range(4)]
    try:
        extra = wire.connect(server.bootstrap)
        assert wire.is_closed(extra)
        assert "max.connections (4) reached" in server.log()
        # Idle connections are closed after connections.max.idle.ms ...
        assert all(wire.is_closed(sock, timeout=5) for sock in held)
        assert "connections.max.idle.ms" in server.log()
        # ... which frees room for new clients.
        with wire.connect(server.bootstrap) as sock:
            assert wire.call(sock, 3, 12, MetadataRequest(topics=None)).brokers
    finally:
        for sock in held:
            sock.close()
    assert server.stop() == 0


def test_invalid_configuration_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "josef", "serve", "--override", "num.partitions=many",
         "--override", f"log.dirs={tmp_path}"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "num.partitions" in result.stderr and "--override" in result.stderr


def test_config_file_and_banner(serve_factory: Callable[..., ServeProcess], tmp_path: Path) -> None:
    config = tmp_path / "server.properties"
    config.write_text("# Kafka syntax\nnum.partitions=3\nauto.create.topics.enable: true\n")
    server = serve_factory(args=("--config", str(config))).start()
    banner = server.log()
    assert f"config file:          {config}" in banner
    assert "node.id 1" in banner and "(0 topics, 0 partitions)" in banner
    with wire.connect(server.bootstrap) as sock:
        auto = wire.call(sock, 3, 12, MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name="auto")],
            allow_auto_topic_creation=True))
    assert len(auto.topics[0].partitions) == 3
    assert server.stop() == 0


def test_request_near_socket_request_max_bytes(
    serve_factory: Callable[..., ServeProcess]
) -> None:
    server = serve_factory({"socket.request.max.bytes": "300000"}).start()
    with wire.connect(server.bootstrap) as sock:
        assert create(sock, "big", configs={"max.message.bytes": "1000000"}).error_code == 0
        # A frame of exactly the limit is buffered whole (reading never pauses mid-frame).
        probe = len(wire.encode_request(0, 9, _produce_request("big", b"x" * 299_000))) - 4
        value = b"x" * (299_000 + 300_000 - probe)
        exact = wire.encode_request(0, 9, _produce_request("big", value))
        assert len(exact) - 4 == 300_000
        sock.sendall(exact)
        _, response = wire.recv_response(sock, 0, 9)
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        # One just over it is refused before its body is read: that connection closes.
        sock.sendall(wire.encode_request(0, 9, _produce_request("big", b"y" * 301_000)))
        assert wire.is_closed(sock)
    assert "socket.request.max.bytes" in server.log()
    assert server.stop() == 0


def _produce_request(topic: str, value: bytes):
    from josef.protocol._generated.produce import ProduceRequest

    return ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch(value))])])
