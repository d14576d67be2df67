"""The embedded warm tier on SQLite (WAL). One writer thread, a pool of reader threads.

Writes are one transaction per call (data, new series and layouts, watermarks), so a crash
leaves either all of a flush or none of it, and the watermark never runs ahead of the data.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa

from sysmonstm.errors import BackendError, ConfigError
from sysmonstm.store import sqlite_db as db
from sysmonstm.store.model import (
    LatestValue,
    PartitionInfo,
    Record,
    Retention,
    SeriesBatch,
    SeriesPoints,
    SourceInfo,
    SourceState,
    Tier,
)
from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.sqlite_export import export_partition
from sysmonstm.store.sqlite_import import import_partition
from sysmonstm.store.sqlite_read import SqliteReader
from sysmonstm.store.sqlite_rollup import RollupJob
from sysmonstm.store.sqlite_threads import SqliteThreads


@dataclass(slots=True)
class SourceRow:
    """Writer-side cache of a ``sources`` row."""

    id: int
    stored_seq: int
    first_ms: int
    last_ms: int
    m1_through: int
    h1_through: int
    info: SourceInfo
    interval_ms: int


def sqlite_path(url: str) -> Path:
    """``sqlite:///abs/path.db`` or ``sqlite://relative.db`` to a path."""
    parts = urlsplit(url)
    raw = unquote((parts.netloc or "") + parts.path)
    if not raw or raw.endswith("/"):
        raise ConfigError(f"{url!r}: a SQLite URL names a file, e.g. sqlite:///var/lib/x.db")
    return Path(raw)


