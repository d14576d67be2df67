"""Bus backends under conformance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from sysmonstm.events.bus import Bus
from sysmonstm.events.memory import MemoryBus

BusFactory = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[Bus]]


@asynccontextmanager
async def memory_bus(_request: pytest.FixtureRequest, _tmp: Path) -> AsyncIterator[Bus]:
    bus = MemoryBus()
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


BUSES: dict[str, BusFactory] = {"memory": memory_bus}
