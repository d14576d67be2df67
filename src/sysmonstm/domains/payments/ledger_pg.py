"""The ledger on PostgreSQL 14+ (asyncpg), in the warm tier's database.

``postgresql://…`` (or ``postgres://``), the warm tier's URL; ``open`` applies the pending
migrations (the ledger's tables are migration 3 of ``store.pg_schema``). Every write
transaction first takes the advisory lock ``PAYMENTS_LOCK`` (held to its commit), so hubs
sharing the database append to one audit chain and count velocity one writer at a time;
``UNIQUE (event_id)`` keeps each event once whichever hub sees it first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from sysmonstm.domains.payments.ledger_rows import PiiCipher, Row
from sysmonstm.domains.payments.ledger_sql import Sql, SqlLedger
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.pg_schema import PAYMENTS_LOCK
from sysmonstm.store.pg_store import PgStore

_PLACEHOLDER = re.compile(r"\?")
T = TypeVar("T")


@functools.lru_cache(maxsize=512)
def dollar(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, …`` (the ledger's SQL has no ``?`` elsewhere)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _Sql:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute(dollar(sql), *args)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return [tuple(r) for r in await self._conn.fetch(dollar(sql), *args)]

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(dollar(sql), args)


class PgDatabase(PgStore):
    """The ``Database`` of a ``SqlLedger`` in one PostgreSQL database."""

    @asynccontextmanager
    async def _write(self, what: str) -> AsyncIterator[_Sql]:
        async with self.db.tx(what) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PAYMENTS_LOCK)
            yield _Sql(conn)

    @asynccontextmanager
    async def _read(self, what: str) -> AsyncIterator[_Sql]:
        async with self.db.tx(what, readonly=True, isolation="repeatable_read") as conn:
            yield _Sql(conn)

    def write(self, what: str) -> AbstractAsyncContextManager[_Sql]:
        return self._write(what)

    async def in_write(
        self, what: str, body: Callable[[Sql], Awaitable[T]], *, durable: bool = True
    ) -> T:
        async with self._write(what) as sql:
            if not durable:  # this transaction only; WAL order keeps it behind later commits
                await sql.execute("SET LOCAL synchronous_commit TO off")
            return await body(sql)

    def read(self, what: str) -> AbstractAsyncContextManager[_Sql]:
        return self._read(what)


def pg_ledger(url: str, pii: PiiCipher | None = None) -> SqlLedger:
    """A ledger in the PostgreSQL database ``url`` names (not yet opened)."""
    return SqlLedger(PgDatabase(url), pii)
