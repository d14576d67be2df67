"""PostgreSQL warm tier writes: exactly once across writers, all or nothing under faults."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import partition_name
from sysmonstm.store.pg_conn import PgDb
from sysmonstm.store.warm_pg import PgWarm
from tests import servers
from tests.conformance.helpers import T0, batch, source, ticks
from tests.store.pg_support import opened

DISK = 'disk.used_pct{mount="/"}'


async def _until(dsn: str, sql: str, *args: object) -> object:
    """Poll ``sql`` until it returns a non-null value (a wait, not a timing assertion)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = await conn.fetchval(sql, *args)
            if found is not None:
                return found
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    raise AssertionError(f"nothing came of {sql!r}")


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_two_writers_of_one_source_store_each_sample_once(pg_dsn: str) -> None:
    chunks = [ticks(1 + 10 * k, T0 + 10_000 * k, 10) for k in range(20)]
    async with opened(pg_dsn) as a, opened(pg_dsn) as b:

        async def replay(warm: PgWarm) -> list[int]:
            return [x.sequence for c in chunks for x in await warm.write(c)]

        stored_a, stored_b = await asyncio.gather(replay(a), replay(b))
        assert sorted(stored_a + stored_b) == list(range(1, 201))
        pts = await a.read("metrics", "m1", "cpu.used", T0, T0 + 200_000, Tier.RAW)
        assert pts.times_ms.tolist() == [T0 + i * 1000 for i in range(200)]
        assert await b.stored_through("metrics", "m1") == 200


async def test_writers_of_the_same_sources_in_opposite_orders_never_deadlock(
    pg_dsn: str,
) -> None:
    one, two = source("one"), source("two")
    async with opened(pg_dsn) as a, opened(pg_dsn) as b:

        async def run(warm: PgWarm, first: str) -> None:
            srcs = (one, two) if first == "one" else (two, one)
            for k in range(30):
                await warm.write([ticks(1 + k, T0 + k * 1000, 1, src=s)[0] for s in srcs])

        await asyncio.gather(run(a, "one"), run(b, "two"))
        for sid in ("one", "two"):
            assert await a.stored_through("metrics", sid) == 30
            pts = await a.read("metrics", sid, "cpu.used", T0, T0 + 60_000, Tier.RAW)
            assert len(pts) == 30


async def test_a_connection_lost_mid_write_keeps_nothing_of_it(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 120))
        await warm.rollup()
        late = batch(121, [T0 + 30_500, T0 + 119_500], [[7.0, 8.0], [9.0, 10.0]])
        blocker = await asyncpg.connect(pg_dsn)
        try:
            # the write copies its frames, then waits here to mark the late minute dirty
            tr = blocker.transaction()
            await tr.start()
            await blocker.execute("LOCK TABLE dirty IN ACCESS EXCLUSIVE MODE")
            writing = asyncio.create_task(warm.write([late]))
            pid = await _until(
                pg_dsn,
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%INSERT INTO dirty%'",
            )
            copied = await blocker.fetchval(
                "SELECT n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = 'dirty'"
            )
            assert copied is None or copied == 0
            await blocker.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(BackendError):
                await writing
            await tr.rollback()
        finally:
            await blocker.close()
        assert await warm.stored_through("metrics", "m1") == 120
        assert await _count(pg_dsn, "SELECT count(*) FROM raw") == 120
        assert await _count(pg_dsn, "SELECT count(*) FROM dirty") == 0
        assert [b.sequence for b in await warm.write([late])] == [121]
        assert await _count(pg_dsn, "SELECT count(*) FROM raw") == 122


def restart_fast(pg: servers.PostgresServer, *, start: bool = True) -> None:
    """Stop (SIGINT: a fast shutdown that ends the sessions) and start again."""
    assert pg.server is not None
    pg.server.signal(signal.SIGINT)
    pg.stop()
    if start:
        pg.start()


@pytest.fixture
def own_postgres(scratch: Path) -> Iterator[servers.PostgresServer]:
    """A throwaway PostgreSQL that this test may stop and start (never the machine's)."""
    pg = servers.postgres_server(scratch / "pg").start()
    yield pg
    pg.stop()


