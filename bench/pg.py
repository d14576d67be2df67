"""PostgreSQL warm-tier measurements: the COPY ceilings, and ``PgWarm.write`` against them.

``wide`` is the warm tier's raw layout, created by the warm tier's own migrations and
partition code: one row per (source, instant), its 100 values in a ``float8[]``, primary key
(source_id, t, seq) and a BRIN index on t, sent as one binary COPY per transaction of 50,000
samples (100 sources interleaved as the aggregator writes them) with the rows built by
``pg_binary.raw_rows``. Only the COPY and COMMIT are timed.

``narrow`` is the textbook layout for comparison, as ``measured.md`` measured it: one row per
sample ``(ts, host, metric, value)`` with a btree on (host, metric, ts), 50,000 rows per
transaction through asyncpg's ``copy_records_to_table`` (rows built beforehand).

``warm`` is ``PgWarm.write`` (what the aggregator calls) on the same data: 500 one-frame
batches (100 sources x 5 instants) per call, as an aggregator flush of 50,000 samples; the
batches are built beforehand and only ``write`` is timed. Then one ``rollup()`` is timed on
its own, and the bytes per sample count every table and index of the tier (raw, rollups,
sources, series, layouts).

``rollup`` compares where 1-minute rollups are computed, for 6 hours of one 100-series source:
in SQL (unnest the arrays, GROUP BY, upsert) or in numpy from ``array_send`` bytes.

Bytes come from ``pg_total_relation_size`` (heap, TOAST and indexes). The server is the
machine's PostgreSQL when it answers on 127.0.0.1:5432 (its own durability settings), else a
throwaway one from ``tests/servers.py`` (which runs with fsync off: faster, and said so in
the results). Each run gets a fresh database, dropped afterwards.

    python -m bench.pg [--seconds 5]    print one run of each

``CASES`` and ``run_case`` are what ``bench/__main__.py`` runs: inside ``with pg_server() as
server:``, a ``Job`` per case whose run is ``run_case(case, server, seconds)``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np
import psutil

from bench.model import Run
from bench.workload import INTERVAL_MS, SERIES_PER_HOST, host_series, machine_id, random_walk
from sysmonstm.store.model import SeriesBatch, SourceInfo, Tier
from sysmonstm.store.partitions import partition_name
from sysmonstm.store.pg_binary import RAW_COLUMNS, copy_stream, raw_rows
from sysmonstm.store.warm_pg import PgWarm

SOURCES = 100
SAMPLES_PER_TRANSACTION = 50_000
FRAMES_PER_TRANSACTION = SAMPLES_PER_TRANSACTION // SERIES_PER_HOST  # 500 rows
_T0_MS = 1_780_000_000_000 - 1_780_000_000_000 % 86_400_000  # a midnight: one day partition


@dataclass(frozen=True, slots=True)
class PgServer:
    """Where the measurements ran: a DSN of the server's ``postgres`` database."""

    dsn: str
    kind: str  # "local" (the machine's own) or "throwaway (fsync off)"


@contextmanager
def pg_server() -> Iterator[PgServer]:
    """The machine's PostgreSQL if it answers, else a throwaway one for the duration."""
    from tests import servers

    own = os.environ.get("SYSMONSTM_TEST_OWN_SERVERS") == "1"
    local = None if own else servers.local_postgres_dsn()
    if local is not None:
        yield PgServer(local, "local")
        return
    root = Path(tempfile.mkdtemp(prefix="sysmonstm-bench-pg-"))
    os.chmod(root, 0o755)  # noqa: S103  # the server runs as nobody (we are root): it must get in
    pg = servers.postgres_server(root / "pg").start()
    try:
        asyncio.run(_ready(pg.dsn))
        yield PgServer(pg.dsn, "throwaway (fsync off)")
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _ready(dsn: str) -> None:
    for _ in range(600):
        try:
            conn = await asyncpg.connect(dsn)
        except (asyncpg.CannotConnectNowError, OSError):
            await asyncio.sleep(0.05)
            continue
        await conn.close()
        return
    raise RuntimeError(f"PostgreSQL at {dsn} does not accept connections")


