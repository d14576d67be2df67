"""Writes to the PostgreSQL warm tier: one transaction per call, exactly once per source.

The transaction locks the ``sources`` rows of every source it writes (``FOR UPDATE``, in key
order so two writers never deadlock), reads their watermarks under that lock, skips batches
at or below them, stores the rest with one binary COPY per day partition, marks late samples'
rollup buckets dirty, and moves the watermarks. Aggregators are stateless and several may
write one source after a failover: the row lock makes the watermark check authoritative, so
each sample is stored once whoever wins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np

from sysmonstm.errors import BackendError
from sysmonstm.store.model import Int64Array, SeriesBatch, Tier
from sysmonstm.store.partitions import partition_name
from sysmonstm.store.pg_binary import RAW_COLUMNS, copy_stream, raw_rows
from sysmonstm.store.pg_conn import Conn, PgDb
from sysmonstm.store.pg_ids import LAYOUT_SQL, SERIES_SQL, digest
from sysmonstm.store.pg_partitions import DAY_MS, Partitions, PartitionsMissingError

M1, H1 = 60_000, 3_600_000
SourceKey = tuple[str, str]

_NEW_SOURCES = """
    INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, interval_ms,
                         stored_seq, m1_through, h1_through)
    SELECT d, k, n, l::jsonb, f, f, i, 0, f - f % 60000, f - f % 3600000
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int4[])
        AS u(d, k, n, l, f, i)
    ORDER BY d, k
    ON CONFLICT (domain, key) DO NOTHING"""
_LOCK_SOURCES = """
    SELECT id, domain, key, stored_seq, first_ms, last_ms, m1_through, h1_through
    FROM sources
    WHERE (domain, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
    ORDER BY domain, key
    FOR UPDATE"""
_DIRTY = """
    INSERT INTO dirty (source_id, tier, bucket)
    SELECT * FROM unnest($1::int4[], $2::text[], $3::int8[])
    ON CONFLICT DO NOTHING"""
_MOVE_WATERMARKS = """
    UPDATE sources AS s
    SET stored_seq = u.seq, first_ms = u.f, last_ms = u.l, name = u.n, labels = u.lab::jsonb,
        interval_ms = u.i
    FROM unnest($1::int4[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::text[],
                $7::int4[]) AS u(id, seq, f, l, n, lab, i)
    WHERE s.id = u.id"""


@dataclass(slots=True)
class _Source:
    """A locked ``sources`` row as this write changes it."""

    id: int
    stored_seq: int
    first_ms: int
    last_ms: int
    m1_through: int
    h1_through: int
    interval_ms: int = 0


@dataclass(slots=True)
class _Item:
    """A batch this write stores, with what the write works out about it."""

    batch: SeriesBatch
    source: _Source
    lo: int  # earliest and latest sample time
    hi: int
    layout: int = 0


_SOURCE_COLS = ("id", "stored_seq", "first_ms", "last_ms", "m1_through", "h1_through")


def _span(times: Int64Array) -> tuple[int, int]:
    """Earliest and latest time (a live batch has one frame: no reduction needed)."""
    if len(times) == 1:
        t = int(times[0])
        return t, t
    return int(times.min()), int(times.max())


class Writer:
    """Stores batches; caches what is immutable once committed (ids of sources, series and
    layouts), so a steady write costs a handful of statements whatever its batch count."""

    def __init__(self, db: PgDb, partitions: Partitions) -> None:
        self.db = db
        self.partitions = partitions
        self._known_sources: set[SourceKey] = set()
        self._series: dict[tuple[int, str], int] = {}
        self._layout_of: dict[tuple[int, tuple[str, ...]], int] = {}
        self._day_names: dict[int, str] = {}

    def _day(self, day: int) -> str:
        name = self._day_names.get(day)
        if name is None:
            name = self._day_names[day] = partition_name(Tier.RAW, day * DAY_MS)
        return name

    async def write(self, batches: Sequence[SeriesBatch]) -> list[SeriesBatch]:
        live = [b for b in batches if len(b.times_ms)]
        if not live:
            return []
        spans = [_span(b.times_ms) for b in live]
        needed = {self._day(d) for lo, hi in spans for d in range(lo // DAY_MS, hi // DAY_MS + 1)}
        await self.partitions.ensure(needed)
        try:
            return await self._write(live, spans)
        except PartitionsMissingError:  # dropped by another process behind our cache
            await self.partitions.refresh()
            await self.partitions.ensure(needed)
            return await self._write(live, spans)

    async def _write(
        self, live: list[SeriesBatch], spans: list[tuple[int, int]]
    ) -> list[SeriesBatch]:
        series: dict[tuple[int, str], int] = {}
        layouts: dict[tuple[int, tuple[str, ...]], int] = {}
        async with self.db.tx("write") as conn:
            sources = await self._lock_sources(conn, live, spans)
            items = _select(live, spans, sources)
            if items:
                await self._resolve_layouts(conn, items, series, layouts)
                await self._copy(conn, items)
                await _mark_dirty(conn, items)
                await _move_watermarks(conn, items)
        self._known_sources.update(sources)
        self._series.update(series)
        self._layout_of.update(layouts)
        return [it.batch for it in items]

    async def _lock_sources(
        self, conn: Conn, live: list[SeriesBatch], spans: list[tuple[int, int]]
    ) -> dict[SourceKey, _Source]:
        keys = sorted({(b.source.domain, b.source.id) for b in live})
        new = {k for k in keys if k not in self._known_sources}
        if new:
            # a new source's row starts at its earliest sample here, as its rollups do
            firsts: dict[SourceKey, SeriesBatch] = {}
            earliest: dict[SourceKey, int] = {}
            for b, (lo, _) in zip(live, spans, strict=True):
                key = (b.source.domain, b.source.id)
                if key in new:
                    firsts.setdefault(key, b)
                    earliest[key] = min(earliest.get(key, lo), lo)
            order = sorted(new)
            await conn.execute(
                _NEW_SOURCES,
                [k[0] for k in order],
                [k[1] for k in order],
                [firsts[k].source.name for k in order],
                [json.dumps(dict(firsts[k].source.labels)) for k in order],
                [earliest[k] for k in order],
                [firsts[k].interval_ms for k in order],
            )
        rows = await conn.fetch(_LOCK_SOURCES, [k[0] for k in keys], [k[1] for k in keys])
        found = {(r["domain"], r["key"]): _Source(*(int(r[c]) for c in _SOURCE_COLS)) for r in rows}
        if len(found) < len(keys):
            if not self._known_sources:
                raise BackendError("sources vanished while being written")
            # sources we knew are gone: the database was recreated under us, so none of
            # the cached ids can be trusted any more
            self._known_sources.clear()
            self._series.clear()
            self._layout_of.clear()
            return await self._lock_sources(conn, live, spans)
        return found

    async def _resolve_layouts(
        self,
        conn: Conn,
        items: list[_Item],
        series: dict[tuple[int, str], int],
        layouts: dict[tuple[int, tuple[str, ...]], int],
    ) -> None:
        """Set each item's layout id, storing series and layouts seen for the first time."""
        unknown: dict[tuple[int, tuple[str, ...]], list[_Item]] = {}
        for it in items:
            key = (it.source.id, it.batch.series)
            found = self._layout_of.get(key)
            if found is None:
                unknown.setdefault(key, []).append(it)
            else:
                it.layout = found
        if not unknown:
            return
        missing = sorted(
            {(sid, k) for sid, keys in unknown for k in keys if (sid, k) not in self._series}
        )
        if missing:
            rows = await conn.fetch(SERIES_SQL, [p[0] for p in missing], [p[1] for p in missing])
            series.update({(int(r["source_id"]), str(r["key"])): int(r["id"]) for r in rows})
        for (sid, keys), waiting in unknown.items():
            ids = [series.get((sid, k)) or self._series[(sid, k)] for k in keys]
            layout = int(await conn.fetchval(LAYOUT_SQL, sid, digest(ids), ids))
            layouts[(sid, keys)] = layout
            for it in waiting:
                it.layout = layout

    async def _copy(self, conn: Conn, items: list[_Item]) -> None:
        """One binary COPY per day partition (equally wide frames encoded together)."""
        groups: dict[str, dict[int, list[tuple[_Item, np.ndarray | None]]]] = {}
        for it in items:
            width = len(it.batch.series)
            first, last = it.lo // DAY_MS, it.hi // DAY_MS
            if first == last:
                groups.setdefault(self._day(first), {}).setdefault(width, []).append((it, None))
                continue
            day = it.batch.times_ms // DAY_MS  # a batch across midnight: one part per day
            for d in range(first, last + 1):
                rows = day == d
                if rows.any():
                    groups.setdefault(self._day(d), {}).setdefault(width, []).append((it, rows))
        for table, by_width in sorted(groups.items()):
            parts = [_encode(width, part) for width, part in by_width.items()]
            try:
                await conn.copy_to_table(
                    table, source=copy_stream(parts), columns=list(RAW_COLUMNS), format="binary"
                )
            except asyncpg.UndefinedTableError:
                raise PartitionsMissingError({table}) from None


def _select(
    live: list[SeriesBatch], spans: list[tuple[int, int]], sources: dict[SourceKey, _Source]
) -> list[_Item]:
    """The batches above their source's watermark, in order; advances the rows."""
    items = []
    for b, (lo, hi) in zip(live, spans, strict=True):
        src = sources[(b.source.domain, b.source.id)]
        if b.sequence <= src.stored_seq:
            continue
        src.stored_seq = b.sequence
        src.first_ms = min(src.first_ms, lo)
        src.last_ms = max(src.last_ms, hi)
        src.interval_ms = b.interval_ms
        items.append(_Item(b, src, lo, hi))
    return items


def _encode(width: int, part: list[tuple[_Item, np.ndarray | None]]) -> bytes:
    times = [it.batch.times_ms if rows is None else it.batch.times_ms[rows] for it, rows in part]
    values = [
        (it.batch.values if rows is None else it.batch.values[rows]).reshape(len(t), width)
        for (it, rows), t in zip(part, times, strict=True)
    ]
    counts = [len(t) for t in times]

    def per_row(values_per_item: list[int]) -> Int64Array:
        return np.repeat(np.asarray(values_per_item, dtype=np.int64), counts)

    return raw_rows(
        np.concatenate(times),
        per_row([it.batch.sequence for it, _ in part]),
        per_row([it.source.id for it, _ in part]),
        per_row([it.layout for it, _ in part]),
        np.concatenate(values),
    )


async def _mark_dirty(conn: Conn, items: list[_Item]) -> None:
    """Samples older than what is rolled up mark their buckets for the next rollup pass."""
    ids: list[int] = []
    tiers: list[str] = []
    buckets: list[int] = []
    for it in items:
        src = it.source
        for tier, through, step in (("1m", src.m1_through, M1), ("1h", src.h1_through, H1)):
            if it.lo >= through:
                continue
            times = it.batch.times_ms
            late = times[times < through]
            found = np.unique(late - late % step).tolist()
            ids += [src.id] * len(found)
            tiers += [tier] * len(found)
            buckets += found
    if buckets:
        await conn.execute(_DIRTY, ids, tiers, buckets)


async def _move_watermarks(conn: Conn, items: list[_Item]) -> None:
    latest = {it.source.id: it for it in items}  # the last stored batch names the source
    rows = [(it.source, it.batch.source) for it in latest.values()]
    await conn.execute(
        _MOVE_WATERMARKS,
        [s.id for s, _ in rows],
        [s.stored_seq for s, _ in rows],
        [s.first_ms for s, _ in rows],
        [s.last_ms for s, _ in rows],
        [info.name for _, info in rows],
        [json.dumps(dict(info.labels)) for _, info in rows],
        [s.interval_ms for s, _ in rows],
    )
