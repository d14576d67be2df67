"""The production warm tier on PostgreSQL 14+ (asyncpg), a drop-in for ``SqliteWarm``.

``postgresql://user@host:5432/db`` (or ``postgres://``); a password may come from the URL,
``PGPASSWORD`` or ``~/.pgpass``, and never appears in a message. ``open`` applies pending
schema migrations (``pg_schema``) and creates the partitions of today and the next two days.

Several aggregators may share one database: writes lock their sources' rows, so the watermark
check is authoritative (``pg_write``); rollups take the same locks (``pg_rollup``); partition
DDL and migrations serialize on advisory locks. Every asyncpg or OS error becomes
``BackendError``; a write is one transaction, so a failure keeps nothing of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import pyarrow as pa

from sysmonstm.store import pg_read
from sysmonstm.store.model import (
    LatestValue,
    PartitionInfo,
    Record,
    Retention,
    SeriesBatch,
    SeriesPoints,
    SourceState,
    Tier,
)
from sysmonstm.store.partition_import import check as check_import
from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.pg_export import export_partition
from sysmonstm.store.pg_import import import_partition
from sysmonstm.store.pg_partitions import Partitions
from sysmonstm.store.pg_read import LayoutCache
from sysmonstm.store.pg_rollup import RollupJob
from sysmonstm.store.pg_store import PgStore
from sysmonstm.store.pg_write import Writer

_APPEND_RECORDS = """
    INSERT INTO records (kind, id, time_ms, key, body)
    SELECT k, i, t, ky, b::jsonb
    FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[]) AS u(k, i, t, ky, b)
    ON CONFLICT (kind, id) DO NOTHING"""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class PgWarm(PgStore):
    """Warm tier in one PostgreSQL database (see ``pg_schema`` for the layout).

    ``url`` is the connection URL with its password masked (safe to log). ``clock`` gives
    the time that decides which partitions to create ahead and, unless ``rollup`` is given
    one, which sources count as silent (tests move it).
    """

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        pool_size: int = 8,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        super().__init__(url, pool_size=pool_size)
        self.retention = retention or Retention()
        self.clock = clock
        self._parts = Partitions(self.db)
        self._layouts = LayoutCache()
        self._writer = Writer(self.db, self._parts)

    # -- lifecycle -------------------------------------------------------------------------

    async def _opened(self) -> None:
        await self._parts.ensure_ahead(self.clock())

    # -- writes ----------------------------------------------------------------------------

    async def write(self, batches: Sequence[SeriesBatch]) -> list[SeriesBatch]:
        return await self._writer.write(batches)

    async def append_records(self, records: Sequence[Record]) -> None:
        if not records:
            return
        async with self.db.tx("append records") as conn:
            await conn.execute(
                _APPEND_RECORDS,
                [r.kind for r in records],
                [r.id for r in records],
                [r.time_ms for r in records],
                [r.key for r in records],
                [json.dumps(r.body) for r in records],
            )

    # -- rollups, retention, partitions ------------------------------------------------------

    async def rollup(self, now_ms: int | None = None) -> int:
        await self._parts.ensure_ahead(self.clock())
        now = self.clock() if now_ms is None else now_ms
        return await RollupJob(self.db, self._parts, self._layouts).run(now)

    async def enforce_retention(self, now_ms: int) -> dict[Tier, int]:
        dropped = {Tier.RAW: 0, Tier.M1: 0, Tier.H1: 0}
        for name in sorted(await self._parts.refresh()):
            parsed = parse_partition(name)
            if parsed is None:
                continue
            tier, _, end = parsed
            if end <= now_ms - self.retention.of(tier) and await self._parts.drop(name):
                dropped[tier] += 1
        async with self.db.tx("retention") as conn:
            await conn.execute(
                "DELETE FROM records WHERE time_ms < $1", now_ms - self.retention.h1_ms
            )
        await self._parts.ensure_ahead(self.clock())
        return dropped

    async def partitions(self) -> list[PartitionInfo]:
        return await self._parts.listing()

    async def export_partition(self, name: str) -> pa.Table:
        async with self.db.tx(f"export {name}", readonly=True, isolation="repeatable_read") as c:
            return await export_partition(c, self._layouts, name)

    async def drop_partition(self, name: str) -> None:
        await self._parts.drop(name)

    async def import_partition(self, name: str, table: pa.Table) -> int:
        tier, times = check_import(name, table)
        await self._parts.ensure({name})
        async with self.db.tx(f"import {name}") as conn:
            return await import_partition(conn, name, tier, table, times)

    # -- reads -----------------------------------------------------------------------------

    async def stored_through(self, domain: str, source_id: str) -> int:
        async with self.db.tx("stored_through", readonly=True) as conn:
            return await pg_read.stored_through(conn, domain, source_id)

    async def sources(self, domain: str) -> list[SourceState]:
        async with self.db.tx("sources", readonly=True) as conn:
            return await pg_read.sources(conn, domain)

    async def series(self, domain: str, source_id: str) -> list[str]:
        async with self.db.tx("series", readonly=True) as conn:
            return await pg_read.series(conn, domain, source_id)

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        async with self.db.tx("latest", readonly=True) as conn:
            return await pg_read.latest(conn, domain, source_id)

    async def read(
        self, domain: str, source_id: str, series: str, start_ms: int, end_ms: int, tier: Tier
    ) -> SeriesPoints:
        async with self.db.tx("read", readonly=True, isolation="repeatable_read") as conn:
            return await pg_read.read(conn, domain, source_id, series, start_ms, end_ms, tier)

    async def records(
        self,
        kind: str,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        key: str | None = None,
        limit: int = 1000,
    ) -> list[Record]:
        async with self.db.tx("records", readonly=True) as conn:
            return await pg_read.records(conn, kind, start_ms, end_ms, key, limit)