async def _ready(dsn: str) -> None:
    """Wait until a restarted server accepts connections (it listens before it is ready)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = await asyncpg.connect(dsn)
        except (asyncpg.CannotConnectNowError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            await conn.close()
            return


async def test_the_tier_reconnects_by_itself_after_postgresql_restarts(
    own_postgres: servers.PostgresServer,
) -> None:
    await _ready(own_postgres.dsn)
    async with opened(own_postgres.dsn) as warm:
        assert len(await warm.write(ticks(1, T0, 3))) == 3
        await asyncio.to_thread(restart_fast, own_postgres, start=False)
        with pytest.raises(BackendError):
            await warm.write(ticks(4, T0 + 3000, 1))
        await asyncio.to_thread(own_postgres.start)
        await _ready(own_postgres.dsn)
        assert [b.sequence for b in await warm.write(ticks(4, T0 + 3000, 3))] == [4, 5, 6]
        pts = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 10_000, Tier.RAW)
        assert pts.avg.tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]


async def test_a_restart_between_calls_costs_no_error(
    own_postgres: servers.PostgresServer,
) -> None:
    await _ready(own_postgres.dsn)
    async with opened(own_postgres.dsn) as warm:
        await warm.write(ticks(1, T0, 2))
        await asyncio.to_thread(restart_fast, own_postgres)
        await _ready(own_postgres.dsn)
        assert await warm.stored_through("metrics", "m1") == 2
        assert len(await warm.write(ticks(3, T0 + 2000, 2))) == 2


async def test_the_tier_reconnects_after_postgresql_crashes(
    own_postgres: servers.PostgresServer,
) -> None:
    await _ready(own_postgres.dsn)
    async with opened(own_postgres.dsn) as warm:
        await warm.write(ticks(1, T0, 2))
        # the throwaway server runs without fsync: make what is committed survive the crash
        checkpoint = await asyncpg.connect(own_postgres.dsn)
        try:
            await checkpoint.execute("CHECKPOINT")
        finally:
            await checkpoint.close()
        assert own_postgres.server is not None
        await asyncio.to_thread(own_postgres.server.kill)
        await asyncio.to_thread(own_postgres.start)
        await _ready(own_postgres.dsn)
        assert [b.sequence for b in await warm.write(ticks(1, T0, 4))] == [3, 4]
        assert await warm.stored_through("metrics", "m1") == 4


async def test_errors_and_the_url_never_show_the_password() -> None:
    hidden = "s3cret-pw"
    warm = PgWarm(f"postgresql://sysmon:{hidden}@127.0.0.1:1/warm?sslmode=disable")
    assert hidden not in warm.url
    with pytest.raises(BackendError) as caught:
        await warm.open()
    assert hidden not in str(caught.value)
    assert "sysmon:***@127.0.0.1:1/warm" in str(caught.value)


def test_an_error_message_holding_the_password_is_scrubbed_and_not_chained() -> None:
    db = PgDb("postgresql://u:hunter2@db.example/x")
    with pytest.raises(BackendError) as caught, db.converted("connect"):
        raise OSError("could not use password hunter2")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_export_then_import_gives_back_the_same_partitions(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 150))
        await warm.write([batch(151, [T0 + 150_000], [[5.0, 6.0, 7.0]], series=("a", "b", "c"))])
        await warm.write(ticks(1, T0, 90, src=source("b")))
        await warm.rollup()
        parts = {p.name: p for p in await warm.partitions()}
        exported = {name: await warm.export_partition(name) for name in parts}
        for name, table in exported.items():
            await warm.drop_partition(name)
            assert await warm.import_partition(name, table) == table.num_rows
            assert (await warm.export_partition(name)).equals(table)
        raw = exported[next(n for n in parts if n.startswith("raw_"))]
        assert raw.num_rows == 150 * 2 + 3 + 90 * 2
        pts = await warm.read("metrics", "m1", "b", T0, T0 + 200_000, Tier.RAW)
        assert pts.avg.tolist() == [6.0]


async def test_a_database_emptied_under_a_running_tier_is_written_right(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 3))
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("TRUNCATE raw, sources, series, layouts CASCADE")
            await conn.execute("ALTER TABLE series ALTER COLUMN id RESTART WITH 1000")
        finally:
            await conn.close()
        assert [b.sequence for b in await warm.write(ticks(1, T0, 2))] == [1, 2]
        pts = await warm.read("metrics", "m1", DISK, T0, T0 + 10_000, Tier.RAW)
        assert pts.avg.tolist() == [100.0, 101.0]


async def test_importing_a_table_that_does_not_fit_is_refused(pg_dsn: str) -> None:
    async with opened(pg_dsn) as warm:
        await warm.write(ticks(1, T0, 2))
        name = next(p.name for p in await warm.partitions() if p.tier is Tier.RAW)
        table = await warm.export_partition(name)
        with pytest.raises(InvalidInputError, match="not a partition"):
            await warm.import_partition("sources", table)
        with pytest.raises(InvalidInputError, match="schema"):
            await warm.import_partition(name, table.drop_columns(["value"]))
        with pytest.raises(InvalidInputError, match="outside"):
            await warm.import_partition(partition_name(Tier.RAW, T0 + 86_400_000), table)
        assert (await warm.export_partition(name)).equals(table)


async def test_wide_frames_round_trip_exactly(pg_dsn: str) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0, 1e9, (50, 300))
    keys = tuple(f"s{i:03d}" for i in range(300))
    times = [T0 + i * 1000 for i in range(50)]
    async with opened(pg_dsn) as warm:
        await warm.write([batch(1, times, values.tolist(), series=keys)])
        got = await warm.read("metrics", "m1", "s123", T0, T0 + 60_000, Tier.RAW)
        assert np.array_equal(got.avg, values[:, 123])
        await warm.rollup()
        m1 = await warm.read("metrics", "m1", "s299", T0, T0 + 60_000, Tier.M1)
        assert m1.max.tolist() == [values[:, 299].max()]
