"""Pick the interval store backend by the warm tier URL's scheme."""

from __future__ import annotations

from collections.abc import Callable

from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.schemes import by_scheme

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
    return by_scheme("interval store backend", url, INTERVAL_BACKENDS)(url)
