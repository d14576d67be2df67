"""Bus capabilities ("durable", "replay", "dedupe") and queue groups across processes.

Every backend in ``BUSES`` runs each test whose capability it lists (the others are skipped).
Opening a factory twice reaches the same namespace: two bus instances stand for two processes.
A crash is a real process that takes messages and exits without closing anything.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.events.bus import Bus, Subscription
from tests.conformance.backends import BUSES
from tests.conformance.test_bus import nothing_more, payloads


@pytest.fixture(params=sorted(BUSES), ids=lambda name: f"bus={name}")
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    async with Opener(request, tmp_path) as o:
        yield o


class Opener:
    """Opens instances of one backend on one namespace; closes them all at the end."""

    def __init__(self, request: pytest.FixtureRequest, tmp: Path) -> None:
        self._factory = BUSES[request.param]
        self._request, self._tmp = request, tmp
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Opener:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(None, None, None)

    async def bus(self, capability: str | None = None) -> Bus:
        bus = await self._stack.enter_async_context(self._factory(self._request, self._tmp))
        if capability is not None and capability not in bus.capabilities:
            pytest.skip(f"this backend does not list {capability!r}")
        return bus


async def drain(sub: Subscription, idle: float = 0.5) -> list[Any]:
    """Everything the subscription hands over until it stays quiet for ``idle`` seconds."""
    out: list[Any] = []
    while True:
        try:
            async with asyncio.timeout(idle):
                out.append((await sub.__anext__()).payload)
        except TimeoutError:
            return out


_CRASHING_CONSUMER = """
import asyncio, json, os, sys
from sysmonstm.events import open_bus

async def main():
    url, pattern, group, durable, n = sys.argv[1:6]
    bus = open_bus(url)
    await bus.start()
    sub = await bus.subscribe(pattern, group=group or None, durable=durable or None)
    got = []
    async with asyncio.timeout(30):
        async for env in sub:
            got.append(env.payload)
            if len(got) == int(n):
                break
    await asyncio.sleep(1.0)  # the acks of all but the last one leave; then die unclosed
    print(json.dumps(got), flush=True)
    os._exit(0)

asyncio.run(main())
"""


async def crashing_consumer(
    bus: Bus, pattern: str, n: int, *, group: str = "", durable: str = ""
) -> list[Any]:
    """Run a process that takes ``n`` messages and dies without closing; what it took."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_CONSUMER,
        bus.url,
        pattern,
        group,
        durable,
        str(n),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    taken: list[Any] = json.loads(out)
    return taken


async def test_durable_resumes_after_close_with_nothing_lost_or_repeated(opener: Opener) -> None:
    first = await opener.bus("durable")
    sub = await first.subscribe("d.>", durable="keeper")
    for i in range(10):
        await first.publish("d.x", i)
    assert await payloads(sub, 4) == [0, 1, 2, 3]
    await sub.close()
    for i in range(10, 15):
        await first.publish("d.y", i)
    again = await (await opener.bus()).subscribe("d.>", durable="keeper")
    assert await payloads(again, 11) == list(range(4, 15))
    assert await nothing_more(again, 0.5)


async def test_durable_redelivers_what_a_crashed_consumer_was_handed(opener: Opener) -> None:
    bus = await opener.bus("durable")
    await (await bus.subscribe("c.>", durable="keeper")).close()  # starts the position here
    for i in range(10):
        await bus.publish("c.x", i)
    assert await crashing_consumer(bus, "c.>", 3, durable="keeper") == [0, 1, 2]
    resumed = await bus.subscribe("c.>", durable="keeper")
    got = await payloads(resumed, 8, timeout=60)
    assert sorted(got) == list(range(2, 10))  # the unacknowledged 2 comes again, 0 and 1 not
    assert await nothing_more(resumed, 0.5)


