"""Reads of the PostgreSQL warm tier. Each function runs on a connection in a transaction.

A raw read of one series ships one value per frame (``vals[position]``, the position found
once per layout), never whole frames; whole frames (rollups, export) come as
``array_send`` bytes decoded by numpy. Bucket maths (``store/rollup.py``, ``store/frames.py``)
and what a rollup-tier read covers (``progress.read_spans``) are shared with SQLite, so both
backends aggregate alike.
"""

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
from sysmonstm.store.pg_m1 import hour_rows
from sysmonstm.store.progress import M1, Span, read_spans, rollup_points
from sysmonstm.store.rollup import Buckets, bucket_matrix


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


# What each span of a rollup-tier read selects, as (tag, t, seq, min, max, sum, count, last)
# rows: the stored hourly rows, the series' open minutes (``pg_m1``; its hour rows are read
# apart, as arrays), or the series' raw samples. Each span is bounded by
# its own parameters, so the planner prunes every partition outside it.
_SPAN_SQL = {
    Tier.H1: "SELECT 2, t, 0::int8, min, max, sum, count, last FROM h1"
    " WHERE series_id = $1 AND t >= {lo} AND t < {hi}",
    Tier.M1: "SELECT 1, t, 0::int8, min, max, sum, count, last FROM m1_open"
    " WHERE series_id = $1 AND t >= {lo} AND t < {hi}",
    Tier.RAW: "SELECT 0, r.t, r.seq, r.vals[l.pos], r.vals[l.pos], r.vals[l.pos], 1,"
    " r.vals[l.pos] FROM raw r"
    " JOIN (SELECT id, array_position(ids, $1) AS pos FROM layouts"
    " WHERE source_id = {src} AND $1 = ANY (ids)) l ON l.id = r.layout_id"
    " WHERE r.source_id = {src} AND r.t >= {lo} AND r.t < {hi}",
}
_TAG = {Tier.RAW: 0, Tier.M1: 1, Tier.H1: 2}


async def span_buckets(
    conn: Conn, source_id: int, series_id: int, spans: list[Span]
) -> list[Buckets]:
    """The buckets of one series in ``spans`` (``progress.read_spans``), read by one
    statement (stored rollup rows as they are, raw samples rolled into 1-minute buckets),
    plus one per minute span for the series' hour rows, decoded by numpy (``pg_m1``)."""
    if not spans:
        return []
    minutes = [s for s in spans if s.tier is Tier.M1]
    hours = [await hour_rows(conn, series_id, s.start_ms, s.end_ms) for s in minutes]
    return [b for b in hours if len(b)] + await _one_statement(conn, source_id, series_id, spans)


async def _one_statement(
    conn: Conn, source_id: int, series_id: int, spans: list[Span]
) -> list[Buckets]:
    args: list[object] = [series_id]
    parts = []
    for span in spans:
        if span.tier is Tier.RAW:
            args.append(source_id)
        src = f"${len(args)}"
        args += [span.start_ms, span.end_ms]
        sql = _SPAN_SQL[span.tier]
        parts.append(sql.format(src=src, lo=f"${len(args) - 1}", hi=f"${len(args)}"))
    rows = await conn.fetch(" UNION ALL ".join(parts) + " ORDER BY 1, 2, 3", *args)
    if not rows:
        return []
    cols = list(zip(*rows, strict=True))
    tag = np.asarray(cols[0], dtype=np.int64)
    t = np.asarray(cols[1], dtype=np.int64)
    mn, mx, sm, last = (np.asarray(cols[i], dtype=np.float64) for i in (3, 4, 5, 7))
    count = np.asarray(cols[6], dtype=np.int64)
    out = []
    for span in spans:
        picked = tag == _TAG[span.tier]
        if not picked.any():
            continue
        times = t[picked]
        if span.tier is Tier.RAW:
            out.append(_raw_buckets(series_id, times, mn[picked], M1))
            continue
        out.append(
            Buckets(
                series_ids=np.full(len(times), series_id, dtype=np.int64),
                t=times,
                min=mn[picked],
                max=mx[picked],
                sum=sm[picked],
                count=count[picked],
                last=last[picked],
                last_t=times,
            )
        )
    return out


async def read(
    conn: Conn, domain: str, key: str, series: str, start_ms: int, end_ms: int, tier: Tier
) -> SeriesPoints:
    """One series of one tier; rollup tiers cover the not yet rolled-up tail from finer
    tiers (see ``WarmTier.read``), every span read by one statement once the source's
    progress is known. Run in a repeatable-read transaction: one snapshot."""
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
    spans = read_spans(tier, start_ms, end_ms, m1_through, h1_through)
    return rollup_points(series, tier, await span_buckets(conn, source_id, series_id, spans))


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
    """Each series' value in the newest of the source's last 64 frames that holds it: the
    newest of those frames per layout, unnested (usually one frame, not 64)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (u.sid) se.key, f.t, u.v
           FROM (SELECT DISTINCT ON (r.layout_id) r.t, r.seq, r.layout_id, r.vals
                 FROM (SELECT t, seq, layout_id, vals FROM raw
                       WHERE source_id = (SELECT id FROM sources WHERE domain = $1 AND key = $2)
                       ORDER BY t DESC, seq DESC LIMIT 64) r
                 ORDER BY r.layout_id, r.t DESC, r.seq DESC) f
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
