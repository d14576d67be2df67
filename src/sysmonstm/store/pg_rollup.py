"""Keeps the PostgreSQL warm tier's 1-minute and 1-hour rollups current, idempotently.

Same semantics as SQLite's (``sqlite_rollup.py``): buckets are recomputed from the finer
tier and upserted, so a rerun or a crash never double counts; ``m1_through``/``h1_through``
per source say how far rollups are complete and advance by ``store/progress.py``'s rule
(which also closes the last minute and hour of a source that stopped sending); late samples
marked their buckets in ``dirty`` and are rolled up again here.

Each step on a source runs in a transaction holding that source's ``sources`` row lock, as
writes do: a write that lands while a rollup reads would otherwise fall between the rolled
range and the late-data marking. Several aggregators may run passes at once; the lock
serializes them per source.

Where the work runs was measured (``python -m bench.pg``, 6 h x 100 series of one source):
1-minute buckets from raw frames are computed with numpy on ``array_send`` bytes (~5.4 M
samples/s, client and server together) rather than in SQL by unnesting the arrays (~1.9 M
samples/s, all of it on the server). They are upserted into ``m1_open`` while their hour is
open and moved into one row per series and hour once it is rolled up into the 1-hour tier
(``pg_m1``); 1-hour buckets from those rows are one ``INSERT ... SELECT ... GROUP BY`` over
their unnested minutes that ships nothing.
"""

from __future__ import annotations

import asyncpg

from sysmonstm.errors import BackendError
from sysmonstm.store.frames import raw_buckets
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import partitions_between
from sysmonstm.store.pg_conn import Conn, PgDb
from sysmonstm.store.pg_m1 import take_open, upsert_open, write_minutes
from sysmonstm.store.pg_partitions import Partitions, PartitionsMissingError
from sysmonstm.store.pg_read import LayoutCache, raw_frames
from sysmonstm.store.progress import H1, M1, due, h1_end, hours_to_redo, m1_end
from sysmonstm.store.rollup import Buckets

_RAW_CHUNK = 6 * H1  # raw time rolled up per transaction (bounds how long a source is locked)
_M1_CHUNK = 7 * 86_400_000

_SOURCES = """
    SELECT s.id, s.last_ms, s.m1_through, s.h1_through,
           EXISTS (SELECT 1 FROM dirty d WHERE d.source_id = s.id)
    FROM sources s ORDER BY s.id"""
# last: the value of the hour's latest minute (an array compares element by element)
_H1_FROM_M1 = """
    INSERT INTO h1 (series_id, t, min, max, sum, count, last)
    SELECT m.series_id, m.t, min(x.min), max(x.max), sum(x.sum), sum(x.count),
           (max(ARRAY[x.i::float8, x.last]))[2]
    FROM m1 m CROSS JOIN LATERAL unnest(m.min, m.max, m.sum, m.count, m.last)
        WITH ORDINALITY AS x(min, max, sum, count, last, i)
    WHERE m.series_id IN (SELECT id FROM series WHERE source_id = $1)
      AND m.t >= $2 AND m.t < $3 AND x.count > 0
    GROUP BY 1, 2
    ON CONFLICT (series_id, t) DO UPDATE SET min = EXCLUDED.min, max = EXCLUDED.max,
        sum = EXCLUDED.sum, count = EXCLUDED.count, last = EXCLUDED.last"""


def runs(buckets: list[int], step: int) -> list[tuple[int, int]]:
    """Sorted bucket starts as ``[lo, hi)`` ranges of adjacent buckets."""
    out: list[tuple[int, int]] = []
    for b in sorted(set(buckets)):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + step)
        else:
            out.append((b, b + step))
    return out


def _count(status: str) -> int:
    """Rows an ``INSERT 0 N`` status reports."""
    return int(status.rsplit(" ", 1)[-1])


