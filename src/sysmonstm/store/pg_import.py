"""Writing a partition in the archive's long format back into the PostgreSQL warm tier.

The inverse of ``pg_export`` and the same contract as ``sqlite_import`` (what it means on
every backend is ``partition_import``'s): long rows ``(domain, source, series, t, ...)``
become raw frames (one row per source and instant, the values in the order of a stored
layout), minute rows (one per series and hour, ``pg_m1``) or narrow hourly rows, written
by binary COPY into the emptied partition in the caller's transaction.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partition_import import frames, imported_series, imported_sources
from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.pg_binary import RAW_COLUMNS, ROLLUP_ROW, copy_stream, raw_rows
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.pg_ids import LAYOUT_SQL, SERIES_SQL, digest
from sysmonstm.store.pg_m1 import copy_rows, encode
from sysmonstm.store.progress import closed
from sysmonstm.store.rollup import Buckets

_ROLLUP_COLUMNS = ["series_id", "t", "min", "max", "sum", "count", "last"]
_SOURCES = """
    WITH wanted AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                             $6::int8[])
            AS w(domain, key, first_ms, last_ms, m1_through, h1_through)),
    added AS (
        INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, interval_ms,
                             stored_seq, m1_through, h1_through)
        SELECT domain, key, key, '{}'::jsonb, first_ms, last_ms, 1000, 0,
               m1_through, h1_through
        FROM wanted ORDER BY domain, key
        ON CONFLICT (domain, key) DO NOTHING
        RETURNING id, domain, key),
    widened AS (
        UPDATE sources s SET first_ms = least(s.first_ms, w.first_ms)
        FROM wanted w WHERE s.domain = w.domain AND s.key = w.key
        RETURNING s.id, s.domain, s.key)
    SELECT id, domain, key FROM added UNION ALL SELECT id, domain, key FROM widened"""


async def import_partition(
    conn: Conn, name: str, tier: Tier, table: pa.Table, t: Int64Array
) -> int:
    """Replace the rows of existing partition ``name`` with ``table``'s (checked by
    ``partition_import.check``), creating unknown sources and series. Runs in the caller's
    transaction."""
    await conn.execute(f"TRUNCATE {name}")
    if tier is Tier.M1:  # the partition's open minutes are part of it too (``pg_m1``)
        parsed = parse_partition(name)
        assert parsed is not None  # ``partition_import.check`` parsed it
        await conn.execute("DELETE FROM m1_open WHERE t >= $1 AND t < $2", *parsed[1:])
    if not len(t):
        return 0
    sources = await _source_ids(conn, table, t)
    series = await _series_ids(conn, table, sources)
    if tier is Tier.RAW:
        values = np.asarray(table.column("value").to_numpy(), dtype=np.float64)
        await _copy_raw(conn, name, sources, series, t, values)
    elif tier is Tier.M1:
        await _copy_minutes(conn, name, series, t, table)
    else:
        await _copy_rollup(conn, name, series, t, table)
    return len(t)


async def _source_ids(conn: Conn, table: pa.Table, t: Int64Array) -> Int64Array:
    found = imported_sources(table, t)
    pairs = found.pairs
    progress = [closed(last) for last in found.last_ms.tolist()]
    rows = await conn.fetch(
        _SOURCES,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        found.first_ms.tolist(),
        found.last_ms.tolist(),
        [m1 for m1, _ in progress],
        [h1 for _, h1 in progress],
    )
    by_pair = {(str(r["domain"]), str(r["key"])): int(r["id"]) for r in rows}
    if len(by_pair) < len(pairs):  # created by a writer since this statement's snapshot
        rows = await conn.fetch(
            "SELECT id, domain, key FROM sources"
            " WHERE (domain, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [p[0] for p in pairs],
            [p[1] for p in pairs],
        )
        by_pair = {(str(r["domain"]), str(r["key"])): int(r["id"]) for r in rows}
    return found.per_row(np.asarray([by_pair[p] for p in pairs], dtype=np.int64))


async def _series_ids(conn: Conn, table: pa.Table, sources: Int64Array) -> Int64Array:
    pairs, of_row = imported_series(table, sources)
    rows = await conn.fetch(SERIES_SQL, [p[0] for p in pairs], [p[1] for p in pairs])
    by_pair = {(int(r["source_id"]), str(r["key"])): int(r["id"]) for r in rows}
    ids = np.asarray([by_pair[p] for p in pairs], dtype=np.int64)
    found: Int64Array = ids[of_row]
    return found


async def _copy_raw(
    conn: Conn, name: str, sources: Int64Array, series: Int64Array, t: Int64Array, v: np.ndarray
) -> None:
    f = frames(sources, series, t, v)
    s, r, tt, ser, vals = f.source, f.seq, f.t, f.series, f.values
    starts = f.starts
    widths = f.ends - f.starts
    layouts = np.empty(len(starts), dtype=np.int64)
    cache: dict[bytes, int] = {}
    for i, (a, w) in enumerate(zip(starts.tolist(), widths.tolist(), strict=True)):
        ids = ser[a : a + w].tolist()
        key = digest(ids)
        if key not in cache:
            cache[key] = int(await conn.fetchval(LAYOUT_SQL, int(s[a]), key, ids))
        layouts[i] = cache[key]
    parts = []
    for w in np.unique(widths).tolist():
        picked = starts[widths == w]
        matrix = vals[picked[:, None] + np.arange(w)]
        parts.append(raw_rows(tt[picked], r[picked], s[picked], layouts[widths == w], matrix))
    await conn.copy_to_table(
        name, source=copy_stream(parts), columns=list(RAW_COLUMNS), format="binary"
    )


async def _copy_minutes(
    conn: Conn, name: str, series: Int64Array, t: Int64Array, table: pa.Table
) -> None:
    def column(col: str, dtype: type) -> np.ndarray:
        return np.asarray(table.column(col).to_numpy(), dtype=dtype)

    b = Buckets(
        series_ids=series,
        t=t,
        min=column("min", np.float64),
        max=column("max", np.float64),
        sum=column("sum", np.float64),
        count=column("count", np.int64),
        last=column("last", np.float64),
        last_t=t,
    )
    await copy_rows(conn, name, encode(b))


async def _copy_rollup(
    conn: Conn, name: str, series: Int64Array, t: Int64Array, table: pa.Table
) -> None:
    rows = np.empty(len(t), dtype=ROLLUP_ROW)
    rows["nfields"] = len(_ROLLUP_COLUMNS)
    for col, width in (("series", 4), ("t", 8), ("min", 8), ("max", 8), ("sum", 8)):
        rows[f"{col}_len"] = width
    rows["count_len"], rows["last_len"] = 4, 8
    rows["series_id"] = series
    rows["t"] = t
    for col in ("min", "max", "sum", "count", "last"):
        rows[col] = table.column(col).to_numpy()
    await conn.copy_to_table(
        name, source=copy_stream([rows.tobytes()]), columns=_ROLLUP_COLUMNS, format="binary"
    )
