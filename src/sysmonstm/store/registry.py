"""Pick hot and warm tier backends by URL scheme."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from sysmonstm.errors import UnknownBackendError
from sysmonstm.store.hot import HotTier
from sysmonstm.store.model import Retention
from sysmonstm.store.warm import WarmTier

F = TypeVar("F")
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


def _pick(kind: str, url: str, table: dict[str, F]) -> F:
    factory = table.get(urlsplit(url).scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(table))
        raise UnknownBackendError(f"no {kind} tier backend for {url!r}; known: {known}")
    return factory


def open_hot(url: str, window_ms: int = 300_000) -> HotTier:
    """A hot tier for ``url`` (not yet opened)."""
    return _pick("hot", url, HOT_BACKENDS)(url, window_ms)


def open_warm(url: str, retention: Retention | None = None) -> WarmTier:
    """A warm tier for ``url`` (not yet opened)."""
    return _pick("warm", url, WARM_BACKENDS)(url, retention or Retention())
