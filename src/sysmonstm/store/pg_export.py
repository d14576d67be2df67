"""A PostgreSQL warm-tier partition in the archive's long format (``store/archive_schema``).

Raw frames and minute rows (``pg_m1``) arrive as ``array_send`` bytes and hourly rows as a
binary COPY parsed in place by numpy, so an export costs no Python object per sample. Rows
are sorted by (domain, source, series, t) through integer ranks of the names, not by
comparing strings.
"""

# ruff: noqa: S608  # SQL names only partition tables checked against the catalog

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sysmonstm.errors import BackendError
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Int64Array, Tier
from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.pg_binary import ROLLUP_ROW, fixed_rows, float8_arrays
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.pg_m1 import STORED, decode, open_minutes
from sysmonstm.store.pg_partitions import children
from sysmonstm.store.pg_read import LayoutCache
from sysmonstm.store.progress import M1
from sysmonstm.store.rollup import merge


async def export_partition(conn: Conn, layouts: LayoutCache, name: str) -> pa.Table:
    """Every row of partition ``name``, one per (series, time), sorted for compression."""
    parsed = parse_partition(name)
    if parsed is None or name not in await children(conn):
        raise BackendError(f"no partition {name!r}")
    sources = await conn.fetch("SELECT id, domain, key FROM sources")
    series = await conn.fetch("SELECT id, source_id, key FROM series")
    names = _Names(
        {int(r[0]): (str(r[1]), str(r[2])) for r in sources},
        {int(r[0]): (int(r[1]), str(r[2])) for r in series},
    )
    if parsed[0] is Tier.RAW:
        return await _raw(conn, layouts, name, names)
    if parsed[0] is Tier.M1:
        return await _minutes(conn, name, names)
    return await _rollup(conn, name, parsed[0], names)


class _Names:
    """Names of sources and series by id, and their ranks in the archive's sort order."""

    def __init__(
        self, sources: dict[int, tuple[str, str]], series: dict[int, tuple[int, str]]
    ) -> None:
        self.sources = sources
        self.series = series

    def table(
        self, tier: Tier, series_ids: Int64Array, t: Int64Array, values: dict[str, np.ndarray]
    ) -> pa.Table:
        ids = np.unique(series_ids)
        owner = np.asarray([self.series[i][0] for i in ids.tolist()], dtype=np.int64)
        src_ids = np.unique(owner)
        src_names = [self.sources[i] for i in src_ids.tolist()]
        src_rank = _ranks(src_names)
        key_rank = _ranks([self.series[i][1] for i in ids.tolist()])
        # position of each row's series among ``ids``, and of its source among ``src_ids``
        at = np.searchsorted(ids, series_ids)
        row_src = np.searchsorted(src_ids, owner)[at]
        order = np.lexsort((t, key_rank[at], src_rank[row_src]))
        at, row_src = at[order], row_src[order]
        domain = _dict_column([n[0] for n in src_names], row_src)
        source = _dict_column([n[1] for n in src_names], row_src)
        key = _dict_column([self.series[i][1] for i in ids.tolist()], at)
        columns = [domain, source, key, pa.array(t[order], pa.int64())]
        columns += [pa.array(v[order]) for v in values.values()]
        return pa.Table.from_arrays(columns, schema=schema_for(tier))


def _ranks(items: list[tuple[str, str]] | list[str]) -> Int64Array:
    """Rank of each item in sorted order (equal items share no rank: ids are distinct)."""
    order = sorted(range(len(items)), key=items.__getitem__)
    ranks = np.empty(len(items), dtype=np.int64)
    ranks[order] = np.arange(len(items), dtype=np.int64)
    return ranks


def _dict_column(names: list[str], indices: np.ndarray) -> pa.Array[Any]:
    """Strings by index into ``names``, built in pyarrow (no Python string per row)."""
    dictionary = pa.array(names, pa.string())
    column = pa.DictionaryArray.from_arrays(indices.astype(np.int32), dictionary)
    return column.cast(pa.string())


async def _raw(conn: Conn, layouts: LayoutCache, name: str, names: _Names) -> pa.Table:
    rows = await conn.fetch(f"SELECT t, layout_id, array_send(vals) FROM {name}")
    if not rows:
        return schema_for(Tier.RAW).empty_table()
    by_layout: dict[int, tuple[list[int], list[bytes]]] = {}
    for t, layout, blob in rows:
        entry = by_layout.setdefault(int(layout), ([], []))
        entry[0].append(int(t))
        entry[1].append(blob)
    ids = await layouts.ids(conn, set(by_layout))
    sids, times, values = [], [], []
    for layout, (t_list, blobs) in by_layout.items():
        matrix = float8_arrays(blobs, len(ids[layout]))
        sids.append(np.tile(ids[layout], len(t_list)))
        times.append(np.repeat(np.asarray(t_list, dtype=np.int64), len(ids[layout])))
        values.append(matrix.ravel())
    return names.table(
        Tier.RAW, np.concatenate(sids), np.concatenate(times), {"value": np.concatenate(values)}
    )


async def _minutes(conn: Conn, name: str, names: _Names) -> pa.Table:
    parsed = parse_partition(name)
    assert parsed is not None
    b = decode(await conn.fetch(f"SELECT {STORED} FROM {name}"))
    b = merge([b, await open_minutes(conn, parsed[1], parsed[2])], M1)
    if not len(b):
        return schema_for(Tier.M1).empty_table()
    values = {"min": b.min, "max": b.max, "sum": b.sum, "count": b.count, "last": b.last}
    return names.table(Tier.M1, b.series_ids, b.t, values)


async def _rollup(conn: Conn, name: str, tier: Tier, names: _Names) -> pa.Table:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(
        f"SELECT series_id, t, min, max, sum, count, last FROM {name}", output=sink, format="binary"
    )
    rows = fixed_rows(b"".join(chunks), ROLLUP_ROW)
    if not len(rows):
        return schema_for(tier).empty_table()
    values = {
        "min": rows["min"].astype(np.float64),
        "max": rows["max"].astype(np.float64),
        "sum": rows["sum"].astype(np.float64),
        "count": rows["count"].astype(np.int64),
        "last": rows["last"].astype(np.float64),
    }
    return names.table(tier, rows["series_id"].astype(np.int64), rows["t"].astype(np.int64), values)