async def create_database(server_dsn: str) -> str:
    """A new empty database on the server; returns its DSN."""
    name = f"sysmonstm_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server_dsn.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(server_dsn: str, dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    """A new empty database on the server (dropped afterwards); yields its DSN."""
    dsn = await create_database(server_dsn)
    try:
        yield dsn
    finally:
        await drop_database(server_dsn, dsn)


@contextmanager
def database(server: PgServer) -> Iterator[str]:
    """``fresh_database`` for synchronous code (a pipeline run): yields the new DSN."""
    dsn = asyncio.run(create_database(server.dsn))
    try:
        yield dsn
    finally:
        asyncio.run(drop_database(server.dsn, dsn))


def describe_server(server: PgServer) -> str:
    """``PostgreSQL 15.20, local (fsync=on, synchronous_commit=on, shared_buffers=128MB)``."""

    async def ask() -> str:
        conn = await asyncpg.connect(server.dsn)
        try:
            version = await conn.fetchval("SHOW server_version")
            knobs = [
                f"{k}={await conn.fetchval(f'SHOW {k}')}"
                for k in ("fsync", "synchronous_commit", "shared_buffers")
            ]
        finally:
            await conn.close()
        return f"PostgreSQL {str(version).split()[0]}, {server.kind} ({', '.join(knobs)})"

    return asyncio.run(ask())


async def server_cpu_meter(conn: asyncpg.Connection) -> Callable[[], float]:
    """A function giving the CPU seconds used so far by the server of ``conn`` (the
    postmaster and all its processes: backends, WAL writer, checkpointer...). The server
    runs on this machine (127.0.0.1), so its processes can be read like any other."""
    backend = psutil.Process(int(await conn.fetchval("SELECT pg_backend_pid()")))
    postmaster = backend.parent() or backend
    return lambda: processes_cpu(postmaster)


def processes_cpu(root: psutil.Process) -> float:
    """CPU seconds (user + system) of ``root`` and its live descendants."""
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.Error:  # ended meanwhile
            continue
        total += times.user + times.system
    return total


def server_cpu(dsn: str) -> Callable[[], float]:
    """``server_cpu_meter`` for synchronous code."""

    async def find() -> Callable[[], float]:
        conn = await asyncpg.connect(dsn)
        try:
            return await server_cpu_meter(conn)
        finally:
            await conn.close()

    return asyncio.run(find())


async def tier_bytes(conn: asyncpg.Connection) -> int:
    """Bytes of every table of the current schema, with TOAST and indexes."""
    found = await conn.fetchval(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        " WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema())"
    )
    return int(found)


async def raw_bytes(conn: asyncpg.Connection) -> int:
    """Bytes of the warm tier's raw partitions alone, with TOAST and indexes."""
    found = await conn.fetchval(
        "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
        " WHERE inhparent = 'raw'::regclass"
    )
    return int(found)


async def rollup_bytes(conn: asyncpg.Connection) -> int:
    """Bytes of the warm tier's 1-minute and 1-hour partitions, with TOAST and indexes."""
    found = await conn.fetchval(
        "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
        " WHERE inhparent IN ('m1'::regclass, 'h1'::regclass)"
    )
    return int(found)


def tier_sizes(dsn: str) -> tuple[int, int]:
    """(every table, raw partitions only) in bytes, for synchronous code."""

    async def ask() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn)
        try:
            return await tier_bytes(conn), await raw_bytes(conn)
        finally:
            await conn.close()

    return asyncio.run(ask())


def _frames(seed: int = 1) -> np.ndarray:
    """A pool of frames to cycle through (997 x 100 random walks)."""
    return random_walk(np.random.default_rng(seed), 997, SERIES_PER_HOST)


# -- ceilings ------------------------------------------------------------------------------


