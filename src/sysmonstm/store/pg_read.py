"""Reads of the PostgreSQL warm tier. Each function runs on a connection in a transaction.

A raw read of one series ships one value per frame (``vals[position]``, the position found
once per layout), never whole frames; whole frames (rollups, export) come as
``array_send`` bytes decoded by numpy. Bucket maths (``store/rollup.py``, ``store/frames.py``)
and what a rollup-tier read covers (``progress.read_spans``) are shared with SQLite, so both
backends aggregate alike.
"""

# ruff: noqa: S608  # SQL names only the fixed rollup parents (m1, h1), never input

from __future__ import annotations

import json

import numpy as np

from sysmonstm.store.frames import FrameGroup
from sysmonstm.store.model import (
    Int64Array,
    LatestValue,
    Record,
    SeriesPoints,
    SourceInfo,
    SourceState,
    Tier,
)
from sysmonstm.store.pg_binary import float8_arrays
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.progress import M1, read_spans, rollup_points
from sysmonstm.store.rollup import Buckets, bucket_matrix

_ROLLUP_TABLE = {Tier.M1: "m1", Tier.H1: "h1"}


class LayoutCache:
    """Series ids of layouts (immutable once stored), fetched on first use."""

    def __init__(self) -> None:
        self._ids: dict[int, Int64Array] = {}

    async def ids(self, conn: Conn, layouts: set[int]) -> dict[int, Int64Array]:
        missing = [lid for lid in layouts if lid not in self._ids]
        if missing:
            rows = await conn.fetch("SELECT id, ids FROM layouts WHERE id = ANY($1)", missing)
            self._ids.update({int(r[0]): np.asarray(r[1], dtype=np.int64) for r in rows})
        return {lid: self._ids[lid] for lid in layouts}


async def raw_frames(
    conn: Conn, cache: LayoutCache, source_id: int, start_ms: int, end_ms: int
) -> list[FrameGroup]:
    """Every raw frame of a source in ``[start_ms, end_ms)``, grouped by layout, time order."""
    rows = await conn.fetch(
        "SELECT t, layout_id, array_send(vals) FROM raw"
        " WHERE source_id = $1 AND t >= $2 AND t < $3 ORDER BY t, seq",
        source_id,
        start_ms,
        end_ms,
    )
    by_layout: dict[int, tuple[list[int], list[bytes]]] = {}
    for t, layout, blob in rows:
        entry = by_layout.setdefault(layout, ([], []))
        entry[0].append(t)
        entry[1].append(blob)
    ids = await cache.ids(conn, set(by_layout))
    return [
        FrameGroup(
            ids[layout],
            np.asarray(times, dtype=np.int64),
            float8_arrays(blobs, len(ids[layout])),
        )
        for layout, (times, blobs) in by_layout.items()
    ]


async def raw_series(
    conn: Conn, source_id: int, series_id: int, start_ms: int, end_ms: int
) -> tuple[Int64Array, np.ndarray]:
    """Times and values of one series in ``[start_ms, end_ms)``, in time order."""
    if start_ms >= end_ms:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    row = await conn.fetchrow(
        """SELECT coalesce(array_agg(r.t ORDER BY r.t, r.seq), '{}'),
                  coalesce(array_agg(r.vals[l.pos] ORDER BY r.t, r.seq), '{}')
           FROM raw r
           JOIN (SELECT id, array_position(ids, $2) AS pos FROM layouts
                 WHERE source_id = $1 AND $2 = ANY (ids)) l ON l.id = r.layout_id
           WHERE r.source_id = $1 AND r.t >= $3 AND r.t < $4""",
        source_id,
        series_id,
        start_ms,
        end_ms,
    )
    assert row is not None
    return np.asarray(row[0], dtype=np.int64), np.asarray(row[1], dtype=np.float64)


def _raw_buckets(series_id: int, times: Int64Array, values: np.ndarray, step: int) -> Buckets:
    return bucket_matrix(np.asarray([series_id], dtype=np.int64), times, values[:, None], step)


async def rollup_rows(
    conn: Conn, tier: Tier, series_id: int, start_ms: int, end_ms: int
) -> Buckets:
    """Stored rollup rows of ``tier`` for one series in ``[start_ms, end_ms)``."""
    if start_ms >= end_ms:
        return Buckets.empty()
    rows = await conn.fetch(
        f"SELECT t, min, max, sum, count, last FROM {_ROLLUP_TABLE[tier]}"
        " WHERE series_id = $1 AND t >= $2 AND t < $3 ORDER BY t",
        series_id,
        start_ms,
        end_ms,
    )
    if not rows:
        return Buckets.empty()
    cols = list(zip(*rows, strict=True))
    t = np.asarray(cols[0], dtype=np.int64)
    return Buckets(
        series_ids=np.full(len(t), series_id, dtype=np.int64),
        t=t,
        min=np.asarray(cols[1], dtype=np.float64),
        max=np.asarray(cols[2], dtype=np.float64),
        sum=np.asarray(cols[3], dtype=np.float64),
        count=np.asarray(cols[4], dtype=np.int64),
        last=np.asarray(cols[5], dtype=np.float64),
        last_t=t,
    )


