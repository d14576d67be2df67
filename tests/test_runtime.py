"""Core.shared: one resource per process, opened once, closed with the Core."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sysmonstm.config import load_settings
from sysmonstm.runtime import Core


class Resource:
    def __init__(self, log: list[str], name: str, fail_close: bool = False) -> None:
        self.log = log
        self.name = name
        self.fail_close = fail_close

    async def close(self) -> None:
        self.log.append(f"close {self.name}")
        if self.fail_close:
            raise RuntimeError("close failed")


@pytest.fixture
async def core(data_dir: Path) -> Core:
    return await Core.open(load_settings({"data_dir": str(data_dir)}), domains=[])


async def test_concurrent_callers_share_one_opening(core: Core) -> None:
    log: list[str] = []
    gate = asyncio.Event()

    async def opener() -> Resource:
        log.append("open")
        await gate.wait()
        return Resource(log, "a")

    waiting = [asyncio.create_task(core.shared("a", opener)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    got = await asyncio.gather(*waiting)
    assert all(r is got[0] for r in got)
    assert await core.shared("a", opener) is got[0]
    assert log == ["open"]
    await core.close()
    assert log == ["open", "close a"]


async def test_close_closes_newest_first_and_every_one_despite_failures(core: Core) -> None:
    log: list[str] = []

    async def first() -> Resource:
        return Resource(log, "first")

    async def second() -> Resource:
        return Resource(log, "second", fail_close=True)

    await core.shared("first", first)
    await core.shared("second", second)
    await core.close()
    assert log == ["close second", "close first"]


async def test_a_failed_opening_is_retried_by_the_next_caller(core: Core) -> None:
    calls: list[int] = []

    async def opener() -> Resource:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database not there yet")
        return Resource([], "r")

    with pytest.raises(OSError, match="not there yet"):
        await core.shared("r", opener)
    assert isinstance(await core.shared("r", opener), Resource)
    assert len(calls) == 2
    await core.close()


async def test_a_cancelled_caller_leaves_the_opening_to_the_others(core: Core) -> None:
    log: list[str] = []
    gate = asyncio.Event()

    async def opener() -> Resource:
        await gate.wait()
        return Resource(log, "slow")

    impatient = asyncio.create_task(core.shared("slow", opener))
    patient = asyncio.create_task(core.shared("slow", opener))
    await asyncio.sleep(0)
    impatient.cancel()
    gate.set()
    assert isinstance(await patient, Resource)
    assert impatient.cancelled()
    await core.close()
    assert log == ["close slow"]


async def test_an_opening_still_running_at_close_is_cancelled(core: Core) -> None:
    started = asyncio.Event()

    async def opener() -> Resource:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    waiter = asyncio.create_task(core.shared("never", opener))
    await started.wait()
    await core.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter


class Store(Resource):
    """A store (named by its URL) that fails its first opening."""

    async def open(self) -> None:
        self.log.append(f"open {self.name}")
        if self.log.count(f"open {self.name}") == 1:
            raise OSError("server restarting")


async def test_warm_store_is_made_for_the_warm_url_and_closed_when_its_opening_fails(
    core: Core,
) -> None:
    """Core.warm_store: a failed opening is closed (nothing leaks) and retried next time."""
    log: list[str] = []
    url = core.settings.warm.url
    with pytest.raises(OSError, match="restarting"):
        await core.warm_store("s", lambda u: Store(log, u))
    assert log == [f"open {url}", f"close {url}"]
    store = await core.warm_store("s", lambda u: Store(log, u))
    assert await core.warm_store("s", lambda u: Store(log, u)) is store
    await core.close()
    assert log == [f"open {url}", f"close {url}", f"open {url}", f"close {url}"]
