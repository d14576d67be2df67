"""Hot tier backends under conformance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from sysmonstm.store.hot import HotTier
from sysmonstm.store.hot_memory import MemoryHot

HotFactory = Callable[
    [pytest.FixtureRequest, Path, Callable[[], int]], AbstractAsyncContextManager[HotTier]
]


@asynccontextmanager
async def memory_hot(
    _request: pytest.FixtureRequest, _tmp: Path, now_ms: Callable[[], int]
) -> AsyncIterator[HotTier]:
    hot = MemoryHot(window_ms=300_000, now_ms=now_ms)
    await hot.open()
    try:
        yield hot
    finally:
        await hot.close()


@asynccontextmanager
async def redis_hot(
    request: pytest.FixtureRequest, _tmp: Path, now_ms: Callable[[], int]
) -> AsyncIterator[HotTier]:
    """On the machine's Redis or a throwaway one, under a key prefix deleted afterwards."""
    from sysmonstm.store.hot_redis import RedisHot

    server: str = request.getfixturevalue("redis_server_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    hot = RedisHot(f"{server}?prefix={prefix}", window_ms=300_000, now_ms=now_ms)
    await hot.open()
    try:
        yield hot
    finally:
        await hot.close()


HOTS: dict[str, HotFactory] = {"memory": memory_hot, "redis": redis_hot}
