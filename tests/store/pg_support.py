"""What the PostgreSQL warm-tier tests share: a tier opened on a test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from sysmonstm.store.model import Retention
from sysmonstm.store.warm_pg import PgWarm
from tests.conformance.helpers import T0


def _at_t0() -> int:
    return T0


@asynccontextmanager
async def opened(
    dsn: str, clock: Callable[[], int] = _at_t0, retention: Retention | None = None
) -> AsyncIterator[PgWarm]:
    """``PgWarm`` on ``dsn``, open for the block; its clock stands at ``T0`` unless given."""
    warm = PgWarm(dsn, clock=clock, retention=retention)
    await warm.open()
    try:
        yield warm
    finally:
        await warm.close()


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    """The rows of ``sql`` on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()