async def test_group_member_that_dies_leaves_its_messages_to_the_others(opener: Opener) -> None:
    bus = await opener.bus("durable")
    await (await bus.subscribe("g.>", group="workers")).close()
    for i in range(10):
        await bus.publish("g.x", i)
    assert await crashing_consumer(bus, "g.>", 3, group="workers") == [0, 1, 2]
    survivor = await bus.subscribe("g.>", group="workers")
    got = await payloads(survivor, 8, timeout=60)
    assert sorted(got) == list(range(2, 10))
    assert await nothing_more(survivor, 0.5)


async def test_queue_group_shares_work_across_bus_instances(opener: Opener) -> None:
    a, b = await opener.bus("durable"), await opener.bus()
    member_a = await a.subscribe("job.>", group="workers")
    member_b = await b.subscribe("job.>", group="workers")
    await asyncio.gather(*(a.publish("job.run", i) for i in range(40)))
    got_a, got_b = await asyncio.gather(drain(member_a), drain(member_b))
    assert sorted(got_a + got_b) == list(range(40))
    await member_a.close()
    for i in range(40, 50):
        await a.publish("job.run", i)
    assert await payloads(member_b, 10) == list(range(40, 50))
    assert await nothing_more(member_b, 0.5)


async def wait_past(ms: int) -> None:
    """Wait until the wall clock is past ``ms`` (a boundary between two publish batches)."""
    async with asyncio.timeout(5):
        while time.time_ns() // 1_000_000 <= ms:  # noqa: ASYNC110 - the clock has no event
            await asyncio.sleep(0.002)


async def test_replay_starts_at_the_first_message_published_at_or_after_since_ms(
    opener: Opener,
) -> None:
    bus = await opener.bus("replay")
    for i in range(5):
        await bus.publish("r.x", i)
    since = time.time_ns() // 1_000_000 + 1
    await wait_past(since)
    for i in range(5, 10):
        await bus.publish("r.y", i)
    replay = await bus.subscribe("r.*", since_ms=since)
    assert await payloads(replay, 5) == [5, 6, 7, 8, 9]
    assert await nothing_more(replay)
    await bus.publish("r.z", 10)
    assert await payloads(replay, 1) == [10]
    everything = await bus.subscribe("r.>", since_ms=0)
    assert await payloads(everything, 11) == list(range(11))


async def test_a_durable_subscription_created_with_since_ms_starts_there(opener: Opener) -> None:
    bus = await opener.bus("durable")
    if "replay" not in bus.capabilities:
        pytest.skip("this backend does not list 'replay'")
    await bus.publish("s.x", 0)
    since = time.time_ns() // 1_000_000 + 1
    await wait_past(since)
    await bus.publish("s.x", 1)
    late = await bus.subscribe("s.>", durable="late", since_ms=since)
    assert await payloads(late, 1) == [1]
    await late.close()
    await bus.publish("s.x", 2)
    resumed = await bus.subscribe("s.>", durable="late", since_ms=since)  # the position wins
    assert await payloads(resumed, 1) == [2]
    assert await nothing_more(resumed)


async def test_a_repeated_event_id_is_delivered_once(opener: Opener) -> None:
    bus = await opener.bus("dedupe")
    other = await opener.bus()
    live = await bus.subscribe("u.>")
    durable = await bus.subscribe("u.>", durable="once") if "durable" in bus.capabilities else None
    event_id = "0" * 31 + "1"
    first = await bus.publish("u.x", "first", event_id=event_id)
    assert first.id == event_id
    await bus.publish("u.x", "again", event_id=event_id)
    await other.publish("u.x", "from another process", event_id=event_id)
    await bus.publish("u.x", "next")
    assert await payloads(live, 2) == ["first", "next"]
    assert await nothing_more(live)
    if durable is not None:
        assert await payloads(durable, 2) == ["first", "next"]
        assert await nothing_more(durable)
    if "replay" in bus.capabilities:
        replay = await bus.subscribe("u.>", since_ms=0)
        assert await payloads(replay, 2) == ["first", "next"]
        assert await nothing_more(replay)
