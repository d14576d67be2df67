"""A SQLite warm-tier partition in the archive's long format (``store/archive_schema.py``)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pyarrow as pa

from sysmonstm.errors import BackendError
from sysmonstm.store import sqlite_db as db
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.sqlite_read import layout_ids


def _names(conn: sqlite3.Connection) -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    sources = {
        sid: (domain, key)
        for sid, domain, key in conn.execute("SELECT id, domain, key FROM sources")
    }
    series = dict(conn.execute("SELECT id, key FROM series").fetchall())
    return sources, series


def export_partition(conn: sqlite3.Connection, name: str) -> pa.Table:
    """Every row of partition ``name``, one per (series, time), sorted for compression."""
    parsed = parse_partition(name)
    if parsed is None or name not in db.existing_tables(conn):
        raise BackendError(f"no partition {name!r}")
    tier = parsed[0]
    if tier is Tier.RAW:
        return _export_raw(conn, name)
    return _export_rollup(conn, name, tier)


def _export_raw(conn: sqlite3.Connection, name: str) -> pa.Table:
    sources, series = _names(conn)
    cache: dict[int, Int64Array] = {}
    src_col: list[int] = []
    ser_col: list[Int64Array] = []
    t_col: list[Int64Array] = []
    v_col: list[np.ndarray] = []
    for source_id, t, layout, vals in conn.execute(
        f"SELECT source_id, t, layout_id, vals FROM {name}"
    ):
        ids = layout_ids(conn, cache, layout)
        src_col.extend([source_id] * len(ids))
        ser_col.append(ids)
        t_col.append(np.full(len(ids), t, dtype=np.int64))
        v_col.append(np.frombuffer(vals, dtype="<f8"))
    if not t_col:
        return schema_for(Tier.RAW).empty_table()
    sids = np.concatenate(ser_col)
    src = np.asarray(src_col, dtype=np.int64)
    t = np.concatenate(t_col)
    v = np.concatenate(v_col)
    return _sorted_table(Tier.RAW, sources, series, src, sids, t, {"value": v})


def _export_rollup(conn: sqlite3.Connection, name: str, tier: Tier) -> pa.Table:
    sources, series = _names(conn)
    owner = dict(conn.execute("SELECT id, source_id FROM series").fetchall())
    rows = conn.execute(f"SELECT series_id, t, min, max, sum, count, last FROM {name}").fetchall()
    if not rows:
        return schema_for(tier).empty_table()
    cols = list(zip(*rows, strict=True))
    sids = np.asarray(cols[0], dtype=np.int64)
    src = np.asarray([owner[s] for s in cols[0]], dtype=np.int64)
    values = {
        "min": np.asarray(cols[2], dtype=np.float64),
        "max": np.asarray(cols[3], dtype=np.float64),
        "sum": np.asarray(cols[4], dtype=np.float64),
        "count": np.asarray(cols[5], dtype=np.int64),
        "last": np.asarray(cols[6], dtype=np.float64),
    }
    return _sorted_table(
        tier, sources, series, src, sids, np.asarray(cols[1], dtype=np.int64), values
    )


def _sorted_table(
    tier: Tier,
    sources: dict[int, tuple[str, str]],
    series: dict[int, str],
    src: Int64Array,
    sids: Int64Array,
    t: Int64Array,
    values: dict[str, np.ndarray],
) -> pa.Table:
    domain = np.asarray([sources[s][0] for s in src.tolist()], dtype=object)
    source = np.asarray([sources[s][1] for s in src.tolist()], dtype=object)
    key = np.asarray([series[s] for s in sids.tolist()], dtype=object)
    order = np.lexsort((t, key, source, domain))
    columns = {
        "domain": domain[order],
        "source": source[order],
        "series": key[order],
        "t": t[order],
        **{k: v[order] for k, v in values.items()},
    }
    return pa.table(columns, schema=schema_for(tier))