async def read(
    conn: Conn, domain: str, key: str, series: str, start_ms: int, end_ms: int, tier: Tier
) -> SeriesPoints:
    """One series of one tier; rollup tiers cover the not yet rolled-up tail from finer
    tiers (see ``WarmTier.read``). Run in a repeatable-read transaction: one snapshot."""
    row = await conn.fetchrow(
        "SELECT so.id, so.m1_through, so.h1_through, se.id FROM sources so"
        " JOIN series se ON se.source_id = so.id"
        " WHERE so.domain = $1 AND so.key = $2 AND se.key = $3",
        domain,
        key,
        series,
    )
    if row is None:
        return SeriesPoints.empty(series, tier, tier.step_ms)
    source_id, m1_through, h1_through, series_id = (int(v) for v in row)
    if tier in (Tier.RAW, Tier.HOT):
        times, values = await raw_series(conn, source_id, series_id, start_ms, end_ms)
        interval = int(np.median(np.diff(times))) if len(times) > 1 else 0
        return SeriesPoints.raw(series, Tier.RAW, interval, times, values)
    parts = []
    for span in read_spans(tier, start_ms, end_ms, m1_through, h1_through):
        lo, hi = span.start_ms, span.end_ms
        if span.tier is Tier.RAW:
            times, values = await raw_series(conn, source_id, series_id, lo, hi)
            parts.append(_raw_buckets(series_id, times, values, M1))
        else:
            parts.append(await rollup_rows(conn, span.tier, series_id, lo, hi))
    return rollup_points(series, tier, parts)


async def stored_through(conn: Conn, domain: str, key: str) -> int:
    found = await conn.fetchval(
        "SELECT stored_seq FROM sources WHERE domain = $1 AND key = $2", domain, key
    )
    return 0 if found is None else int(found)


async def sources(conn: Conn, domain: str) -> list[SourceState]:
    rows = await conn.fetch(
        "SELECT s.key, s.name, s.labels::text, s.first_ms, s.last_ms, s.interval_ms,"
        " (SELECT count(*) FROM series WHERE source_id = s.id)"
        ' FROM sources s WHERE s.domain = $1 ORDER BY s.last_ms DESC, s.key COLLATE "C"',
        domain,
    )
    return [
        SourceState(
            SourceInfo(domain, key, name, tuple(sorted(json.loads(labels).items()))),
            int(first),
            int(last),
            int(interval),
            int(n),
        )
        for key, name, labels, first, last, interval, n in rows
    ]


async def series(conn: Conn, domain: str, key: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT se.key FROM series se JOIN sources so ON so.id = se.source_id"
        ' WHERE so.domain = $1 AND so.key = $2 ORDER BY se.key COLLATE "C"',
        domain,
        key,
    )
    return [str(r[0]) for r in rows]


async def latest(conn: Conn, domain: str, key: str) -> list[LatestValue]:
    """Each series' value in the newest of the source's last 64 frames that holds it."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (u.sid) se.key, f.t, u.v
           FROM (SELECT r.t, r.seq, r.layout_id, r.vals FROM raw r
                 WHERE r.source_id = (SELECT id FROM sources WHERE domain = $1 AND key = $2)
                 ORDER BY r.t DESC, r.seq DESC LIMIT 64) f
           JOIN layouts l ON l.id = f.layout_id
           CROSS JOIN LATERAL unnest(l.ids, f.vals) AS u(sid, v)
           JOIN series se ON se.id = u.sid
           ORDER BY u.sid, f.t DESC, f.seq DESC""",
        domain,
        key,
    )
    found = [LatestValue(str(k), int(t), float(v)) for k, t, v in rows]
    return sorted(found, key=lambda lv: lv.series)


async def records(
    conn: Conn, kind: str, start_ms: int, end_ms: int | None, key: str | None, limit: int
) -> list[Record]:
    sql = "SELECT id, time_ms, key, body::text FROM records WHERE kind = $1 AND time_ms >= $2"
    params: list[object] = [kind, start_ms]
    if end_ms is not None:
        params.append(end_ms)
        sql += f" AND time_ms < ${len(params)}"
    if key is not None:
        params.append(key)
        sql += f" AND key = ${len(params)}"
    params.append(limit)
    sql += f' ORDER BY time_ms DESC, id COLLATE "C" DESC LIMIT ${len(params)}'
    return [
        Record(kind, str(rid), int(t), str(k), json.loads(body))
        for rid, t, k, body in await conn.fetch(sql, *params)
    ]
