"""Migration 4: 1-minute rollups from one row per series and minute to one row per series
and hour (``pg_m1``).

The statements rename the old ``m1`` to ``m1_narrow`` and create the new ``m1``; ``convert``
then moves every old partition aside (``m1_YYYYMM`` becomes ``m1_YYYYMM_narrow``), creates
the new one under the old name and bounds, copies its rows across a week of one source at a
time (binary COPY both ways, numpy in between), keeps the minutes of hours not yet rolled up
into ``h1`` as rows of ``m1_open``, and drops the old table. Each source's
``m1_through`` stays where it was: the rollup job carries on from there, and
``pg_m1.write_minutes`` keeps the minutes already in a row. All of it runs in the migrating
transaction: a failure leaves the database as it was.
"""

# ruff: noqa: S608  # SQL names only partitions read from the catalog
from __future__ import annotations

import numpy as np

from sysmonstm.store.partitions import parse_partition
from sysmonstm.store.pg_binary import M1_COLUMNS, ROLLUP_ROW, fixed_rows
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.pg_m1 import copy_rows, encode
from sysmonstm.store.rollup import Buckets

STATEMENTS = (
    "ALTER TABLE m1 RENAME TO m1_narrow",
    "ALTER INDEX m1_pkey RENAME TO m1_narrow_pkey",
    # a series' hour: element i of each array is minute i (``pg_m1``); 8-byte columns first
    """CREATE TABLE m1 (
        t bigint NOT NULL,
        series_id integer NOT NULL,
        min float8[] NOT NULL,
        max float8[] NOT NULL,
        sum float8[] NOT NULL,
        last float8[] NOT NULL,
        count integer[] NOT NULL,
        PRIMARY KEY (series_id, t)
    ) PARTITION BY RANGE (t)""",
    # compressed in place where that pays, never moved out of line (partitions copy this)
    *(f"ALTER TABLE m1 ALTER COLUMN {c} SET STORAGE MAIN" for c in M1_COLUMNS[2:]),
    # the minutes of hours not rolled up into h1 yet, one row each until their hour is
    """CREATE TABLE m1_open (
        t bigint NOT NULL,
        min float8 NOT NULL,
        max float8 NOT NULL,
        sum float8 NOT NULL,
        last float8 NOT NULL,
        series_id integer NOT NULL,
        count integer NOT NULL,
        PRIMARY KEY (series_id, t))""",
)
_WEEK_MS = 7 * 86_400_000
_OLD = """
    SELECT c.relname, pg_get_expr(c.relpartbound, c.oid),
           array(SELECT x.indexrelid::regclass::text FROM pg_index x WHERE x.indrelid = c.oid)
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'm1_narrow'::regclass ORDER BY c.relname"""


async def convert(conn: Conn) -> None:
    """Move every minute bucket from ``m1_narrow`` into the new ``m1``; drop the old."""
    parts = [p for p in await conn.fetch(_OLD) if parse_partition(str(p[0])) is not None]
    for name, bound, indexes in parts:
        await conn.execute(f"ALTER TABLE {name} RENAME TO {name}_narrow")
        for index in indexes:
            await conn.execute(f"ALTER INDEX {index} RENAME TO {index}_narrow")
        await conn.execute(
            f"CREATE TABLE {name} (LIKE m1 INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING STORAGE)"
        )
        await conn.execute(f"ALTER TABLE m1 ATTACH PARTITION {name} {bound}")
    # the minutes of hours not rolled up into h1 yet stay narrow, in m1_open
    await conn.execute(
        "INSERT INTO m1_open (t, min, max, sum, last, series_id, count)"
        " SELECT m.t, m.min, m.max, m.sum, m.last, m.series_id, m.count FROM m1_narrow m"
        " JOIN series se ON se.id = m.series_id JOIN sources so ON so.id = se.source_id"
        " WHERE m.t >= so.h1_through"
    )
    sources = [int(r[0]) for r in await conn.fetch("SELECT id FROM sources ORDER BY id")]
    for name, _, _ in parts:
        parsed = parse_partition(str(name))
        assert parsed is not None
        _, start, end = parsed
        for sid in sources:
            for lo in range(start, end, _WEEK_MS):
                b = await _narrow(conn, f"{name}_narrow", sid, lo, min(end, lo + _WEEK_MS))
                await copy_rows(conn, str(name), encode(b))
    await conn.execute("DROP TABLE m1_narrow")


async def _narrow(conn: Conn, table: str, sid: int, lo: int, hi: int) -> Buckets:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(
        f"SELECT series_id, t, min, max, sum, count, last FROM {table}"
        " WHERE series_id IN (SELECT id FROM series WHERE source_id = $1)"
        " AND t >= $2 AND t < $3 AND t < (SELECT h1_through FROM sources WHERE id = $1)",
        sid,
        lo,
        hi,
        output=sink,
        format="binary",
    )
    rows = fixed_rows(b"".join(chunks), ROLLUP_ROW)
    t = rows["t"].astype(np.int64)
    return Buckets(
        series_ids=rows["series_id"].astype(np.int64),
        t=t,
        min=rows["min"].astype(np.float64),
        max=rows["max"].astype(np.float64),
        sum=rows["sum"].astype(np.float64),
        count=rows["count"].astype(np.int64),
        last=rows["last"].astype(np.float64),
        last_t=t,
    )
