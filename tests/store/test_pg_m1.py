"""PostgreSQL 1-minute rollups as one row per source and minute, and migration 4, which
converts the narrow rows (one per series and minute) of a database made before it."""

from __future__ import annotations

import asyncpg
import pytest

from sysmonstm.errors import InvalidInputError
from sysmonstm.store import pg_schema
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import parse_partition, partition_name
from sysmonstm.store.pg_conn import PgDb
from tests.conformance.helpers import T0, batch, source, ticks
from tests.store.pg_support import fetch, opened

MIN, HOUR = 60_000, 3_600_000
DISK = 'disk.used_pct{mount="/"}'


async def test_a_series_hour_is_one_row_once_it_is_rolled_up_into_hours(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 90, step_ms=MIN))  # 90 minutes, one sample each
        # a third series in minutes 30 and 31 only
        extra = [
            batch(100 + i, [T0 + (30 + i) * MIN + 500], [[float(i)]], series=("c",))
            for i in range(2)
        ]
        await warm.write(extra)
        await warm.rollup(T0 + 90 * MIN)  # the second hour is still open
        rows = await fetch(
            pg_dsn,
            "SELECT se.key, m.t, m.count FROM m1 m JOIN series se ON se.id = m.series_id"
            " ORDER BY 1, 2",
        )
        assert [(r[0], r[1]) for r in rows] == [("c", T0), ("cpu.used", T0), (DISK, T0)]
        assert rows[0][2] == [0] * 30 + [1, 1] + [0] * 28
        assert rows[1][2] == [1] * 60
        opened_minutes = await fetch(pg_dsn, "SELECT DISTINCT t FROM m1_open ORDER BY t")
        assert [r[0] for r in opened_minutes] == [T0 + i * MIN for i in range(60, 89)]
        # reads take both, and the minute not rolled up yet from raw frames
        cpu = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 2 * HOUR, Tier.M1)
        assert cpu.times_ms.tolist() == [T0 + i * MIN for i in range(90)]
        assert cpu.max.tolist() == [float(i) for i in range(90)]
        c = await warm.read("metrics", "m1", "c", T0, T0 + HOUR, Tier.M1)
        assert (c.times_ms.tolist(), c.avg.tolist()) == ([T0 + 30 * MIN, T0 + 31 * MIN], [0.0, 1.0])
        # silent long enough, the source's last hour is rolled up and becomes rows too
        await warm.rollup(T0 + 2 * HOUR)
        assert await fetch(pg_dsn, "SELECT * FROM m1_open") == []
        rows = await fetch(pg_dsn, "SELECT t, count FROM m1 ORDER BY series_id, t")
        assert [r[1] for r in rows if r[0] == T0 + HOUR] == [[1] * 30 + [0] * 30] * 2
        # a sample at minute 100 after that: only its minute is added to the row
        await warm.write([batch(200, [T0 + 100 * MIN], [[-5.0, 0.0]])])
        await warm.rollup(T0 + 3 * HOUR)
        assert await fetch(pg_dsn, "SELECT * FROM m1_open") == []
        cpu = await warm.read("metrics", "m1", "cpu.used", T0 + HOUR, T0 + 2 * HOUR, Tier.M1)
        assert cpu.times_ms.tolist() == [T0 + i * MIN for i in (*range(60, 90), 100)]
        assert cpu.min.tolist()[-1] == -5.0
        h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 2 * HOUR, Tier.H1)
        assert (h1.count.tolist(), h1.min.tolist()) == ([60, 31], [0.0, -5.0])
        # an export of the month holds every minute, wherever it is
        month = (await warm.export_partition(partition_name(Tier.M1, T0))).to_pylist()
        assert len([r for r in month if r["series"] == "cpu.used"]) == 91


async def test_importing_two_rollup_rows_of_one_series_and_minute_is_refused(
    pg_dsn: str,
) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 180))
        await warm.rollup(T0 + 3_600_000)
        name = partition_name(Tier.M1, T0)
        table = await warm.export_partition(name)
        doubled = table.slice(0, 1).to_pylist() + table.to_pylist()
        with pytest.raises(InvalidInputError, match="two rollup rows"):
            await warm.import_partition(name, table.from_pylist(doubled, table.schema))
        assert (await warm.export_partition(name)).equals(table)


_NARROW_ROWS = [  # (source key, series key, minute, min, max, sum, count, last)
    ("a", "x", 0, 1.0, 3.0, 120.0, 60, 2.0),
    ("a", "y", 0, 10.0, 30.0, 1200.0, 60, 20.0),
    ("a", "x", 1, 4.0, 6.0, 300.0, 60, 5.0),  # y sent nothing in minute 1
    ("a", "y", 2, 7.5, 7.5, 15.0, 2, 7.5),
    ("b", "z", 0, -1.0, 1.0, 0.0, 30, 0.25),
]


