"""Bus backends under conformance.

Opening a factory twice in one test reaches the same namespace (stream prefix, key prefix):
two instances of a network bus behave like two processes sharing the servers, which the
durable and queue-group tests rely on. ``ack_wait=5s`` keeps the wait for a redelivery after
a simulated crash short while leaving slow test machines plenty of margin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from sysmonstm.events.bus import Bus
from sysmonstm.events.memory import MemoryBus
from sysmonstm.events.registry import open_bus

BusFactory = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[Bus]]
B = TypeVar("B", bound=Bus)


@asynccontextmanager
async def started(bus: B) -> AsyncIterator[B]:
    """``bus`` started for the block, closed after it."""
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def memory_bus(_request: pytest.FixtureRequest, _tmp: Path) -> AbstractAsyncContextManager[Bus]:
    return started(MemoryBus())


def nats_url(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue("nats_server_url")
    prefix = request.getfixturevalue("nats_prefix")
    return f"{server}?stream_prefix={prefix}&ack_wait=5s&publish_timeout=10s"


def redis_url(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue("redis_server_url")
    prefix = request.getfixturevalue("redis_prefix")
    return f"{server}?prefix={prefix}&ack_wait=5s&publish_timeout=10s"


def nats_bus(request: pytest.FixtureRequest, _tmp: Path) -> AbstractAsyncContextManager[Bus]:
    return started(open_bus(nats_url(request)))


def redis_bus(request: pytest.FixtureRequest, _tmp: Path) -> AbstractAsyncContextManager[Bus]:
    return started(open_bus(redis_url(request)))


BUSES: dict[str, BusFactory] = {"memory": memory_bus, "nats": nats_bus, "redis": redis_bus}
