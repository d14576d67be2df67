"""The PostgreSQL warm tier's 1-minute rollups: one row per series and hour, and
``m1_open`` for the hours not yet rolled up into the 1-hour tier.

A row of ``m1`` holds the hour's 60 minutes of one series as arrays, element ``i`` being
minute ``i``: ``min``, ``max``, ``sum``, ``last`` (``float8[60]``) and ``count``
(``int4[60]``; 0 for a minute without samples, whose stats are 0 and mean nothing). One row
per (series, minute) cost ~118 bytes with its key entry, ~2 bytes per sample at one sample a
second; a row per series and hour ~45 bytes per minute, ~0.75 bytes per sample
(``bench/archive.py``), and a read of one series over a week touches 168 rows instead of
10,080. The arrays are stored ``MAIN``: compressed where that pays (``count``, idle series),
never moved out of line.

While an hour is open its minutes are narrow rows of ``m1_open`` (one per series and
minute, upserted as each minute is rolled up), so an hour row is written once, when the
rollup job rolls that hour up into ``h1`` (``take_open`` then ``write_minutes``). A minute is
in exactly one of the two tables; a read of one series takes both, its hour rows as
``array_send`` bytes decoded by numpy (``hour_rows``: 480 rows for 20 days, not 28,800).
Late samples for a closed hour rewrite its row, keeping the minutes they do not touch.

Rows of ``m1`` go in and out as binary COPY built and parsed by numpy (``pg_binary``): no
Python object per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import numpy as np

from sysmonstm.store.model import Int64Array
from sysmonstm.store.pg_binary import M1_COLUMNS, M1_FLOATS, M1_SLOTS, arrays, copy_stream, m1_rows
from sysmonstm.store.pg_conn import Conn
from sysmonstm.store.progress import H1, M1
from sysmonstm.store.rollup import Buckets

# what ``decode`` takes, in this order
STORED = (
    "series_id, t, array_send(min), array_send(max), array_send(sum), array_send(last),"
    " array_send(count)"
)
_AT = f"""SELECT {STORED} FROM m1 WHERE (series_id, t) IN
    (SELECT * FROM unnest($1::int4[], $2::int8[]))"""  # noqa: S608 (constant columns)
_DELETE = """DELETE FROM m1 WHERE (series_id, t) IN
    (SELECT * FROM unnest($1::int4[], $2::int8[]))"""


_UPSERT_OPEN = """
    INSERT INTO m1_open (series_id, t, min, max, sum, count, last)
    SELECT * FROM unnest($1::int4[], $2::int8[], $3::float8[], $4::float8[], $5::float8[],
                         $6::int4[], $7::float8[])
    ON CONFLICT (series_id, t) DO UPDATE SET min = EXCLUDED.min, max = EXCLUDED.max,
        sum = EXCLUDED.sum, count = EXCLUDED.count, last = EXCLUDED.last"""
_TAKE_OPEN = """
    DELETE FROM m1_open WHERE series_id IN (SELECT id FROM series WHERE source_id = $1)
        AND t >= $2 AND t < $3
    RETURNING series_id, t, min, max, sum, count, last"""


async def upsert_open(conn: Conn, b: Buckets) -> None:
    """Store buckets ``b`` of open hours in ``m1_open``, replacing those stored."""
    await conn.execute(
        _UPSERT_OPEN,
        b.series_ids.astype(np.int32).tolist(),
        b.t.tolist(),
        b.min.tolist(),
        b.max.tolist(),
        b.sum.tolist(),
        b.count.tolist(),
        b.last.tolist(),
    )


async def take_open(conn: Conn, source_id: int, lo: int, hi: int) -> Buckets:
    """Delete and return the source's ``m1_open`` buckets in ``[lo, hi)``."""
    return Buckets.from_rows(await conn.fetch(_TAKE_OPEN, source_id, lo, hi))


async def open_minutes(conn: Conn, lo: int, hi: int) -> Buckets:
    """Every ``m1_open`` bucket in ``[lo, hi)``."""
    return Buckets.from_rows(
        await conn.fetch(
            "SELECT series_id, t, min, max, sum, count, last FROM m1_open WHERE t >= $1 AND t < $2",
            lo,
            hi,
        )
    )


async def hour_rows(conn: Conn, series_id: int, lo: int, hi: int) -> Buckets:
    """The buckets in ``[lo, hi)`` of one series' hour rows (its open minutes aside)."""
    b = decode(
        await conn.fetch(
            f"SELECT {STORED} FROM m1 WHERE series_id = $1"  # noqa: S608 (constant columns)
            " AND t > $2::int8 - 3600000 AND t < $3",
            series_id,
            lo,
            hi,
        )
    )
    keep = (b.t >= lo) & (b.t < hi)
    return b if keep.all() else b.select(keep)