async def _version_3_with_narrow_minutes(dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database migrated to version 3 whose narrow ``m1`` holds ``_NARROW_ROWS``; the
    name of its partition."""
    with monkeypatch.context() as patched:
        patched.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:3])
        db = PgDb(dsn)
        await db.open()
        try:
            async with db.tx("migrate") as conn:
                assert [m.version for m in await pg_schema.migrate(conn)] == [1, 2, 3]
        finally:
            await db.close()
    name = partition_name(Tier.M1, T0)
    parsed = parse_partition(name)
    assert parsed is not None
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"CREATE TABLE {name} PARTITION OF m1 FOR VALUES FROM ({parsed[1]}) TO ({parsed[2]})"
        )
        ids = {}
        # a's hour is rolled up into h1, b's is open
        for key, through in (("a", T0 + HOUR), ("b", T0)):
            ids[key] = await conn.fetchval(
                "INSERT INTO sources (domain, key, name, labels, first_ms, last_ms, stored_seq,"
                " m1_through, h1_through, interval_ms)"
                " VALUES ('metrics', $1, $1, '{}', $2, $3, 0, $4, $5, 1000) RETURNING id",
                key,
                T0,
                T0 + 3 * MIN - 1000,
                max(through, T0 + 3 * MIN),
                through,
            )
        series = {}
        for src, key in {(r[0], r[1]) for r in _NARROW_ROWS}:
            series[key] = await conn.fetchval(
                "INSERT INTO series (source_id, key) VALUES ($1, $2) RETURNING id", ids[src], key
            )
        await conn.executemany(
            "INSERT INTO m1 (series_id, t, min, max, sum, count, last)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [(series[r[1]], T0 + r[2] * MIN, *r[3:]) for r in _NARROW_ROWS],
        )
    finally:
        await conn.close()
    return name


async def test_migration_4_moves_every_narrow_minute_into_hour_rows_or_open_minutes(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await _version_3_with_narrow_minutes(pg_dsn, monkeypatch)
    async with opened(pg_dsn) as warm:  # applies migration 4
        exported = (await warm.export_partition(name)).to_pylist()
        got = {
            (r["source"], r["series"], (r["t"] - T0) // MIN): (
                r["min"],
                r["max"],
                r["sum"],
                r["count"],
                r["last"],
            )
            for r in exported
        }
        assert got == {(r[0], r[1], r[2]): r[3:] for r in _NARROW_ROWS}
        y = await warm.read("metrics", "a", "y", T0, T0 + 3 * MIN, Tier.M1)
        assert (y.times_ms.tolist(), y.avg.tolist()) == ([T0, T0 + 2 * MIN], [20.0, 7.5])
        placed = await fetch(
            pg_dsn,
            "SELECT se.key, 'm1' FROM m1 JOIN series se ON se.id = m1.series_id"
            " UNION ALL SELECT se.key, 'open' FROM m1_open o JOIN series se ON se.id = o.series_id"
            " ORDER BY 1",
        )
        assert [tuple(r) for r in placed] == [("x", "m1"), ("y", "m1"), ("z", "open")]
        # b's hour rolls up from its converted open minute
        await warm.write([batch(1, [T0 + HOUR], [[0.0]], series=("z",), src=source("b"))])
        await warm.rollup(T0 + HOUR + 2 * MIN)
        hour = await warm.read("metrics", "b", "z", T0, T0 + HOUR, Tier.H1)
        assert (hour.count.tolist(), hour.max.tolist()) == ([30], [1.0])
    versions = await fetch(pg_dsn, "SELECT version FROM schema_migrations ORDER BY 1")
    assert [r[0] for r in versions] == [m.version for m in pg_schema.MIGRATIONS]
    left = await fetch(pg_dsn, "SELECT relname FROM pg_class WHERE relname LIKE '%narrow%'")
    assert left == []
    rows = await fetch(pg_dsn, "SELECT count(*) FROM m1")
    assert rows[0][0] == 3  # x, y and z: one hour each


async def test_a_failing_conversion_leaves_the_database_at_version_3(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await _version_3_with_narrow_minutes(pg_dsn, monkeypatch)

    async def broken(conn: object) -> None:
        raise RuntimeError("disk full")

    failing = pg_schema.Migration(
        4, pg_schema.MIGRATIONS[3].name, pg_schema.MIGRATIONS[3].statements, broken
    )
    monkeypatch.setattr(pg_schema, "MIGRATIONS", (*pg_schema.MIGRATIONS[:3], failing))
    db = PgDb(pg_dsn)
    await db.open()
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            async with db.tx("migrate") as conn:
                await pg_schema.migrate(conn)
    finally:
        await db.close()
    versions = await fetch(pg_dsn, "SELECT max(version) FROM schema_migrations")
    assert versions[0][0] == 3
    rows = await fetch(pg_dsn, f"SELECT count(*) FROM {name}")
    assert rows[0][0] == len(_NARROW_ROWS)
    cols = await fetch(
        pg_dsn, "SELECT attname FROM pg_attribute WHERE attrelid = 'm1'::regclass AND attnum > 0"
    )
    assert "series_id" in {r[0] for r in cols}
