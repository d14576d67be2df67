"""Warm tier backends under conformance. Opening a factory twice in one test (same temp dir,
same ``pg_dsn`` database) reaches the same data (the reopen test relies on it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from sysmonstm.store.model import Retention
from sysmonstm.store.warm import WarmTier
from sysmonstm.store.warm_sqlite import SqliteWarm

WarmFactory = Callable[
    [pytest.FixtureRequest, Path, Retention], AbstractAsyncContextManager[WarmTier]
]


@asynccontextmanager
async def sqlite_warm(
    _request: pytest.FixtureRequest, tmp: Path, retention: Retention
) -> AsyncIterator[WarmTier]:
    warm = SqliteWarm(f"sqlite:///{tmp / 'warm.db'}", retention=retention)
    await warm.open()
    try:
        yield warm
    finally:
        await warm.close()


async def _until_ready(dsn: str) -> None:
    import asyncpg

    for _ in range(600):
        try:
            conn = await asyncpg.connect(dsn)
        except asyncpg.CannotConnectNowError:
            await asyncio.sleep(0.05)
            continue
        await conn.close()
        return


@asynccontextmanager
async def postgresql_warm(
    request: pytest.FixtureRequest, _tmp: Path, retention: Retention
) -> AsyncIterator[WarmTier]:
    """A fresh database per test (``pg_dsn``); a second open in one test reaches it again."""
    from sysmonstm.store.warm_pg import PgWarm

    # a throwaway server listens a moment before it accepts connections
    await _until_ready(str(request.getfixturevalue("postgres_server_dsn")))
    # pg_dsn sets its database up with asyncio.run, which cannot run inside this loop
    dsn = await asyncio.to_thread(request.getfixturevalue, "pg_dsn")
    warm = PgWarm(str(dsn), retention=retention)
    await warm.open()
    try:
        yield warm
    finally:
        await warm.close()


WARMS: dict[str, WarmFactory] = {"sqlite": sqlite_warm, "postgresql": postgresql_warm}
