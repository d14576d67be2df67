"""The NATS JetStream bus beyond conformance: the streams it leaves, pipelined publishing,
restarts of a throwaway server, and a 3-node cluster losing a node while publishing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import api

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.events.envelope import decode_envelope
from sysmonstm.events.nats_bus import NatsBus
from tests import servers
from tests.conformance.bus_backends import started
from tests.conformance.test_bus import nothing_more, payloads


@pytest.fixture
def url(nats_server_url: str, nats_prefix: str) -> str:
    return f"{nats_server_url}?stream_prefix={nats_prefix}&max_age=1h&dup_window=90s"


@pytest.fixture
async def bus(url: str) -> AsyncIterator[NatsBus]:
    async with started(NatsBus(url)) as b:
        yield b


@pytest.fixture
async def js(nats_server_url: str) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_server_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def test_each_domain_gets_its_own_stream_with_the_configured_settings(
    bus: NatsBus, js: Any, nats_prefix: str
) -> None:
    sent = await bus.publish("metrics.web1", {"cpu": 1.0}, source="web1")
    await bus.publish("alerts.cpu_high", {"state": "firing"})
    names = sorted(
        i.config.name for i in await js.streams_info() if i.config.name.startswith(nats_prefix)
    )
    assert names == [f"{nats_prefix}_ALERTS", f"{nats_prefix}_METRICS"]
    info = await js.stream_info(f"{nats_prefix}_METRICS")
    assert sorted(info.config.subjects) == [
        f"{nats_prefix}.s.metrics",
        f"{nats_prefix}.s.metrics.>",
    ]
    assert (info.config.max_age, info.config.duplicate_window) == (3600, 90)
    assert info.config.num_replicas == 1
    assert info.state.messages == 1
    stored = await js.get_msg(f"{nats_prefix}_METRICS", 1)
    assert stored.subject == f"{nats_prefix}.s.metrics.web1"
    assert stored.headers["Nats-Msg-Id"] == sent.id
    assert decode_envelope(stored.data) == sent


async def test_a_stream_is_brought_to_the_settings_of_the_url(
    url: str, js: Any, nats_prefix: str
) -> None:
    async with started(NatsBus(url)) as first:
        await first.publish("metrics.a", 1)
    async with started(NatsBus(url.replace("max_age=1h", "max_age=2h"))) as second:
        await second.publish("metrics.a", 2)
    info = await js.stream_info(f"{nats_prefix}_METRICS")
    assert info.config.max_age == 7200
    assert info.state.messages == 2


async def test_concurrent_publishes_are_pipelined_and_keep_their_order(bus: NatsBus) -> None:
    live = await bus.subscribe("p.>")
    durable = await bus.subscribe("p.>", durable="audit")
    sent = await asyncio.gather(*(bus.publish("p.x", i) for i in range(2000)))
    assert [e.payload for e in sent] == list(range(2000))
    assert await payloads(live, 2000) == list(range(2000))
    assert await payloads(durable, 2000) == list(range(2000))


async def test_closing_leaves_the_durable_at_what_was_handed_over_and_removes_replays(
    bus: NatsBus, js: Any, nats_prefix: str
) -> None:
    durable = await bus.subscribe("q.>", durable="keeper")
    for i in range(5):
        await bus.publish("q.x", i)
    replay = await bus.subscribe("q.>", since_ms=0)
    assert await payloads(durable, 2) == [0, 1]
    assert await payloads(replay, 5) == [0, 1, 2, 3, 4]
    await durable.close()
    await replay.close()
    consumers = await js.consumers_info(f"{nats_prefix}_Q")
    assert [c.name for c in consumers] == ["keeper"]
    assert consumers[0].ack_floor.stream_seq == 2
    assert consumers[0].num_ack_pending + consumers[0].num_pending == 3


async def test_history_subscriptions_need_a_domain_and_valid_names(bus: NatsBus) -> None:
    with pytest.raises(InvalidInputError, match="first token"):
        await bus.subscribe(">", durable="all")
    with pytest.raises(InvalidInputError, match="first token"):
        await bus.subscribe("*.cpu", group="workers")
    with pytest.raises(InvalidInputError, match="durable"):
        await bus.subscribe("a.>", durable="has.dot")


async def test_publishing_without_a_server_fails_with_backend_error_at_the_deadline(
    tmp_path: Path,
) -> None:
    server = servers.nats_server(tmp_path)
    server.start()
    bus = NatsBus(f"nats://127.0.0.1:{server.port}?stream_prefix=GONE&publish_timeout=1s")
    await bus.start()
    try:
        await bus.publish("a.b", 1)
        await asyncio.to_thread(server.kill)
        with pytest.raises(BackendError, match="gave up after 1 s"):
            await bus.publish("a.b", 2)
    finally:
        await bus.close()
    with pytest.raises(BackendError, match="cannot connect"):
        await NatsBus(f"nats://127.0.0.1:{server.port}?timeout=0.2s").start()


async def test_a_server_crash_and_restart_loses_nothing_for_a_durable_subscriber(
    tmp_path: Path,
) -> None:
    server = servers.nats_server(tmp_path)
    server.start()
    url = f"nats://127.0.0.1:{server.port}?stream_prefix=RST&publish_timeout=30s&ack_wait=5s"
    bus = NatsBus(url)
    await bus.start()
    try:
        durable = await bus.subscribe("m.>", durable="rules")
        live = await bus.subscribe("m.>")
        for i in range(10):
            await bus.publish("m.x", i)
        assert await payloads(durable, 5) == [0, 1, 2, 3, 4]
        await asyncio.to_thread(server.kill)
        during = asyncio.create_task(bus.publish("m.x", 10))  # waits out the outage
        await asyncio.to_thread(server.start)
        await during
        for i in range(11, 20):
            await bus.publish("m.x", i)
        assert await payloads(durable, 15, timeout=30) == list(range(5, 20))
        assert await nothing_more(durable, 1.0)
        await bus.publish("m.x", 20)
        async with asyncio.timeout(10):  # live again after the reconnect
            async for env in live:
                if env.payload == 20:
                    break
    finally:
        await bus.close()
        server.stop()


async def wait_for_jetstream(bus: NatsBus, topic: str) -> None:
    """A clustered JetStream takes a few seconds to elect its leaders: publish until it works."""
    async with asyncio.timeout(60):
        while True:
            try:
                await bus.publish(topic, "warm-up")
            except BackendError:
                await asyncio.sleep(0.5)
            else:
                return


async def test_an_r3_stream_survives_killing_its_leader_while_publishing(tmp_path: Path) -> None:
    """The publisher is connected to the stream's leader, which is killed mid-way: it finds the
    other nodes (they were announced to it), retries, and nothing is lost or doubled."""
    ports = [servers.free_port() for _ in range(3)]
    routes = [servers.free_port() for _ in range(3)]
    nodes = {
        f"n{i}": servers.nats_server(
            tmp_path,
            ports[i],
            name=f"n{i}",
            cluster_port=routes[i],
            routes=routes[:i] + routes[i + 1 :],
        )
        for i in range(3)
    }
    for node in nodes.values():
        await asyncio.to_thread(node.start)
    params = "stream_prefix=CLU&replicas=3&publish_timeout=60s&ack_wait=5s"
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    reader = NatsBus(f"nats://{hosts}?{params}")
    publisher: NatsBus | None = None
    try:
        await reader.start()
        await wait_for_jetstream(reader, "k.warmup")
        info: api.StreamInfo = await reader._js.stream_info("CLU_K")  # type: ignore[union-attr]
        assert info.cluster is not None
        assert info.cluster.leader in nodes
        leader = nodes[info.cluster.leader]
        publisher = NatsBus(f"nats://127.0.0.1:{leader.port}?{params}")
        await publisher.start()
        audit = await reader.subscribe("k.x", durable="audit")
        total, kill_at = 400, 150
        halfway = asyncio.Event()

        async def publish_all(bus: NatsBus) -> None:
            for start in range(0, total, 10):
                await asyncio.gather(*(bus.publish("k.x", i) for i in range(start, start + 10)))
                if start + 10 >= kill_at:
                    halfway.set()

        sending = asyncio.create_task(publish_all(publisher))
        await halfway.wait()
        await asyncio.to_thread(leader.kill)
        await sending
        got = await payloads(audit, total, timeout=90)
        assert sorted(got) == list(range(total))  # every event, each exactly once
        assert await nothing_more(audit, 1.0)
        assert publisher._nc is not None
        assert publisher._nc.connected_url is not None
        assert publisher._nc.connected_url.port != leader.port
    finally:
        await reader.close()
        if publisher is not None:
            await publisher.close()
        for node in nodes.values():
            node.stop()