def decode(rows: Sequence[asyncpg.Record]) -> Buckets:
    """Stored rows (columns ``STORED``) as buckets per (series, minute), sorted so."""
    if not rows:
        return Buckets.empty()
    sid = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
    hour = np.asarray([int(r[1]) for r in rows], dtype=np.int64)
    stats = {
        name: arrays([r[i] for r in rows], M1_SLOTS, ">f8")
        for i, name in enumerate(M1_FLOATS, start=2)
    }
    count = arrays([r[6] for r in rows], M1_SLOTS, ">i4").astype(np.int64)
    held = count > 0
    t = hour[:, None] + np.arange(M1_SLOTS, dtype=np.int64) * M1
    series = np.broadcast_to(sid[:, None], held.shape)
    order = np.lexsort((t[held], series[held]))
    return Buckets(
        series_ids=series[held][order],
        t=t[held][order],
        min=stats["min"][held][order],
        max=stats["max"][held][order],
        sum=stats["sum"][held][order],
        count=count[held][order],
        last=stats["last"][held][order],
        last_t=t[held][order],
    )


def _rows(b: Buckets) -> tuple[Int64Array, Int64Array, bytes]:
    """The (series, hour) rows holding ``b``: their series ids and hours, and the binary
    COPY rows (``M1_COLUMNS``, no header)."""
    hour = b.t - b.t % H1
    keys = np.stack([b.series_ids, hour], axis=1)
    unique, row = np.unique(keys, axis=0, return_inverse=True)
    row = row.reshape(-1)
    slot = (b.t - hour) // M1
    stats: dict[str, np.ndarray] = {}
    for name in M1_FLOATS:
        matrix = np.zeros((len(unique), M1_SLOTS), dtype=np.float64)
        matrix[row, slot] = getattr(b, name)
        stats[name] = matrix
    count = np.zeros((len(unique), M1_SLOTS), dtype=np.int32)
    count[row, slot] = b.count
    stats["count"] = count
    series, hours = unique[:, 0], unique[:, 1]
    return series, hours, m1_rows(hours, series, stats)


def _overlay(stored: Buckets, new: Buckets) -> Buckets:
    """``new`` plus the buckets of ``stored`` whose (series, minute) ``new`` lacks."""

    def keys(b: Buckets) -> Int64Array:
        k: Int64Array = ((b.t // M1) << 31) | b.series_ids
        return k

    kept = ~np.isin(keys(stored), keys(new))
    if not kept.any():
        return new
    fields = ("series_ids", "t", "min", "max", "sum", "count", "last", "last_t")
    joined = {f: np.concatenate([getattr(new, f), getattr(stored, f)[kept]]) for f in fields}
    order = np.lexsort((joined["t"], joined["series_ids"]))
    return Buckets(**{f: v[order] for f, v in joined.items()})


async def write_minutes(conn: Conn, b: Buckets) -> int:
    """Store 1-minute buckets ``b`` in their (series, hour) rows; return the rows written.

    A recomputed minute replaces the stored one series by series, as an upsert per series
    and minute would: the minutes ``b`` lacks keep their stored buckets (a late sample
    after the minute's raw frames were dropped rewrites only its own series and minute).
    The caller holds the row locks of the series' sources; a missing partition raises
    ``asyncpg.CheckViolationError``."""
    if not len(b):
        return 0
    series, hours, encoded = _rows(b)
    at = (series.astype(np.int32).tolist(), hours.tolist())
    stored = await conn.fetch(_AT, *at)
    if stored:
        b = _overlay(decode(stored), b)
        await conn.execute(_DELETE, *at)
        series, hours, encoded = _rows(b)
    await copy_rows(conn, "m1", encoded)
    return len(series)


def encode(b: Buckets) -> bytes:
    """Binary COPY rows (``M1_COLUMNS``, no header) holding buckets ``b``, which must be
    one per (series, minute)."""
    return _rows(b)[2] if len(b) else b""


async def copy_rows(conn: Conn, table: str, rows: bytes) -> None:
    """Binary COPY of ``encode``'s rows into ``table`` (``m1`` or one of its partitions)."""
    if rows:
        await conn.copy_to_table(
            table, source=copy_stream([rows]), columns=list(M1_COLUMNS), format="binary"
        )
