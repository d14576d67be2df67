"""Reads of the SQLite warm tier. One ``SqliteReader`` per reader thread (own connection).

What a rollup-tier read covers is ``progress.read_spans``'s, shared with PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import numpy as np

from sysmonstm.store import sqlite_db as db
from sysmonstm.store.frames import FrameGroup, raw_buckets
from sysmonstm.store.model import (
    Float64Array,
    Int64Array,
    LatestValue,
    Record,
    SeriesPoints,
    SourceInfo,
    SourceState,
    Tier,
)
from sysmonstm.store.partitions import overlapping
from sysmonstm.store.progress import M1, read_spans, rollup_points
from sysmonstm.store.rollup import Buckets


def layout_ids(conn: sqlite3.Connection, cache: dict[int, Int64Array], layout: int) -> Int64Array:
    ids = cache.get(layout)
    if ids is None:
        row = conn.execute("SELECT ids FROM layouts WHERE id=?", (layout,)).fetchone()
        ids = np.frombuffer(row[0], dtype="<i8").astype(np.int64)
        cache[layout] = ids
    return ids


def raw_frames(
    conn: sqlite3.Connection,
    cache: dict[int, Int64Array],
    source_id: int,
    start_ms: int,
    end_ms: int,
) -> list[FrameGroup]:
    """Every raw frame of a source in ``[start_ms, end_ms)``, grouped by layout, time order."""
    rows: list[tuple[int, int, bytes]] = []
    for name, _, _ in overlapping(db.existing_tables(conn), Tier.RAW, start_ms, end_ms):
        rows.extend(
            conn.execute(
                f"SELECT t, layout_id, vals FROM {name} WHERE source_id=? AND t>=? AND t<?"
                " ORDER BY t",
                (source_id, start_ms, end_ms),
            ).fetchall()
        )
    by_layout: dict[int, tuple[list[int], list[bytes]]] = {}
    for t, layout, vals in rows:
        entry = by_layout.setdefault(layout, ([], []))
        entry[0].append(t)
        entry[1].append(vals)
    groups = []
    for layout, (times, blobs) in by_layout.items():
        ids = layout_ids(conn, cache, layout)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(times), len(ids))
        groups.append(FrameGroup(ids, np.asarray(times, dtype=np.int64), matrix))
    return groups


def rollup_rows(
    conn: sqlite3.Connection,
    tier: Tier,
    series_sql: str,
    params: tuple[int, ...],
    start_ms: int,
    end_ms: int,
) -> Buckets:
    """Stored rollup rows of ``tier`` for the series selected by ``series_sql``."""
    rows: list[tuple[int, int, float, float, float, int, float]] = []
    for name, _, _ in overlapping(db.existing_tables(conn), tier, start_ms, end_ms):
        rows.extend(
            conn.execute(
                f"SELECT series_id, t, min, max, sum, count, last FROM {name}"
                f" WHERE series_id IN ({series_sql}) AND t>=? AND t<? ORDER BY series_id, t",
                (*params, start_ms, end_ms),
            ).fetchall()
        )
    return Buckets.from_rows(rows)


class SqliteReader:
    """Read queries over one connection (used by one thread at a time)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._layouts: dict[int, Int64Array] = {}

    def _source(self, domain: str, key: str) -> tuple[int, int, int] | None:
        row = self.conn.execute(
            "SELECT id, m1_through, h1_through FROM sources WHERE domain=? AND key=?",
            (domain, key),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def stored_through(self, domain: str, key: str) -> int:
        row = self.conn.execute(
            "SELECT stored_seq FROM sources WHERE domain=? AND key=?", (domain, key)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def sources(self, domain: str) -> list[SourceState]:
        rows = self.conn.execute(
            "SELECT s.key, s.name, s.labels, s.first_ms, s.last_ms, s.interval_ms,"
            " (SELECT count(*) FROM series WHERE source_id = s.id)"
            " FROM sources s WHERE domain=? ORDER BY last_ms DESC",
            (domain,),
        ).fetchall()
        return [
            SourceState(
                SourceInfo(domain, key, name, tuple(sorted(json.loads(labels).items()))),
                first,
                last,
                interval,
                n,
            )
            for key, name, labels, first, last, interval, n in rows
        ]

    def series(self, domain: str, key: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT se.key FROM series se JOIN sources so ON so.id = se.source_id"
            " WHERE so.domain=? AND so.key=? ORDER BY se.key",
            (domain, key),
        ).fetchall()
        return [r[0] for r in rows]

    def latest(self, domain: str, key: str) -> list[LatestValue]:
        src = self._source(domain, key)
        if src is None:
            return []
        names = dict(
            self.conn.execute("SELECT id, key FROM series WHERE source_id=?", (src[0],)).fetchall()
        )
        found: dict[int, tuple[int, float]] = {}
        seen: set[int] = set()  # layouts whose newest frame was read: it holds all its series
        tables = sorted(
            (t for t in db.existing_tables(self.conn) if t.startswith("raw_")), reverse=True
        )
        for name in tables[:2]:
            for t, layout, vals in self.conn.execute(
                f"SELECT t, layout_id, vals FROM {name} WHERE source_id=? ORDER BY t DESC LIMIT 64",
                (src[0],),
            ):
                if layout in seen:
                    continue
                seen.add(layout)
                ids = layout_ids(self.conn, self._layouts, layout)
                values = np.frombuffer(vals, dtype="<f8")
                for sid, v in zip(ids.tolist(), values.tolist(), strict=True):
                    found.setdefault(sid, (t, v))
            if len(found) >= len(names):
                break
        return sorted(
            (LatestValue(names[sid], t, v) for sid, (t, v) in found.items() if sid in names),
            key=lambda lv: lv.series,
        )

    def read(
        self, domain: str, key: str, series: str, start_ms: int, end_ms: int, tier: Tier
    ) -> SeriesPoints:
        src = self._source(domain, key)
        row = (
            None
            if src is None
            else self.conn.execute(
                "SELECT id FROM series WHERE source_id=? AND key=?", (src[0], series)
            ).fetchone()
        )
        if src is None or row is None:
            return SeriesPoints.empty(series, tier, tier.step_ms)
        source_id, m1_through, h1_through = src
        series_id = int(row[0])
        if tier in (Tier.RAW, Tier.HOT):
            return self._read_raw(series, source_id, series_id, start_ms, end_ms)
        parts = []
        for span in read_spans(tier, start_ms, end_ms, m1_through, h1_through):
            lo, hi = span.start_ms, span.end_ms
            if span.tier is Tier.RAW:
                groups = raw_frames(self.conn, self._layouts, source_id, lo, hi)
                parts.append(raw_buckets(groups, M1, only=series_id))
            else:
                parts.append(rollup_rows(self.conn, span.tier, "?", (series_id,), lo, hi))
        return rollup_points(series, tier, parts)

    def _read_raw(
        self, series: str, source_id: int, series_id: int, start_ms: int, end_ms: int
    ) -> SeriesPoints:
        times: list[Int64Array] = []
        values: list[Float64Array] = []
        interval = 0
        for g in raw_frames(self.conn, self._layouts, source_id, start_ms, end_ms):
            cols = np.flatnonzero(g.ids == series_id)
            if len(cols):
                times.append(g.times)
                values.append(g.values[:, cols[0]])
        if not times:
            return SeriesPoints.empty(series, Tier.RAW, interval)
        t = np.concatenate(times)
        v = np.concatenate(values)
        order = np.argsort(t, kind="stable")
        if len(t) > 1:
            interval = int(np.median(np.diff(t[order])))
        return SeriesPoints.raw(series, Tier.RAW, interval, t[order], v[order].copy())

    def records(
        self, kind: str, start_ms: int, end_ms: int | None, key: str | None, limit: int
    ) -> list[Record]:
        sql = "SELECT id, time_ms, key, body FROM records WHERE kind=? AND time_ms>=?"
        params: list[object] = [kind, start_ms]
        if end_ms is not None:
            sql += " AND time_ms<?"
            params.append(end_ms)
        if key is not None:
            sql += " AND key=?"
            params.append(key)
        sql += " ORDER BY time_ms DESC, id DESC LIMIT ?"
        params.append(limit)
        return [
            Record(kind, rid, t, k, json.loads(body))
            for rid, t, k, body in self.conn.execute(sql, params)
        ]
