"""Every backend of each seam, built for the conformance suites.

A new backend is done when it is listed here and its suite passes. Each factory returns an
opened backend in a throwaway namespace (a temp file, a key prefix, a stream name).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from sysmonstm.events.bus import Bus
from sysmonstm.events.memory import MemoryBus
from sysmonstm.store.hot import HotTier
from sysmonstm.store.hot_memory import MemoryHot
from sysmonstm.store.model import Retention
from sysmonstm.store.warm import WarmTier
from sysmonstm.store.warm_sqlite import SqliteWarm

BusFactory = Callable[[Path], AbstractAsyncContextManager[Bus]]
HotFactory = Callable[[Path, Callable[[], int]], AbstractAsyncContextManager[HotTier]]
WarmFactory = Callable[[Path, Retention], AbstractAsyncContextManager[WarmTier]]


@asynccontextmanager
async def memory_bus(_tmp: Path) -> AsyncIterator[Bus]:
    bus = MemoryBus()
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


@asynccontextmanager
async def memory_hot(_tmp: Path, now_ms: Callable[[], int]) -> AsyncIterator[HotTier]:
    hot = MemoryHot(window_ms=300_000, now_ms=now_ms)
    await hot.open()
    try:
        yield hot
    finally:
        await hot.close()


@asynccontextmanager
async def sqlite_warm(tmp: Path, retention: Retention) -> AsyncIterator[WarmTier]:
    warm = SqliteWarm(f"sqlite:///{tmp / 'warm.db'}", retention=retention)
    await warm.open()
    try:
        yield warm
    finally:
        await warm.close()


BUSES: dict[str, BusFactory] = {"memory": memory_bus}
HOTS: dict[str, HotFactory] = {"memory": memory_hot}
WARMS: dict[str, WarmFactory] = {"sqlite": sqlite_warm}
