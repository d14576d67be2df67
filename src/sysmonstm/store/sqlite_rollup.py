"""Keeps the SQLite warm tier's 1-minute and 1-hour rollups current, idempotently.

Rollups are derived data: each bucket is computed from the finer tier and written with
INSERT OR REPLACE, so a crash or a rerun never double counts. Per source, ``m1_through`` and
``h1_through`` say how far rollups are complete, and advance by ``store/progress.py``'s rule
(which also closes the last minute and hour of a source that stopped sending); samples that
arrive later for an already rolled-up bucket (a replayed spool) were marked in ``dirty`` by
the write, and are rolled up again here.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from sysmonstm.store import sqlite_db as db
from sysmonstm.store.frames import raw_buckets
from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partitions import partitions_between
from sysmonstm.store.progress import H1, M1, h1_end, hours_to_redo, m1_end
from sysmonstm.store.rollup import Buckets, merge
from sysmonstm.store.sqlite_read import raw_frames, rollup_rows

_RAW_CHUNK = 6 * H1
_M1_CHUNK = 7 * 86_400_000
_SOURCE_SERIES = "SELECT id FROM series WHERE source_id=?"


class RollupJob:
    """One pass over every source; runs on the writer connection."""

    def __init__(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        self.conn = conn
        self.tables = tables
        self._layouts: dict[int, Int64Array] = {}

    def run(self, now_ms: int) -> int:
        """Roll up every source as of ``now_ms`` (which decides what counts as silent)."""
        written = 0
        sources = self.conn.execute(
            "SELECT id, last_ms, m1_through, h1_through FROM sources"
        ).fetchall()
        for sid, last_ms, m1_through, h1_through in sources:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                written += self._source(sid, last_ms, m1_through, h1_through, now_ms)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                self.tables.clear()
                self.tables.update(db.existing_tables(self.conn))
                raise
        return written

    def _source(self, sid: int, last_ms: int, m1_through: int, h1_through: int, now_ms: int) -> int:
        written = 0
        for bucket in self._take_dirty(sid, "1m"):
            written += self._write(Tier.M1, self._m1_from_raw(sid, bucket, bucket + M1))
            hour = bucket - bucket % H1
            if hour < h1_through:
                self._redo_hours(sid, [hour])
        end = m1_end(last_ms, now_ms)
        lo = m1_through
        while lo < end:
            hi = min(end, lo + _RAW_CHUNK)
            written += self._write(Tier.M1, self._m1_from_raw(sid, lo, hi))
            lo = hi
        if end > m1_through:
            self._redo_hours(sid, hours_to_redo(m1_through, end, h1_through))
            m1_through = end
            self.conn.execute("UPDATE sources SET m1_through=? WHERE id=?", (end, sid))
        for bucket in self._take_dirty(sid, "1h"):
            written += self._write(Tier.H1, self._h1_from_m1(sid, bucket, bucket + H1))
        end_h = h1_end(last_ms, m1_through, now_ms)
        lo = h1_through
        while lo < end_h:
            hi = min(end_h, lo + _M1_CHUNK)
            written += self._write(Tier.H1, self._h1_from_m1(sid, lo, hi))
            lo = hi
        if end_h > h1_through:
            self.conn.execute("UPDATE sources SET h1_through=? WHERE id=?", (end_h, sid))
        return written

    def _redo_hours(self, sid: int, hours: list[int]) -> None:
        """Mark 1-hour buckets dirty: rolled up already, they lack minutes rolled up since."""
        self.conn.executemany(
            "INSERT OR IGNORE INTO dirty (source_id, tier, bucket) VALUES (?, '1h', ?)",
            [(sid, hour) for hour in hours],
        )

    def _take_dirty(self, sid: int, tier: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT bucket FROM dirty WHERE source_id=? AND tier=? ORDER BY bucket", (sid, tier)
        ).fetchall()
        self.conn.execute("DELETE FROM dirty WHERE source_id=? AND tier=?", (sid, tier))
        return [int(r[0]) for r in rows]

    def _m1_from_raw(self, sid: int, start: int, end: int) -> Buckets:
        return raw_buckets(raw_frames(self.conn, self._layouts, sid, start, end), M1)

    def _h1_from_m1(self, sid: int, start: int, end: int) -> Buckets:
        rows = rollup_rows(self.conn, Tier.M1, _SOURCE_SERIES, (sid,), start, end)
        return merge([rows], H1)

    def _write(self, tier: Tier, b: Buckets) -> int:
        if not len(b):
            return 0
        for name, lo, hi in partitions_between(tier, int(b.t.min()), int(b.t.max()) + 1):
            sel = np.flatnonzero((b.t >= lo) & (b.t < hi))
            if not len(sel):
                continue
            db.ensure_partition(self.conn, self.tables, tier, lo)
            part = Buckets(
                b.series_ids[sel],
                b.t[sel],
                b.min[sel],
                b.max[sel],
                b.sum[sel],
                b.count[sel],
                b.last[sel],
                b.last_t[sel],
            )
            self.conn.executemany(
                f"INSERT OR REPLACE INTO {name} (series_id, t, min, max, sum, count, last)"
                " VALUES (?,?,?,?,?,?,?)",
                part.rows(),
            )
        return len(b)
