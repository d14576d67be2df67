"""Pick the interval store backend by the warm tier URL's scheme."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.errors import UnknownBackendError

IntervalFactory = Callable[[str], IntervalStore]


def _sqlite(url: str) -> IntervalStore:
    from sysmonstm.domains.deskmeter.store_sqlite import SqliteIntervals

    return SqliteIntervals(url)


def _postgres(url: str) -> IntervalStore:
    from sysmonstm.domains.deskmeter.store_pg import PgIntervals

    return PgIntervals(url)


INTERVAL_BACKENDS: dict[str, IntervalFactory] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def open_interval_store(url: str) -> IntervalStore:
    """An interval store for the warm tier URL ``url`` (not yet opened)."""
    factory = INTERVAL_BACKENDS.get(urlsplit(url).scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(INTERVAL_BACKENDS))
        raise UnknownBackendError(f"no interval store backend for {url!r}; known: {known}")
    return factory(url)
