"""The Redis Streams bus beyond conformance: the keys it leaves, ids across domains, pipelined
publishing, consumer cleanup, and restarts of a throwaway server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.events.envelope import decode_envelope
from sysmonstm.events.redis_bus import RedisBus
from sysmonstm.events.redis_scripts import parse_id
from tests import servers
from tests.conformance.bus_backends import started
from tests.conformance.test_bus import nothing_more, payloads
from tests.server_fixtures import keys_under


@pytest.fixture
def url(redis_server_url: str, redis_prefix: str) -> str:
    return f"{redis_server_url}?prefix={redis_prefix}&dup_window=90s&ack_wait=5s"


@pytest.fixture
async def bus(url: str) -> AsyncIterator[RedisBus]:
    async with started(RedisBus(url)) as b:
        yield b


async def test_publishing_leaves_exactly_the_documented_keys(
    bus: RedisBus, rc: aioredis.Redis, redis_prefix: str
) -> None:
    sent = await bus.publish("metrics.web1", {"cpu": 1.0}, source="web1")
    keys = await keys_under(rc, redis_prefix)
    assert set(keys) == {
        "bus:metrics",
        f"bus-seen:{sent.id}",
        "bus-clock",
        "bus-domains",
        "bus-registry",
    }
    assert 0 < keys[f"bus-seen:{sent.id}"] <= 90_000
    assert {k for k, ttl in keys.items() if ttl == -1} == {
        "bus:metrics",
        "bus-clock",
        "bus-domains",
        "bus-registry",
    }
    [(entry_id, fields)] = await rc.xrange(f"{redis_prefix}bus:metrics")
    assert fields[b"id"].decode() == sent.id
    assert fields[b"topic"] == b"metrics.web1"
    assert decode_envelope(fields[b"data"]) == sent
    assert (await rc.get(f"{redis_prefix}bus-clock")) == entry_id
    assert await rc.smembers(f"{redis_prefix}bus-domains") == {b"metrics"}


async def test_entry_ids_increase_across_every_domain(
    bus: RedisBus, rc: aioredis.Redis, redis_prefix: str
) -> None:
    for i in range(30):
        await bus.publish(("a.x", "b.x", "c.x")[i % 3], i)
    entries = []
    for token in "abc":
        for entry_id, fields in await rc.xrange(f"{redis_prefix}bus:{token}"):
            entries.append((parse_id(entry_id), decode_envelope(fields[b"data"]).payload))
    entries.sort()
    assert [payload for _, payload in entries] == list(range(30))


async def test_streams_are_trimmed_to_about_maxlen(
    url: str, rc: aioredis.Redis, redis_prefix: str
) -> None:
    async with started(RedisBus(f"{url}&maxlen=100")) as bus:
        await asyncio.gather(*(bus.publish("t.x", i) for i in range(1000)))
    assert 100 <= await rc.xlen(f"{redis_prefix}bus:t") < 1000


async def test_concurrent_publishes_are_pipelined_and_keep_their_order(bus: RedisBus) -> None:
    live = await bus.subscribe("p.>")
    group = await bus.subscribe("p.>", group="workers")
    sent = await asyncio.gather(*(bus.publish("p.x", i) for i in range(2000)))
    assert [e.payload for e in sent] == list(range(2000))
    assert await payloads(live, 2000) == list(range(2000))
    assert await payloads(group, 2000) == list(range(2000))


async def test_a_group_member_that_closes_cleanly_leaves_no_consumer_behind(
    bus: RedisBus, rc: aioredis.Redis, redis_prefix: str
) -> None:
    member = await bus.subscribe("w.>", group="workers")
    for i in range(3):
        await bus.publish("w.x", i)
    assert await payloads(member, 3) == [0, 1, 2]
    await member.close()
    stream = f"{redis_prefix}bus:w"
    [group] = await rc.xinfo_groups(stream)
    assert (group["name"], group["pending"], group["consumers"]) == (b"workers", 0, 0)


async def test_history_subscriptions_need_a_domain_and_valid_names(bus: RedisBus) -> None:
    with pytest.raises(InvalidInputError, match="first token"):
        await bus.subscribe(">", durable="all")
    with pytest.raises(InvalidInputError, match="group"):
        await bus.subscribe("a.>", group="has space")


async def test_publishing_without_a_server_fails_with_backend_error_at_the_deadline(
    tmp_path: Path,
) -> None:
    server = servers.redis_server(tmp_path)
    server.start()
    bus = RedisBus(f"redis://127.0.0.1:{server.port}/0?publish_timeout=1s")
    await bus.start()
    try:
        await bus.publish("a.b", 1)
        await asyncio.to_thread(server.kill)
        with pytest.raises(BackendError, match="failed for 1 s"):
            await bus.publish("a.b", 2)
    finally:
        await bus.close()
    with pytest.raises(BackendError, match="cannot connect"):
        await RedisBus(f"redis://127.0.0.1:{server.port}/0").start()


async def test_a_server_restart_is_survived_by_publishers_and_subscribers(tmp_path: Path) -> None:
    """A Redis without persistence comes back empty: publishes wait for it, the plain reader
    carries on, and the group is created again where its member left off."""
    server = servers.redis_server(tmp_path)
    server.start()
    bus = RedisBus(f"redis://127.0.0.1:{server.port}/0?publish_timeout=30s")
    await bus.start()
    try:
        live = await bus.subscribe("m.>")
        group = await bus.subscribe("m.>", group="rules")
        for i in range(5):
            await bus.publish("m.x", i)
        assert await payloads(live, 5) == [0, 1, 2, 3, 4]
        assert await payloads(group, 5) == [0, 1, 2, 3, 4]
        await asyncio.to_thread(server.kill)
        during = asyncio.create_task(bus.publish("m.x", 5))  # waits out the outage
        await asyncio.to_thread(server.start)
        await during
        for i in range(6, 10):
            await bus.publish("m.x", i)
        assert await payloads(live, 5, timeout=30) == [5, 6, 7, 8, 9]
        assert await payloads(group, 5, timeout=30) == [5, 6, 7, 8, 9]
        assert await nothing_more(group, 0.5)
    finally:
        await bus.close()
        server.stop()
