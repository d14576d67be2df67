"""Bus conformance: every backend in ``BUSES`` must pass all of these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.events.bus import Bus, Subscription
from sysmonstm.events.envelope import Envelope, decode_envelope, encode_envelope
from tests.conformance.backends import BUSES


@pytest.fixture(params=sorted(BUSES), ids=lambda name: f"bus={name}")
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    async with BUSES[request.param](request, tmp_path) as b:
        yield b


async def take(sub: Subscription, n: int, timeout: float = 5.0) -> list[Envelope]:
    out: list[Envelope] = []
    async with asyncio.timeout(timeout):
        async for env in sub:
            out.append(env)
            if len(out) == n:
                break
    return out


async def payloads(sub: Subscription, n: int, timeout: float = 10.0) -> list[Any]:
    """The payloads of the next ``n`` envelopes of ``sub``."""
    return [e.payload for e in await take(sub, n, timeout)]


async def nothing_more(sub: Subscription, wait: float = 0.2) -> bool:
    try:
        async with asyncio.timeout(wait):
            await sub.__anext__()
    except TimeoutError:
        return True
    return False


async def test_envelope_carries_id_topic_source_time_and_payload(bus: Bus) -> None:
    sub = await bus.subscribe("metrics.*")
    sent = await bus.publish("metrics.web1", {"cpu": 12.5, "tags": ["a"]}, source="web1")
    [got] = await take(sub, 1)
    assert got == sent
    assert got.topic == "metrics.web1"
    assert got.source == "web1"
    assert got.payload == {"cpu": 12.5, "tags": ["a"]}
    assert len(got.id) == 32
    assert got.time_ms > 1_600_000_000_000


async def test_ids_are_unique_and_sort_by_time(bus: Bus) -> None:
    sub = await bus.subscribe("t.>")
    sent = [await bus.publish("t.x", i) for i in range(200)]
    got = await take(sub, 200)
    ids = [e.id for e in got]
    assert len(set(ids)) == 200
    assert ids == [e.id for e in sent]
    assert [e.time_ms for e in got] == sorted(e.time_ms for e in got)


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("metrics.*", ["metrics.a", "metrics.b"], ["metrics", "metrics.a.b", "alerts.a"]),
        ("metrics.>", ["metrics.a", "metrics.a.b.c"], ["metrics", "alerts.a"]),
        ("*.cpu", ["a.cpu", "b.cpu"], ["cpu", "a.b.cpu", "a.mem"]),
        ("alerts.*.firing", ["alerts.x.firing"], ["alerts.x.resolved", "alerts.firing"]),
        ("exact.topic", ["exact.topic"], ["exact.topic.more", "exact"]),
        (">", ["a", "a.b"], []),
    ],
)
async def test_patterns_follow_nats_semantics(
    bus: Bus, pattern: str, matching: list[str], not_matching: list[str]
) -> None:
    sub = await bus.subscribe(pattern)
    for topic in not_matching + matching:
        await bus.publish(topic, topic)
    got = await take(sub, len(matching))
    assert [e.topic for e in got] == matching
    assert await nothing_more(sub)


async def test_every_plain_subscriber_gets_every_message(bus: Bus) -> None:
    a = await bus.subscribe("x.>")
    b = await bus.subscribe("x.*")
    for i in range(10):
        await bus.publish("x.y", i)
    assert [e.payload for e in await take(a, 10)] == list(range(10))
    assert [e.payload for e in await take(b, 10)] == list(range(10))


async def test_queue_group_delivers_each_message_to_one_member(bus: Bus) -> None:
    members = [await bus.subscribe("work.>", group="workers") for _ in range(3)]
    watcher = await bus.subscribe("work.>")
    for i in range(30):
        await bus.publish("work.item", i)
    assert [e.payload for e in await take(watcher, 30)] == list(range(30))
    seen: list[int] = []
    for m in members:
        while True:
            try:
                async with asyncio.timeout(0.3):
                    env = await m.__anext__()
            except TimeoutError:
                break
            seen.append(env.payload)
    assert sorted(seen) == list(range(30))


async def test_closed_subscription_ends_iteration_and_stops_receiving(bus: Bus) -> None:
    sub = await bus.subscribe("a.b")
    await sub.close()
    await bus.publish("a.b", 1)
    async with asyncio.timeout(2):
        assert [e async for e in sub] == []


async def test_drop_oldest_keeps_the_newest_for_slow_consumers(bus: Bus) -> None:
    sub = await bus.subscribe("live.>", maxsize=5, overflow="drop_oldest")
    for i in range(20):
        await bus.publish("live.x", i)
    got = await take(sub, 5)
    assert [e.payload for e in got] == [15, 16, 17, 18, 19]


@pytest.mark.parametrize("topic", ["", "a..b", "a.*", "a.>", "has space", ".a", "a."])
async def test_publishing_to_a_bad_topic_is_refused(bus: Bus, topic: str) -> None:
    with pytest.raises(InvalidInputError):
        await bus.publish(topic, 1)


@pytest.mark.parametrize("pattern", ["", "a.>.b", "a.b*", "a..b", "a b"])
async def test_subscribing_with_a_bad_pattern_is_refused(bus: Bus, pattern: str) -> None:
    with pytest.raises(InvalidInputError):
        await bus.subscribe(pattern)


def test_envelope_wire_encoding_round_trips() -> None:
    env = Envelope(id="0" * 32, topic="a.b", source="s", time_ms=1, payload={"k": [1, 2.5]})
    assert decode_envelope(encode_envelope(env)) == env


async def test_history_arguments_are_refused_unless_the_backend_keeps_history(bus: Bus) -> None:
    if "durable" not in bus.capabilities:
        with pytest.raises(BackendError):
            await bus.subscribe("a.>", durable="keeper")
    if "replay" not in bus.capabilities:
        with pytest.raises(BackendError):
            await bus.subscribe("a.>", since_ms=0)
