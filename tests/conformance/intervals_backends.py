"""Interval store backends under conformance. Opening a factory twice in one test (same temp
dir, same ``pg_dsn`` database) reaches the same data (the restart tests rely on it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.stores import open_interval_store
from tests.conformance.warm_backends import _until_ready

IntervalFactory = Callable[
    [pytest.FixtureRequest, Path], AbstractAsyncContextManager[IntervalStore]
]


@asynccontextmanager
async def _opened(url: str) -> AsyncIterator[IntervalStore]:
    store = open_interval_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def sqlite_intervals(
    _request: pytest.FixtureRequest, tmp: Path
) -> AbstractAsyncContextManager[IntervalStore]:
    return _opened(f"sqlite:///{tmp / 'warm.db'}")


@asynccontextmanager
async def postgresql_intervals(
    request: pytest.FixtureRequest, _tmp: Path
) -> AsyncIterator[IntervalStore]:
    """A fresh database per test (``pg_dsn``); a second open in one test reaches it again."""
    await _until_ready(str(request.getfixturevalue("postgres_server_dsn")))
    # pg_dsn sets its database up with asyncio.run, which cannot run inside this loop
    dsn = await asyncio.to_thread(request.getfixturevalue, "pg_dsn")
    async with _opened(str(dsn)) as store:
        yield store


INTERVALS: dict[str, IntervalFactory] = {
    "sqlite": sqlite_intervals,
    "postgresql": postgresql_intervals,
}