async def wide_ceiling(dsn: str, seconds: float) -> Run:
    """Binary COPY of the warm tier's raw rows into a partition the tier created."""
    warm = PgWarm(dsn, clock=lambda: _T0_MS)
    await warm.open()  # migrations and today's partitions, by the tier's own code
    await warm.close()
    table = partition_name(Tier.RAW, _T0_MS)
    pool = _frames()
    conn = await asyncpg.connect(dsn)
    try:
        cpu = _CpuTally(await server_cpu_meter(conn))
        samples, spent, step = 0, 0.0, 0
        steps = FRAMES_PER_TRANSACTION // SOURCES
        while spent < seconds:
            t = np.repeat(_T0_MS + (step + np.arange(steps)) * INTERVAL_MS, SOURCES)
            src = np.tile(np.arange(1, SOURCES + 1), steps)
            values = pool[(step * SOURCES + np.arange(len(t))) % len(pool)]
            seq = np.full(len(t), step + 1)
            body = raw_rows(t, seq, src, np.ones(len(t), dtype=np.int64), values)
            step += steps
            cpu.begin()
            start = time.perf_counter()
            async with conn.transaction():
                await conn.copy_to_table(
                    table, source=copy_stream([body]), columns=list(RAW_COLUMNS), format="binary"
                )
            spent += time.perf_counter() - start
            cpu.end()
            samples += values.size
        size = await tier_bytes(conn)
        parts = await conn.fetchrow(
            "SELECT pg_relation_size($1::regclass),"
            " (SELECT sum(pg_relation_size(indexrelid)) FROM pg_index i JOIN pg_am a"
            "  ON a.oid = (SELECT relam FROM pg_class WHERE oid = i.indexrelid)"
            "  WHERE i.indrelid = $1::regclass AND a.amname = 'btree'),"
            " (SELECT sum(pg_relation_size(indexrelid)) FROM pg_index i JOIN pg_am a"
            "  ON a.oid = (SELECT relam FROM pg_class WHERE oid = i.indexrelid)"
            "  WHERE i.indrelid = $1::regclass AND a.amname = 'brin')",
            table,
        )
    finally:
        await conn.close()
    assert parts is not None
    extra = _sizes(size, samples, samples // SERIES_PER_HOST) | cpu.cores(spent)
    extra |= {
        "heap_bytes_per_sample": int(parts[0]) / samples,
        "key_btree_bytes_per_sample": int(parts[1]) / samples,  # (source_id, t, seq)
        "brin_bytes_per_sample": int(parts[2]) / samples,
    }
    return Run(samples / spent, samples, spent, extra)


async def narrow_ceiling(dsn: str, seconds: float) -> Run:
    """COPY of narrow (ts, host, metric, value) rows with a btree on (host, metric, ts)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE samples (ts bigint NOT NULL, host text NOT NULL,"
            " metric text NOT NULL, value float8 NOT NULL)"
        )
        await conn.execute("CREATE INDEX samples_by_series ON samples (host, metric, ts)")
        pool = _frames().ravel().tolist()
        pairs = [(machine_id(h), k) for h in range(SOURCES) for k in host_series()]
        cpu = _CpuTally(await server_cpu_meter(conn))
        samples, spent, step = 0, 0.0, 0
        while spent < seconds:
            rows = [
                (_T0_MS + (step + i // len(pairs)) * INTERVAL_MS, *pairs[i % len(pairs)],
                 pool[(step * len(pairs) + i) % len(pool)])
                for i in range(SAMPLES_PER_TRANSACTION)
            ]  # fmt: skip
            step += SAMPLES_PER_TRANSACTION // len(pairs)
            cpu.begin()
            start = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "samples", records=rows, columns=["ts", "host", "metric", "value"]
                )
            spent += time.perf_counter() - start
            cpu.end()
            samples += len(rows)
        size = await tier_bytes(conn)
    finally:
        await conn.close()
    return Run(samples / spent, samples, spent, _sizes(size, samples, samples) | cpu.cores(spent))


def _sizes(size: int, samples: int, rows: int) -> dict[str, float | int]:
    return {"bytes_per_sample": size / samples, "db_bytes": size, "rows": rows}


class _CpuTally:
    """CPU used over the timed sections only: the server's processes and this one."""

    def __init__(self, server: Callable[[], float]) -> None:
        self.server = server
        self.server_s = 0.0
        self.client_s = 0.0
        self._at = (0.0, 0.0)

    def begin(self) -> None:
        self._at = (self.server(), time.process_time())

    def end(self) -> None:
        self.server_s += self.server() - self._at[0]
        self.client_s += time.process_time() - self._at[1]

    def cores(self, seconds: float) -> dict[str, float]:
        return {
            "pg_cpu_cores": self.server_s / seconds,
            "client_cpu_cores": self.client_s / seconds,
        }


# -- the warm tier itself ------------------------------------------------------------------


def flushes(frames_per_batch: int = 1) -> Iterator[list[SeriesBatch]]:
    """Endless aggregator flushes of 50,000 samples: per source, batches of
    ``frames_per_batch`` frames, sources interleaved, sequences and time growing."""
    keys = host_series()
    infos = [SourceInfo("metrics", machine_id(h), f"{machine_id(h)}.bench") for h in range(SOURCES)]
    pool = _frames()
    per_source = FRAMES_PER_TRANSACTION // SOURCES
    seq, frame = 0, 0
    while True:
        batches = []
        for _ in range(per_source // frames_per_batch):
            seq += 1
            times = _T0_MS + (frame + np.arange(frames_per_batch)) * INTERVAL_MS
            for h, info in enumerate(infos):
                rows = (frame * SOURCES + h + np.arange(frames_per_batch)) % len(pool)
                batches.append(SeriesBatch(info, seq, keys, times, pool[rows], INTERVAL_MS))
            frame += frames_per_batch
        yield batches


async def warm_write(dsn: str, seconds: float, frames_per_batch: int = 1) -> Run:
    """``PgWarm.write`` of aggregator-sized flushes, then one timed ``rollup()``."""
    source = flushes(frames_per_batch)
    prepared = [next(source) for _ in range(4)]  # first flushes create series and layouts
    warm = PgWarm(dsn, clock=lambda: _T0_MS)
    await warm.open()
    try:
        async with warm.db.tx("server pid") as conn:
            cpu = _CpuTally(await server_cpu_meter(conn))
        samples, spent = 0, 0.0
        for batches in prepared:
            await warm.write(batches)
        while spent < seconds:
            batches = next(source)
            cpu.begin()
            start = time.perf_counter()
            stored = await warm.write(batches)
            spent += time.perf_counter() - start
            cpu.end()
            samples += sum(b.size for b in stored)
        start = time.perf_counter()
        buckets = await warm.rollup()
        rollup_s = time.perf_counter() - start
        conn = await asyncpg.connect(dsn)
        try:
            size, raw = await tier_bytes(conn), await raw_bytes(conn)
            total = int(await conn.fetchval("SELECT count(*) FROM raw")) * SERIES_PER_HOST
        finally:
            await conn.close()
    finally:
        await warm.close()
    extra = _sizes(size, total, total // SERIES_PER_HOST) | cpu.cores(spent)
    extra |= {
        "raw_bytes_per_sample": raw / total,
        "rollup_s": rollup_s,
        "rollup_buckets": buckets,
        "rollup_samples_per_s": total / rollup_s,
    }
    return Run(samples / spent, samples, spent, extra)


# -- where rollups are computed ------------------------------------------------------------

# the same buckets computed by the server, kept in a temporary table (the warm tier's minute
# rows need layouts, which only the client side creates)
_SQL_M1_TABLE = """
    CREATE TEMPORARY TABLE sql_m1 (series_id int4, t int8, min float8, max float8,
        sum float8, count int4, last float8) ON COMMIT DROP"""
_SQL_M1 = """
    INSERT INTO sql_m1
    SELECT u.sid, r.t - r.t % 60000, min(u.v), max(u.v), sum(u.v), count(*),
           (max(ARRAY[r.t::float8, r.seq::float8, u.v]))[3]
    FROM raw r JOIN layouts l ON l.id = r.layout_id,
         LATERAL unnest(l.ids, r.vals) AS u(sid, v)
    WHERE r.source_id = $1 AND r.t >= $2 AND r.t < $3
    GROUP BY 1, 2"""


async def rollup_placement(dsn: str, hours: int = 6) -> dict[str, float]:
    """Samples/s of 1-minute rollups of ``hours`` of one source: SQL vs numpy."""
    from sysmonstm.store.pg_conn import PgDb
    from sysmonstm.store.pg_partitions import Partitions
    from sysmonstm.store.pg_read import LayoutCache
    from sysmonstm.store.pg_rollup import RollupJob

    frames = hours * 3600
    keys = host_series()
    pool = _frames()
    warm = PgWarm(dsn, clock=lambda: _T0_MS)
    await warm.open()
    try:
        info = SourceInfo("metrics", "rollup-bench")
        times = _T0_MS + np.arange(frames) * INTERVAL_MS
        for k in range(0, frames, 3600):
            chunk = slice(k, k + 3600)
            values = pool[np.arange(k, min(k + 3600, frames)) % len(pool)]
            await warm.write([SeriesBatch(info, k + 1, keys, times[chunk], values)])
    finally:
        await warm.close()
    samples = frames * SERIES_PER_HOST
    end = _T0_MS + frames * INTERVAL_MS
    db = PgDb(dsn)
    await db.open()
    try:
        parts = Partitions(db)
        await parts.ensure({partition_name(Tier.M1, _T0_MS)})
        job = RollupJob(db, parts, LayoutCache())
        async with db.tx("source") as conn:
            sid = int(await conn.fetchval("SELECT id FROM sources WHERE key = 'rollup-bench'"))
        async with db.tx("sql rollup") as conn:
            await conn.execute(_SQL_M1_TABLE)
            start = time.perf_counter()
            await conn.execute(_SQL_M1, sid, _T0_MS, end)
            sql_s = time.perf_counter() - start
        async with db.tx("numpy rollup") as conn:
            start = time.perf_counter()
            await job.m1_from_raw(conn, sid, _T0_MS, end, end)  # hours rolled up
            numpy_s = time.perf_counter() - start
    finally:
        await db.close()
    return {"samples": samples, "sql_samples_per_s": samples / sql_s,
            "numpy_samples_per_s": samples / numpy_s}  # fmt: skip


# -- for bench/__main__.py: cases by key, one run each in a fresh database -------------------


@dataclass(frozen=True, slots=True)
class PgCase:
    """One measurement: ``key`` for the report, and what it means."""

    key: str
    title: str
    meaning: str
    measure: Callable[[str, float], Awaitable[Run]]  # (database DSN, seconds) -> a run


CASES: tuple[PgCase, ...] = (
    PgCase(
        "pg.wide",
        "PostgreSQL COPY ceiling, warm-tier layout",
        "Binary COPY of one row per (source, instant) with 100 float8 values in an array, into "
        "a raw day partition the warm tier created (primary key (source_id, t, seq), BRIN on "
        "t); 100 sources interleaved, 50,000 samples per transaction. Only COPY and COMMIT "
        "are timed; bytes include both indexes.",
        wide_ceiling,
    ),
    PgCase(
        "pg.narrow",
        "PostgreSQL narrow rows + index (reference)",
        "One row (ts, host, metric, value) per sample, btree on (host, metric, ts), real "
        "canonical series keys; 50,000 rows per transaction through asyncpg's "
        "copy_records_to_table. Only COPY and COMMIT are timed.",
        narrow_ceiling,
    ),
    PgCase(
        "pg.warm.live",
        "PgWarm.write, live shape",
        "The warm tier's write (locks, watermarks, layouts, binary COPY) of 500 one-frame "
        "batches of 100 series per call (an aggregator flush of 50,000 samples), 100 "
        "sources. Only write() is timed; bytes include rollups after one rollup() pass.",
        lambda dsn, seconds: warm_write(dsn, seconds, 1),
    ),
    PgCase(
        "pg.warm.replay",
        "PgWarm.write, replay shape",
        "As the live shape, with 5 frames per batch (a sender replaying its spool).",
        lambda dsn, seconds: warm_write(dsn, seconds, 5),
    ),
)


def run_case(case: PgCase, server: PgServer, seconds: float) -> Run:
    """One run of ``case`` in a fresh database on ``server`` (dropped afterwards)."""

    async def run() -> Run:
        async with fresh_database(server.dsn) as dsn:
            found = await case.measure(dsn, seconds)
        return Run(found.rate, found.samples, found.seconds, found.extra | {"server": server.kind})

    return asyncio.run(run())


def run_rollup_placement(server: PgServer) -> dict[str, float]:
    """SQL vs numpy 1-minute rollups (``rollup_placement``) in a fresh database."""

    async def run() -> dict[str, float]:
        async with fresh_database(server.dsn) as dsn:
            return await rollup_placement(dsn)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per case")
    args = parser.parse_args(argv)
    with pg_server() as server:
        print(f"server: {server.kind}")
        for case in CASES:
            run = run_case(case, server, args.seconds)
            facts = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in run.extra.items()
                if k != "server"
            )
            print(f"{case.title}: {run.rate / 1e6:.2f} M samples/s; {facts}")
        placement = run_rollup_placement(server)
    print(
        "1-minute rollups of 6 h x 100 series: "
        f"SQL unnest {placement['sql_samples_per_s'] / 1e6:.2f} M samples/s, "
        f"numpy {placement['numpy_samples_per_s'] / 1e6:.2f} M samples/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