class SqliteWarm:
    """Warm tier in one SQLite file (see ``sqlite_db`` for the layout)."""

    def __init__(
        self, url: str, *, retention: Retention | None = None, synchronous: str = "full"
    ) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self.retention = retention or Retention()
        self._db = SqliteThreads(
            self.path, "warm tier", SqliteReader, prefix="warm", synchronous=synchronous
        )
        self._tables: set[str] = set()
        self._sources: dict[tuple[str, str], SourceRow] = {}
        self._series: dict[tuple[int, str], int] = {}
        self._layouts: dict[bytes, int] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        await self._db.open(db.migrate)
        self._tables = await self._db.on_writer(lambda: db.existing_tables(self.conn))

    async def close(self) -> None:
        await self._db.close(checkpoint=True)

    @property
    def conn(self) -> sqlite3.Connection:
        return self._db.conn

    # -- writes ----------------------------------------------------------------------------

    async def write(self, batches: Sequence[SeriesBatch]) -> list[SeriesBatch]:
        if not batches:
            return []
        return await self._db.on_writer(lambda: self._write_sync(batches))

    def _write_sync(self, batches: Sequence[SeriesBatch]) -> list[SeriesBatch]:
        conn = self.conn
        touched: dict[tuple[str, str], SourceRow] = {}
        new_series: dict[tuple[int, str], int] = {}
        new_layouts: dict[bytes, int] = {}
        stored: list[SeriesBatch] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for batch in batches:
                key = (batch.source.domain, batch.source.id)
                row = touched.get(key)
                if row is None:
                    row = replace(self._source_row(batch))
                    touched[key] = row
                if batch.sequence <= row.stored_seq or len(batch.times_ms) == 0:
                    continue
                ids = self._series_ids(row.id, batch.series, new_series)
                layout = self._layout_id(ids, new_layouts)
                self._insert_frames(row, batch, layout)
                self._mark_dirty(row, batch)
                row.stored_seq = batch.sequence
                row.first_ms = min(row.first_ms, int(batch.times_ms.min()))
                row.last_ms = max(row.last_ms, int(batch.times_ms.max()))
                row.info, row.interval_ms = batch.source, batch.interval_ms
                stored.append(batch)
            conn.executemany(
                "UPDATE sources SET stored_seq=?, first_ms=?, last_ms=? WHERE id=?",
                [(r.stored_seq, r.first_ms, r.last_ms, r.id) for r in touched.values()],
            )
            renamed = [r for key, r in touched.items() if self._identity_changed(key, r)]
            conn.executemany(
                "UPDATE sources SET name=?, labels=?, interval_ms=? WHERE id=?",
                [
                    (r.info.name, json.dumps(dict(r.info.labels)), r.interval_ms, r.id)
                    for r in renamed
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._tables = db.existing_tables(conn)
            self._sources.clear()
            raise
        self._sources.update(touched)
        self._series.update(new_series)
        self._layouts.update(new_layouts)
        return stored

    def _identity_changed(self, key: tuple[str, str], row: SourceRow) -> bool:
        """Whether name, labels or interval differ from what the database holds."""
        before = self._sources.get(key)
        return before is None or (before.info, before.interval_ms) != (row.info, row.interval_ms)

    def _source_row(self, batch: SeriesBatch) -> SourceRow:
        key = (batch.source.domain, batch.source.id)
        cached = self._sources.get(key)
        if cached is not None:
            return cached
        conn = self.conn
        found = conn.execute(
            "SELECT id, stored_seq, first_ms, last_ms, m1_through, h1_through, interval_ms"
            " FROM sources WHERE domain=? AND key=?",
            key,
        ).fetchone()
        if found is None:
            first = int(batch.times_ms.min())
            cur = conn.execute(
                "INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, interval_ms,"
                " stored_seq, m1_through, h1_through) VALUES (?,?,?,?,?,?,?,0,?,?)",
                (
                    *key,
                    batch.source.name,
                    json.dumps(dict(batch.source.labels)),
                    first,
                    first,
                    batch.interval_ms,
                    first - first % 60_000,
                    first - first % 3_600_000,
                ),
            )
            assert cur.lastrowid is not None
            found = (
                cur.lastrowid,
                0,
                first,
                first,
                first - first % 60_000,
                first - first % 3_600_000,
                batch.interval_ms,
            )
        sid, seq, first_ms, last_ms, m1, h1, interval = found
        return SourceRow(sid, seq, first_ms, last_ms, m1, h1, batch.source, interval)

    def _series_ids(
        self, source_id: int, keys: tuple[str, ...], pending: dict[tuple[int, str], int]
    ) -> list[int]:
        out: list[int] = []
        conn = self.conn
        for key in keys:
            k = (source_id, key)
            sid = self._series.get(k) or pending.get(k)
            if sid is None:
                sid = pending[k] = db.series_id(conn, source_id, key)
            out.append(sid)
        return out

    def _layout_id(self, ids: list[int], pending: dict[bytes, int]) -> int:
        blob = np.asarray(ids, dtype="<i8").tobytes()
        lid = self._layouts.get(blob) or pending.get(blob)
        if lid is None:
            lid = pending[blob] = db.layout_id(self.conn, blob)
        return lid

    def _insert_frames(self, row: SourceRow, batch: SeriesBatch, layout: int) -> None:
        times = batch.times_ms.tolist()
        values = np.ascontiguousarray(batch.values, dtype="<f8")
        rows = [
            (row.id, t, batch.sequence, layout, values[i].tobytes()) for i, t in enumerate(times)
        ]
        first_day, last_day = min(times) // 86_400_000, max(times) // 86_400_000
        by_day = {first_day: rows} if first_day == last_day else {}
        if not by_day:  # a batch across midnight: split it by day partition
            for r in rows:
                by_day.setdefault(r[1] // 86_400_000, []).append(r)
        for day_rows in by_day.values():
            table = db.ensure_partition(self.conn, self._tables, Tier.RAW, day_rows[0][1])
            self.conn.executemany(
                f"INSERT INTO {table} (source_id, t, seq, layout_id, vals) VALUES (?,?,?,?,?)",
                day_rows,
            )

    def _mark_dirty(self, row: SourceRow, batch: SeriesBatch) -> None:
        """Late samples (before what is rolled up) mark their buckets for a recompute."""
        for tier, through, step in (
            ("1m", row.m1_through, 60_000),
            ("1h", row.h1_through, 3_600_000),
        ):
            late = batch.times_ms[batch.times_ms < through]
            if len(late):
                buckets = np.unique(late - late % step).tolist()
                self.conn.executemany(
                    "INSERT OR IGNORE INTO dirty (source_id, tier, bucket) VALUES (?,?,?)",
                    [(row.id, tier, b) for b in buckets],
                )

    # -- rollups and retention -------------------------------------------------------------

    async def rollup(self, now_ms: int | None = None) -> int:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms

        def run() -> int:
            try:
                return RollupJob(self.conn, self._tables).run(now)
            finally:
                self._sources.clear()  # rollup progress moved; writes must mark late data

        return await self._db.on_writer(run)

    async def enforce_retention(self, now_ms: int) -> dict[Tier, int]:
        return await self._db.on_writer(lambda: self._retention_sync(now_ms))

    def _retention_sync(self, now_ms: int) -> dict[Tier, int]:
        dropped = {Tier.RAW: 0, Tier.M1: 0, Tier.H1: 0}
        conn = self.conn
        for name in sorted(db.existing_tables(conn)):
            parsed = parse_partition(name)
            if parsed is None:
                continue
            tier, _, end = parsed
            if end <= now_ms - self.retention.of(tier):
                conn.execute(f"DROP TABLE {name}")
                self._tables.discard(name)
                dropped[tier] += 1
        conn.execute("DELETE FROM records WHERE time_ms < ?", (now_ms - self.retention.h1_ms,))
        return dropped

    # -- partitions (for the archive) ------------------------------------------------------

    async def partitions(self) -> list[PartitionInfo]:
        return await self._db.on_writer(self._partitions_sync)

    def _partitions_sync(self) -> list[PartitionInfo]:
        found = [(name, parse_partition(name)) for name in db.existing_tables(self.conn)]
        return sorted(
            (PartitionInfo(p[0], name, p[1], p[2]) for name, p in found if p is not None),
            key=lambda p: (p.start_ms, p.tier.value),
        )

    async def export_partition(self, name: str) -> pa.Table:
        return await self._db.on_reader(lambda r: export_partition(r.conn, name))

    async def drop_partition(self, name: str) -> None:
        def drop() -> None:
            if parse_partition(name) is None:
                raise BackendError(f"{name!r} is not a partition")
            self.conn.execute(f"DROP TABLE IF EXISTS {name}")
            self._tables.discard(name)

        await self._db.on_writer(drop)

    async def import_partition(self, name: str, table: pa.Table) -> int:
        def run() -> int:
            try:
                return import_partition(self.conn, name, table)
            finally:
                self._tables = db.existing_tables(self.conn)
                self._sources.clear()  # first_ms moved, sources may be new

        return await self._db.on_writer(run)

    # -- records ---------------------------------------------------------------------------

    async def append_records(self, records: Sequence[Record]) -> None:
        if records:
            await self._db.on_writer(lambda: self._append_records_sync(records))

    def _append_records_sync(self, records: Sequence[Record]) -> None:
        rows = [(r.kind, r.id, r.time_ms, r.key, json.dumps(r.body)) for r in records]
        self._db.in_transaction(
            lambda conn: conn.executemany(
                "INSERT OR IGNORE INTO records (kind, id, time_ms, key, body) VALUES (?,?,?,?,?)",
                rows,
            )
        )

    async def records(
        self,
        kind: str,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        key: str | None = None,
        limit: int = 1000,
    ) -> list[Record]:
        return await self._db.on_reader(lambda r: r.records(kind, start_ms, end_ms, key, limit))

    # -- reads -----------------------------------------------------------------------------

    async def stored_through(self, domain: str, source_id: str) -> int:
        return await self._db.on_reader(lambda r: r.stored_through(domain, source_id))

    async def sources(self, domain: str) -> list[SourceState]:
        return await self._db.on_reader(lambda r: r.sources(domain))

    async def series(self, domain: str, source_id: str) -> list[str]:
        return await self._db.on_reader(lambda r: r.series(domain, source_id))

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        return await self._db.on_reader(lambda r: r.latest(domain, source_id))

    async def read(
        self, domain: str, source_id: str, series: str, start_ms: int, end_ms: int, tier: Tier
    ) -> SeriesPoints:
        return await self._db.on_reader(
            lambda r: r.read(domain, source_id, series, start_ms, end_ms, tier)
        )
