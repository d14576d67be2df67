"""Pick hot and warm tier backends by URL scheme."""

from __future__ import annotations

from collections.abc import Callable

from sysmonstm.schemes import by_scheme
from sysmonstm.store.hot import HotTier
from sysmonstm.store.model import Retention
from sysmonstm.store.warm import WarmTier

HotFactory = Callable[[str, int], HotTier]
WarmFactory = Callable[[str, Retention], WarmTier]


def _memory_hot(url: str, window_ms: int) -> HotTier:
    from sysmonstm.store.hot_memory import MemoryHot

    return MemoryHot(url, window_ms=window_ms)


def _redis_hot(url: str, window_ms: int) -> HotTier:
    from sysmonstm.store.hot_redis import RedisHot

    return RedisHot(url, window_ms=window_ms)


def _sqlite_warm(url: str, retention: Retention) -> WarmTier:
    from sysmonstm.store.warm_sqlite import SqliteWarm

    return SqliteWarm(url, retention=retention)


def _postgres_warm(url: str, retention: Retention) -> WarmTier:
    from sysmonstm.store.warm_pg import PgWarm

    return PgWarm(url, retention=retention)


HOT_BACKENDS: dict[str, HotFactory] = {
    "memory": _memory_hot,
    "redis": _redis_hot,
    "rediss": _redis_hot,
}
WARM_BACKENDS: dict[str, WarmFactory] = {
    "sqlite": _sqlite_warm,
    "postgresql": _postgres_warm,
    "postgres": _postgres_warm,
}


def open_hot(url: str, window_ms: int = 300_000) -> HotTier:
    """A hot tier for ``url`` (not yet opened)."""
    return by_scheme("hot tier backend", url, HOT_BACKENDS)(url, window_ms)


def open_warm(url: str, retention: Retention | None = None) -> WarmTier:
    """A warm tier for ``url`` (not yet opened)."""
    return by_scheme("warm tier backend", url, WARM_BACKENDS)(url, retention or Retention())
