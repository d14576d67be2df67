"""Writing a partition in the archive's long format back into the SQLite warm tier.

The inverse of ``sqlite_export``: long rows ``(domain, source, series, t, ...)`` become raw
frames (one row per source and instant, the values as a float64 blob in the order of a
stored layout) or narrow rollup rows; what that means on every backend (checks, frames, a new
source's progress) is ``partition_import``'s. Vectorised with numpy; the only Python loop is
one iteration per frame (86,400 a day for a source sampled every second).
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pyarrow as pa

from sysmonstm.store import sqlite_db as db
from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partition_import import check, frames, imported_series, imported_sources
from sysmonstm.store.progress import closed


def _source_ids(conn: sqlite3.Connection, table: pa.Table, t: Int64Array) -> Int64Array:
    """Per row, the id of its (domain, source), creating missing sources."""
    found = imported_sources(table, t)
    ids = np.empty(len(found.pairs), dtype=np.int64)
    for i, (domain, key) in enumerate(found.pairs):
        first, last = int(found.first_ms[i]), int(found.last_ms[i])
        row = conn.execute(
            "SELECT id FROM sources WHERE domain=? AND key=?", (domain, key)
        ).fetchone()
        if row is None:
            m1_through, h1_through = closed(last)
            cur = conn.execute(
                "INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, interval_ms,"
                " stored_seq, m1_through, h1_through) VALUES (?,?,?,?,?,?,?,0,?,?)",
                (domain, key, key, json.dumps({}), first, last, 1000, m1_through, h1_through),
            )
            assert cur.lastrowid is not None
            ids[i] = cur.lastrowid
        else:
            ids[i] = int(row[0])
            conn.execute(
                "UPDATE sources SET first_ms = min(first_ms, ?) WHERE id=?", (first, int(ids[i]))
            )
    return found.per_row(ids)


def _series_ids(conn: sqlite3.Connection, table: pa.Table, sources: Int64Array) -> Int64Array:
    """Per row, the id of its series (of its source), creating missing series."""
    pairs, of_row = imported_series(table, sources)
    ids = np.asarray([db.series_id(conn, s, key) for s, key in pairs], dtype=np.int64)
    found: Int64Array = ids[of_row]
    return found


def _layout_id(conn: sqlite3.Connection, cache: dict[bytes, int], ids: Int64Array) -> int:
    blob = np.ascontiguousarray(ids, dtype="<i8").tobytes()
    found = cache.get(blob)
    if found is None:
        found = cache[blob] = db.layout_id(conn, blob)
    return found


def _insert_raw(
    conn: sqlite3.Connection,
    name: str,
    sources: Int64Array,
    series: Int64Array,
    t: Int64Array,
    values: np.ndarray,
) -> None:
    f = frames(sources, series, t, values)
    layouts: dict[bytes, int] = {}
    rows = [
        (
            int(f.source[a]),
            int(f.t[a]),
            int(f.seq[a]),
            _layout_id(conn, layouts, f.series[a:b]),
            f.values[a:b].tobytes(),
        )
        for a, b in zip(f.starts.tolist(), f.ends.tolist(), strict=True)
    ]
    conn.executemany(
        f"INSERT INTO {name} (source_id, t, seq, layout_id, vals) VALUES (?,?,?,?,?)", rows
    )


def _insert_rollup(
    conn: sqlite3.Connection, name: str, series: Int64Array, table: pa.Table
) -> None:
    cols = [
        table.column(c).to_numpy().tolist() for c in ("t", "min", "max", "sum", "count", "last")
    ]
    conn.executemany(
        f"INSERT OR REPLACE INTO {name} (series_id, t, min, max, sum, count, last)"
        " VALUES (?,?,?,?,?,?,?)",
        zip(series.tolist(), *cols, strict=True),
    )


def import_partition(conn: sqlite3.Connection, name: str, table: pa.Table) -> int:
    """Replace partition ``name`` with the rows of ``table`` in one transaction (see
    ``WarmTier.import_partition``); the caller refreshes its caches of tables and sources."""
    tier, t = check(name, table)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(db.partition_ddl(tier, name))
        if len(t):
            sources = _source_ids(conn, table, t)
            series = _series_ids(conn, table, sources)
            if tier is Tier.RAW:
                values = table.column("value").to_numpy()
                _insert_raw(conn, name, sources, series, t, values)
            else:
                _insert_rollup(conn, name, series, table)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(t)
