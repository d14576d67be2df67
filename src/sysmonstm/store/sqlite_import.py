"""Writing a partition in the archive's long format back into the SQLite warm tier.

The inverse of ``sqlite_export``: long rows ``(domain, source, series, t, ...)`` become raw
frames (one row per source and instant, the values as a float64 blob in the order of a
stored layout, series sorted by id) or narrow rollup rows. Vectorised with numpy; the only
Python loop is one iteration per frame (86,400 a day for a source sampled every second).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import numpy as np
import pyarrow as pa

from sysmonstm.errors import InvalidInputError
from sysmonstm.store import sqlite_db as db
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partitions import parse_partition


def _codes(column: pa.ChunkedArray[Any]) -> tuple[list[str], Int64Array]:
    """Distinct values (in order of appearance) and each row's index into them."""
    encoded = column.combine_chunks().dictionary_encode()
    values = [str(v) for v in encoded.dictionary.to_pylist()]
    return values, np.asarray(encoded.indices.to_numpy(), dtype=np.int64)


def _source_ids(conn: sqlite3.Connection, table: pa.Table, t: Int64Array) -> Int64Array:
    """Per row, the id of its (domain, source), creating missing sources."""
    domains, d_index = _codes(table.column("domain"))
    keys, k_index = _codes(table.column("source"))
    unique, inverse = np.unique(d_index * len(keys) + k_index, return_inverse=True)
    inverse = inverse.reshape(-1)
    ids = np.empty(len(unique), dtype=np.int64)
    for i, code in enumerate(unique.tolist()):
        domain, key = domains[code // len(keys)], keys[code % len(keys)]
        mine = t[inverse == i]
        first, last = int(mine.min()), int(mine.max())
        row = conn.execute(
            "SELECT id FROM sources WHERE domain=? AND key=?", (domain, key)
        ).fetchone()
        if row is None:
            m1 = last - last % 60_000
            cur = conn.execute(
                "INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, interval_ms,"
                " stored_seq, m1_through, h1_through) VALUES (?,?,?,?,?,?,?,0,?,?)",
                (domain, key, key, json.dumps({}), first, last, 1000, m1, m1 - m1 % 3_600_000),
            )
            assert cur.lastrowid is not None
            ids[i] = cur.lastrowid
        else:
            ids[i] = int(row[0])
            conn.execute(
                "UPDATE sources SET first_ms = min(first_ms, ?) WHERE id=?", (first, int(ids[i]))
            )
    found: Int64Array = ids[inverse]
    return found


def _series_ids(conn: sqlite3.Connection, table: pa.Table, sources: Int64Array) -> Int64Array:
    """Per row, the id of its series (of its source), creating missing series."""
    keys, key_index = _codes(table.column("series"))
    pair = sources * len(keys) + key_index
    unique, inverse = np.unique(pair, return_inverse=True)
    ids = np.empty(len(unique), dtype=np.int64)
    for i, code in enumerate(unique.tolist()):
        source_id, key = code // len(keys), keys[code % len(keys)]
        row = conn.execute(
            "SELECT id FROM series WHERE source_id=? AND key=?", (source_id, key)
        ).fetchone()
        if row is None:
            cur = conn.execute("INSERT INTO series (source_id, key) VALUES (?,?)", (source_id, key))
            assert cur.lastrowid is not None
            ids[i] = cur.lastrowid
        else:
            ids[i] = int(row[0])
    found: Int64Array = ids[inverse.reshape(-1)]
    return found


def _layout_id(conn: sqlite3.Connection, cache: dict[bytes, int], ids: Int64Array) -> int:
    blob = np.ascontiguousarray(ids, dtype="<i8").tobytes()
    found = cache.get(blob)
    if found is None:
        row = conn.execute("SELECT id FROM layouts WHERE ids=?", (blob,)).fetchone()
        if row is None:
            cur = conn.execute("INSERT INTO layouts (ids) VALUES (?)", (blob,))
            assert cur.lastrowid is not None
            found = cur.lastrowid
        else:
            found = int(row[0])
        cache[blob] = found
    return found


def _insert_raw(
    conn: sqlite3.Connection,
    name: str,
    sources: Int64Array,
    series: Int64Array,
    t: Int64Array,
    values: np.ndarray,
) -> None:
    n = len(t)
    # a repeated (source, series, t) (two frames at one instant) goes to frames seq 0, 1, ...
    key_order = np.lexsort((t, series, sources))
    ks, kser, kt = sources[key_order], series[key_order], t[key_order]
    new_run = np.r_[True, (ks[1:] != ks[:-1]) | (kser[1:] != kser[:-1]) | (kt[1:] != kt[:-1])]
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[key_order] = np.arange(n) - run_start
    order = np.lexsort((series, rank, t, sources))
    s, r, tt, ser = sources[order], rank[order], t[order], series[order]
    v = np.ascontiguousarray(values[order], dtype="<f8")
    cut = np.flatnonzero((s[1:] != s[:-1]) | (tt[1:] != tt[:-1]) | (r[1:] != r[:-1])) + 1
    starts = np.r_[0, cut].tolist()
    ends = [*cut.tolist(), n]
    layouts: dict[bytes, int] = {}
    rows = [
        (int(s[a]), int(tt[a]), int(r[a]), _layout_id(conn, layouts, ser[a:b]), v[a:b].tobytes())
        for a, b in zip(starts, ends, strict=True)
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
    parsed = parse_partition(name)
    if parsed is None:
        raise InvalidInputError(f"{name!r} is not a partition name")
    tier, start, end = parsed
    if not table.schema.equals(schema_for(tier)):
        raise InvalidInputError(f"{name}: the table's schema is not the {tier} archive schema")
    t = np.asarray(table.column("t").to_numpy(), dtype=np.int64)
    if len(t) and (int(t.min()) < start or int(t.max()) >= end):
        raise InvalidInputError(f"{name}: rows lie outside the partition's period")
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