class RollupJob:
    """One pass over every source with something to roll up."""

    def __init__(self, db: PgDb, partitions: Partitions, layouts: LayoutCache) -> None:
        self.db = db
        self.partitions = partitions
        self.layouts = layouts

    async def run(self, now_ms: int) -> int:
        """Roll up every source as of ``now_ms`` (which decides what counts as silent)."""
        async with self.db.tx("rollup", readonly=True) as conn:
            rows = await conn.fetch(_SOURCES)
        pending = [
            int(sid)
            for sid, last_ms, m1_through, h1_through, dirty in rows
            if dirty or due(int(last_ms), int(m1_through), int(h1_through), now_ms)
        ]
        written = 0
        for sid in pending:
            written += await self._source(sid, now_ms)
        return written

    async def _source(self, sid: int, now_ms: int) -> int:
        written, misses = 0, 0
        while True:
            try:
                async with self.db.tx("rollup") as conn:
                    n, more = await self._step(conn, sid, now_ms)
            except PartitionsMissingError as need:
                misses += 1
                if misses > 2:
                    raise BackendError(f"rollup: cannot create partitions {need}") from need
                await self.partitions.refresh()
                await self.partitions.ensure(need.names)
                continue
            written += n
            if not more:
                return written

    async def _step(self, conn: Conn, sid: int, now_ms: int) -> tuple[int, bool]:
        """Roll up what one transaction should; return (buckets written, more to do)."""
        row = await conn.fetchrow(
            "SELECT last_ms, m1_through, h1_through FROM sources WHERE id = $1 FOR UPDATE", sid
        )
        assert row is not None
        last_ms, m1_through, h1_through = (int(v) for v in row)
        # how far this step takes the 1-minute and the 1-hour rollups; the hours before
        # h1_hi are (or become in this step) hour rows: their open minutes move there first,
        # and minutes rolled up here go straight there
        end = m1_end(last_ms, now_ms)
        # chunks end on an hour, so that no hour row is written in two steps
        m1_hi = (
            min(end, m1_through - m1_through % H1 + _RAW_CHUNK) if m1_through < end else m1_through
        )
        end_h = h1_end(last_ms, m1_hi, now_ms)
        h1_hi = min(end_h, h1_through + _M1_CHUNK) if h1_through < end_h else h1_through
        if h1_through < h1_hi:
            await self._seal(conn, sid, h1_through, h1_hi)
        written = 0
        dirty_minutes = await _take_dirty(conn, sid, "1m")
        for lo, hi in runs(dirty_minutes, M1):
            written += await self.m1_from_raw(conn, sid, lo, hi, h1_hi)
        dirty_hours = [b - b % H1 for b in dirty_minutes if b - b % H1 < h1_through]
        if m1_through < m1_hi:
            written += await self.m1_from_raw(conn, sid, m1_through, m1_hi, h1_hi)
            dirty_hours += hours_to_redo(m1_through, m1_hi, h1_through)
            await conn.execute("UPDATE sources SET m1_through = $2 WHERE id = $1", sid, m1_hi)
        dirty_hours += await _take_dirty(conn, sid, "1h")
        for lo, hi in runs(dirty_hours, H1):
            written += await self._h1_from_m1(conn, sid, lo, hi)
        if h1_through < h1_hi:
            written += await self._h1_from_m1(conn, sid, h1_through, h1_hi)
            await conn.execute("UPDATE sources SET h1_through = $2 WHERE id = $1", sid, h1_hi)
        return written, m1_hi < end or h1_hi < end_h

    async def m1_from_raw(self, conn: Conn, sid: int, lo: int, hi: int, sealed: int) -> int:
        """Recompute the 1-minute buckets of source ``sid`` in ``[lo, hi)`` from its raw
        frames; return the buckets written. Those before ``sealed`` (hours rolled up into
        ``h1``) go into its hour rows, the others into ``m1_open`` (``pg_m1``). The caller
        holds the source's row lock."""
        b = raw_buckets(await raw_frames(conn, self.layouts, sid, lo, hi), M1)
        if not len(b):
            return 0
        closed = b.t < sealed
        if not closed.all():
            await upsert_open(conn, b.select(~closed))
        if closed.any():
            await self._write_hours(conn, b.select(closed))
        return len(b)

    async def _seal(self, conn: Conn, sid: int, lo: int, hi: int) -> None:
        """Move the source's minutes of the hours in ``[lo, hi)`` from ``m1_open`` into
        their hour rows."""
        await self._write_hours(conn, await take_open(conn, sid, lo, hi))

    async def _write_hours(self, conn: Conn, b: Buckets) -> None:
        if not len(b):
            return
        names = {p[0] for p in partitions_between(Tier.M1, int(b.t.min()), int(b.t.max()) + 1)}
        self.partitions.require(names)
        try:
            await write_minutes(conn, b)
        except asyncpg.CheckViolationError:  # no partition for a row: dropped elsewhere
            raise PartitionsMissingError(names) from None

    async def _h1_from_m1(self, conn: Conn, sid: int, lo: int, hi: int) -> int:
        names = {p[0] for p in partitions_between(Tier.H1, lo, hi)}
        self.partitions.require(names)
        try:
            return _count(await conn.execute(_H1_FROM_M1, sid, lo, hi))
        except asyncpg.CheckViolationError:  # no partition for a row: dropped elsewhere
            raise PartitionsMissingError(names) from None


async def _take_dirty(conn: Conn, sid: int, tier: str) -> list[int]:
    rows = await conn.fetch(
        "DELETE FROM dirty WHERE source_id = $1 AND tier = $2 RETURNING bucket", sid, tier
    )
    return [int(r[0]) for r in rows]
