"""Writing a partition in the archive's long format back into the PostgreSQL warm tier.

The inverse of ``pg_export`` and the same contract as ``sqlite_import``: long rows
``(domain, source, series, t, ...)`` become raw frames (one row per source and instant, the
values in the order of a stored layout, series sorted by id; a repeated (source, series, t)
goes to frames ``seq`` 0, 1, ...) or narrow rollup rows, written by binary COPY into the
emptied partition in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.pg_binary import RAW_COLUMNS, ROLLUP_ROW, copy_stream, raw_rows
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.pg_ids import LAYOUT_SQL, SERIES_SQL, digest

_ROLLUP_COLUMNS = ["series_id", "t", "min", "max", "sum", "count", "last"]
_SOURCES = """
    WITH wanted AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[])
            AS w(domain, key, first_ms, last_ms)),
    added AS (
        INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, interval_ms,
                             stored_seq, m1_through, h1_through)
        SELECT domain, key, key, '{}'::jsonb, first_ms, last_ms, 1000, 0,
               last_ms - last_ms % 60000, (last_ms - last_ms % 60000)
                   - (last_ms - last_ms % 60000) % 3600000
        FROM wanted ORDER BY domain, key
        ON CONFLICT (domain, key) DO NOTHING
        RETURNING id, domain, key),
    widened AS (
        UPDATE sources s SET first_ms = least(s.first_ms, w.first_ms)
        FROM wanted w WHERE s.domain = w.domain AND s.key = w.key
        RETURNING s.id, s.domain, s.key)
    SELECT id, domain, key FROM added UNION ALL SELECT id, domain, key FROM widened"""


def check(name: str, table: pa.Table) -> tuple[Tier, Int64Array]:
    """The partition's tier and the rows' times; ``InvalidInputError`` if they do not fit."""
    parsed = parse_partition(name)
    if parsed is None:
        raise InvalidInputError(f"{name!r} is not a partition name")
    tier, start, end = parsed
    if not table.schema.equals(schema_for(tier)):
        raise InvalidInputError(f"{name}: the table's schema is not the {tier} archive schema")
    t = np.asarray(table.column("t").to_numpy(), dtype=np.int64)
    if len(t) and (int(t.min()) < start or int(t.max()) >= end):
        raise InvalidInputError(f"{name}: rows lie outside the partition's period")
    return tier, t


def _codes(column: pa.ChunkedArray[Any]) -> tuple[list[str], Int64Array]:
    """Distinct values (in order of appearance) and each row's index into them."""
    encoded = column.combine_chunks().dictionary_encode()
    values = [str(v) for v in encoded.dictionary.to_pylist()]
    return values, np.asarray(encoded.indices.to_numpy(), dtype=np.int64)


async def import_partition(
    conn: Conn, name: str, tier: Tier, table: pa.Table, t: Int64Array
) -> int:
    """Replace the rows of existing partition ``name`` with ``table``'s (checked by
    ``check``), creating unknown sources and series. Runs in the caller's transaction."""
    await conn.execute(f"TRUNCATE {name}")
    if not len(t):
        return 0
    sources = await _source_ids(conn, table, t)
    series = await _series_ids(conn, table, sources)
    if tier is Tier.RAW:
        values = np.asarray(table.column("value").to_numpy(), dtype=np.float64)
        await _copy_raw(conn, name, sources, series, t, values)
    else:
        await _copy_rollup(conn, name, series, t, table)
    return len(t)


async def _source_ids(conn: Conn, table: pa.Table, t: Int64Array) -> Int64Array:
    domains, d_index = _codes(table.column("domain"))
    keys, k_index = _codes(table.column("source"))
    unique, inverse = np.unique(d_index * len(keys) + k_index, return_inverse=True)
    inverse = inverse.reshape(-1)
    firsts = np.full(len(unique), np.iinfo(np.int64).max, dtype=np.int64)
    lasts = np.full(len(unique), np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(firsts, inverse, t)
    np.maximum.at(lasts, inverse, t)
    pairs = [(domains[c // len(keys)], keys[c % len(keys)]) for c in unique.tolist()]
    rows = await conn.fetch(
        _SOURCES, [p[0] for p in pairs], [p[1] for p in pairs], firsts.tolist(), lasts.tolist()
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
    ids = np.asarray([by_pair[p] for p in pairs], dtype=np.int64)
    found: Int64Array = ids[inverse]
    return found


async def _series_ids(conn: Conn, table: pa.Table, sources: Int64Array) -> Int64Array:
    keys, key_index = _codes(table.column("series"))
    unique, inverse = np.unique(sources * len(keys) + key_index, return_inverse=True)
    pairs = [(c // len(keys), keys[c % len(keys)]) for c in unique.tolist()]
    rows = await conn.fetch(SERIES_SQL, [p[0] for p in pairs], [p[1] for p in pairs])
    by_pair = {(int(r["source_id"]), str(r["key"])): int(r["id"]) for r in rows}
    ids = np.asarray([by_pair[p] for p in pairs], dtype=np.int64)
    found: Int64Array = ids[inverse.reshape(-1)]
    return found


async def _copy_raw(
    conn: Conn, name: str, sources: Int64Array, series: Int64Array, t: Int64Array, v: np.ndarray
) -> None:
    n = len(t)
    key_order = np.lexsort((t, series, sources))
    ks, kser, kt = sources[key_order], series[key_order], t[key_order]
    new_run = np.r_[True, (ks[1:] != ks[:-1]) | (kser[1:] != kser[:-1]) | (kt[1:] != kt[:-1])]
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[key_order] = np.arange(n) - run_start
    order = np.lexsort((series, rank, t, sources))
    s, r, tt, ser, vals = sources[order], rank[order], t[order], series[order], v[order]
    cut = np.flatnonzero((s[1:] != s[:-1]) | (tt[1:] != tt[:-1]) | (r[1:] != r[:-1])) + 1
    starts = np.r_[0, cut]
    widths = np.diff(np.r_[starts, n])
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
        frames = starts[widths == w]
        matrix = vals[frames[:, None] + np.arange(w)]
        parts.append(raw_rows(tt[frames], r[frames], s[frames], layouts[widths == w], matrix))
    await conn.copy_to_table(
        name, source=copy_stream(parts), columns=list(RAW_COLUMNS), format="binary"
    )


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
