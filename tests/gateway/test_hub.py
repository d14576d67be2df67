"""The hub below the socket: refcounted feeds and bounded outboxes for slow clients."""

from __future__ import annotations

import asyncio
import json

from sysmonstm.events.memory import MemoryBus
from sysmonstm.gateway.hub import Client, Hub


async def drained(hub: Hub, client: Client, count: int) -> None:
    """Wait until ``client`` has been offered ``count`` envelopes (kept or dropped)."""
    async with asyncio.timeout(5):
        while len(client.outbox) + client.dropped < count:  # noqa: ASYNC110 - no push hook
            await asyncio.sleep(0.01)


async def test_a_client_that_never_reads_loses_its_oldest_and_never_blocks_the_bus() -> None:
    """Publishing 200 events past a stalled client of outbox 5 completes; it keeps the newest
    5 and the drop count, then hears about the drop before the events it kept."""
    bus = MemoryBus()
    await bus.start()
    hub = Hub(bus, outbox_size=5)
    stalled = hub.attach()
    await hub.subscribe(stalled, ["metrics.*"])

    async with asyncio.timeout(5):
        for i in range(200):
            await bus.publish("metrics.m-1", {"n": i})
    await drained(hub, stalled, 200)

    assert stalled.dropped == 195
    assert hub.stats().dropped == 195
    assert json.loads(await stalled.next_message()) == {"dropped": 195}
    kept = [json.loads(await stalled.next_message())["payload"]["n"] for _ in range(5)]
    assert kept == [195, 196, 197, 198, 199]
    await hub.close()
    await bus.close()


async def test_a_slow_client_does_not_hold_back_a_fast_one() -> None:
    """Both clients share one feed; the stalled one drops while the other keeps everything."""
    bus = MemoryBus()
    await bus.start()
    hub = Hub(bus, outbox_size=3)
    slow, fast = hub.attach(), hub.attach()
    for client in (slow, fast):
        await hub.subscribe(client, ["alerts.>"])
    received: list[int] = []

    async def reader() -> None:
        while len(received) < 50:
            received.append(json.loads(await fast.next_message())["payload"]["n"])

    task = asyncio.create_task(reader())
    for i in range(50):
        await bus.publish("alerts.r", {"n": i})
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await task

    assert received == list(range(50))
    assert fast.dropped == 0
    assert slow.dropped == 47
    await hub.close()
    await bus.close()


async def test_feeds_are_shared_per_pattern_and_closed_with_their_last_client() -> None:
    """One bus subscription per distinct pattern, released when no client holds it."""
    bus = MemoryBus()
    await bus.start()
    hub = Hub(bus)
    a, b = hub.attach(), hub.attach()
    await hub.subscribe(a, ["metrics.*", "alerts.>"])
    await hub.subscribe(b, ["metrics.*"])
    assert hub.stats().patterns == 2

    await hub.detach(a)
    assert hub.stats().patterns == 1
    assert hub.stats().clients == 1

    await hub.unsubscribe(b, ["metrics.*"])
    assert hub.stats().patterns == 0
    await bus.publish("metrics.m-1", {"after": "release"})
    assert len(b.outbox) == 0
    await hub.close()
    await bus.close()
