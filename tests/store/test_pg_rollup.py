"""PostgreSQL warm tier rollups: backlogs, concurrent passes, and the `last` of each bucket."""

from __future__ import annotations

import asyncio

import asyncpg

from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import partition_name
from tests.conformance.helpers import T0, batch, ticks
from tests.store.pg_support import opened

MIN, HOUR = 60_000, 3_600_000


async def _progress(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT m1_through, h1_through FROM sources")
    finally:
        await conn.close()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_one_pass_rolls_up_a_backlog_longer_than_a_chunk(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 13 * 60, step_ms=MIN))
        written = await warm.rollup()
        assert await _progress(pg_dsn) == (T0 + (13 * 60 - 1) * MIN, T0 + 12 * HOUR)
        assert written == 2 * (13 * 60 - 1) + 2 * 12
        h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 13 * HOUR, Tier.H1)
        assert h1.count.tolist() == [60] * 13
        assert await warm.rollup() == 0


async def test_concurrent_passes_from_two_aggregators_agree(pg_dsn: str) -> None:
    async with opened(pg_dsn) as a, opened(pg_dsn) as b:
        await a.write(ticks(1, T0, 2 * 3600 + 120))
        await asyncio.gather(a.rollup(), b.rollup())
        m1 = await b.read("metrics", "m1", "cpu.used", T0, T0 + 2 * HOUR, Tier.M1)
        assert m1.count.tolist() == [60] * 120
        h1 = await b.read("metrics", "m1", "cpu.used", T0, T0 + 2 * HOUR, Tier.H1)
        assert h1.count.tolist() == [3600, 3600]
        assert h1.max.tolist() == [3599.0, 7199.0]


async def test_each_bucket_keeps_the_value_of_its_latest_sample(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 3600 + 60))
        # a late sample, earlier than the minute's last one, must not become its `last`
        await warm.rollup()
        await warm.write([batch(3661, [T0 + 30_500], [[-1.0, 0.0]])])
        await warm.rollup()
        m1 = (await warm.export_partition(partition_name(Tier.M1, T0))).to_pylist()
        cpu = [r for r in m1 if r["series"] == "cpu.used"]
        assert [r["last"] for r in cpu[:3]] == [59.0, 119.0, 179.0]
        assert (cpu[0]["count"], cpu[0]["min"]) == (61, -1.0)
        h1 = (await warm.export_partition(partition_name(Tier.H1, T0))).to_pylist()
        first_hour = next(r for r in h1 if r["series"] == "cpu.used" and r["t"] == T0)
        assert (first_hour["last"], first_hour["count"]) == (3599.0, 3601)
