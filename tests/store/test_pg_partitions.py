"""PostgreSQL warm tier: daily partitions made ahead and on demand, indexes, retention."""

from __future__ import annotations

import asyncpg
import pytest

from sysmonstm.errors import BackendError
from sysmonstm.store.model import Retention, Tier
from sysmonstm.store.partitions import partition_name
from sysmonstm.store.warm_pg import wall_clock_ms
from tests.conformance.helpers import T0, batch, ticks
from tests.store.pg_support import opened

DAY = 86_400_000


async def _values(dsn: str, sql: str, *args: object) -> list[object]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r[0] for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def attached(dsn: str, parent: str) -> set[str]:
    rows = await _values(
        dsn,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass($1)",
        parent,
    )
    return {str(r) for r in rows}


async def test_open_creates_today_and_the_next_two_days_ahead(pg_dsn: str) -> None:
    now = T0 + 12 * 3_600_000
    async with opened(pg_dsn, clock=lambda: now):
        raw = await attached(pg_dsn, "raw")
        assert {partition_name(Tier.RAW, now + d * DAY) for d in range(3)} <= raw
        assert partition_name(Tier.M1, now) in await attached(pg_dsn, "m1")
        assert partition_name(Tier.H1, now) in await attached(pg_dsn, "h1")


async def test_each_maintenance_pass_creates_the_days_ahead_of_its_clock(pg_dsn: str) -> None:
    clock = [T0]
    async with opened(pg_dsn, clock=lambda: clock[0]) as warm:
        clock[0] = T0 + 40 * DAY
        await warm.rollup()
        raw = await attached(pg_dsn, "raw")
        assert {partition_name(Tier.RAW, clock[0] + d * DAY) for d in range(3)} <= raw
        assert partition_name(Tier.M1, clock[0]) in await attached(pg_dsn, "m1")


async def test_late_data_gets_its_day_partition_on_demand(pg_dsn: str) -> None:
    old = T0 - 30 * DAY
    async with opened(pg_dsn, clock=lambda: T0) as warm:
        assert partition_name(Tier.RAW, old) not in await attached(pg_dsn, "raw")
        assert len(await warm.write(ticks(1, old, 3))) == 3
        assert partition_name(Tier.RAW, old) in await attached(pg_dsn, "raw")
        pts = await warm.read("metrics", "m1", "cpu.used", old, old + 3000, Tier.RAW)
        assert pts.avg.tolist() == [0.0, 1.0, 2.0]


async def test_raw_partitions_carry_a_brin_index_on_time_and_a_per_source_key(
    pg_dsn: str,
) -> None:
    async with opened(pg_dsn, clock=lambda: T0) as warm:
        await warm.write(ticks(1, T0, 2))
        name = partition_name(Tier.RAW, T0)
        indexes = await _values(
            pg_dsn, "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexdef", name
        )
    defs = " | ".join(str(d) for d in indexes)
    assert "USING brin (t)" in defs
    assert "UNIQUE INDEX" in defs
    assert "USING btree (source_id, t, seq)" in defs


async def test_retention_drops_whole_partitions_and_keeps_the_rest(pg_dsn: str) -> None:
    retention = Retention(raw_ms=2 * DAY, m1_ms=400 * DAY, h1_ms=800 * DAY)
    async with opened(pg_dsn, clock=lambda: T0, retention=retention) as warm:
        await warm.write(ticks(1, T0 - 5 * DAY, 10))
        await warm.write(ticks(11, T0, 10))
        dropped = await warm.enforce_retention(T0 + 60_000)
        assert dropped[Tier.RAW] == 1
        assert (dropped[Tier.M1], dropped[Tier.H1]) == (0, 0)
        old = partition_name(Tier.RAW, T0 - 5 * DAY)
        assert await _values(pg_dsn, "SELECT to_regclass($1)", old) == [None]
        count = await _values(pg_dsn, f"SELECT count(*) FROM {partition_name(Tier.RAW, T0)}")
        assert count == [10]


async def test_partitions_lists_only_partitions_holding_data(pg_dsn: str) -> None:
    async with opened(pg_dsn, clock=lambda: T0) as warm:
        assert await warm.partitions() == []
        await warm.write(ticks(1, T0 - 3 * DAY, 2))
        listed = [p.name for p in await warm.partitions()]
        assert listed == [partition_name(Tier.RAW, T0 - 3 * DAY)]
        assert partition_name(Tier.RAW, T0 + DAY) in await attached(pg_dsn, "raw")


async def test_a_partition_dropped_by_another_process_is_made_again_on_write(
    pg_dsn: str,
) -> None:
    async with opened(pg_dsn, clock=lambda: T0) as a, opened(pg_dsn, clock=lambda: T0) as b:
        await a.write(ticks(1, T0, 2))
        await b.drop_partition(partition_name(Tier.RAW, T0))
        assert [x.sequence for x in await a.write(ticks(3, T0 + 2000, 2))] == [3, 4]
        pts = await a.read("metrics", "m1", "cpu.used", T0, T0 + 10_000, Tier.RAW)
        assert pts.times_ms.tolist() == [T0 + 2000, T0 + 3000]


async def test_dropping_something_that_is_no_partition_is_refused(pg_dsn: str) -> None:
    async with opened(pg_dsn, clock=wall_clock_ms) as warm:
        with pytest.raises(BackendError, match="not a partition"):
            await warm.drop_partition("sources")
        with pytest.raises(BackendError, match="no partition"):
            await warm.export_partition("raw_19990101")


async def test_a_batch_across_midnight_lands_in_both_day_tables(pg_dsn: str) -> None:
    midnight = T0 - T0 % DAY + DAY
    async with opened(pg_dsn, clock=lambda: T0) as warm:
        await warm.write([batch(1, [midnight - 1000, midnight], [[1.0, 2.0], [3.0, 4.0]])])
        for day, expected in ((midnight - DAY, 1), (midnight, 1)):
            table = partition_name(Tier.RAW, day)
            assert await _values(pg_dsn, f"SELECT count(*) FROM {table}") == [expected]
