"""A 30-day series at 1,000 points and the fleet overview, on 30 days of 100 hosts, timed.

The two questions users ask of the metrics domain:

- **series**: ``GET /api/v1/series?host=<id>&series=<key>&from=-30d&points=1000`` of a random
  host and series; the query router picks the hourly tier (720 buckets), whose stored rows
  are read up to the tier's progress and the last hour from the finer tiers;
- **fleet**: ``GET /api/v1/hosts``, every host with the latest value of each of its series
  (the hot tier's), identity, labels and ages.

Each is timed three ways per backend (``bench.fleet_services``): ``rest`` over HTTP on the
backend's real ``sysmonstm up`` (a keep-alive httpx client, the JSON decoded), ``store`` in
this process (``Core.queries.range``, and ``hosts_overview`` of ``domains/metrics/api.py``,
what the two routes call, on a ``Core`` with the same settings), and ``raw``: the rows the
query needs read by one bare SELECT with the same driver (sqlite3, asyncpg), no pool or
transaction: the hourly rollup rows of the 30 days of one series; the newest raw frame of
every host. Every answer is checked against the history after the clock stopped.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import httpx
import msgspec

from bench.deskmeter_queries import WARM_UP, _get, _timed, latencies
from bench.fleet_history import DAY_MS, DOMAIN, HistorySpec
from bench.fleet_load import check_points
from bench.fleet_services import FleetServices
from bench.model import Run
from bench.procs import BenchError
from sysmonstm.domains.metrics.api import hosts_overview
from sysmonstm.runtime import Core
from sysmonstm.store import pg_read, sqlite_db
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import overlapping
from sysmonstm.store.sqlite_read import SqliteReader
from sysmonstm.store.warm_sqlite import sqlite_path

SPAN_MS = 30 * DAY_MS
POINTS = 1000
RAW_SERIES_PG = (
    "SELECT t, min, max, sum, count FROM h1 WHERE series_id = $1 AND t >= $2 AND t < $3 ORDER BY t"
)
RAW_SERIES_SQLITE = (
    "SELECT t, min, max, sum, count FROM {table} WHERE series_id = ? AND t >= ? AND t < ?"
    " ORDER BY t"
)
RAW_FLEET_PG = (
    "SELECT s.key, r.t, r.vals FROM sources s CROSS JOIN LATERAL (SELECT t, vals FROM raw"
    " WHERE source_id = s.id ORDER BY t DESC LIMIT 1) r WHERE s.domain = 'metrics'"
)
RAW_FLEET_SQLITE = (
    "SELECT s.key, r.t, r.vals FROM sources s JOIN {table} r ON r.source_id = s.id"
    " WHERE s.domain = 'metrics' AND r.t = (SELECT max(t) FROM {table} WHERE source_id = s.id)"
)


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The history and how many queries each run times."""

    spec: HistorySpec = field(default_factory=HistorySpec)
    series_queries: int = 300
    fleet_queries: int = 100
    raw_fleet_queries: int = 300

    def quick(self) -> QueryOptions:
        return replace(
            self, spec=self.spec.quick(), series_queries=60, fleet_queries=30, raw_fleet_queries=60
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def p99_run(ns: list[int], **extra: Any) -> Run:
    """A run whose rate is the p99 in ms; p50 and the rest as facts."""
    stats = latencies(ns)
    return Run(stats["p99_ms"], len(ns), sum(ns) / 1e9, stats | extra)


class FleetQueries:
    """What the runs ask and how their answers are checked."""

    def __init__(self, opts: QueryOptions, services: FleetServices) -> None:
        self.opts = opts
        self.services = services
        self.history = services.history
        self._series_ids: dict[str, dict[tuple[str, str], int]] = {}
        self._relations: dict[str, str] = {}

    def pairs(self, seed: int, n: int) -> list[tuple[str, int]]:
        """``n`` random (host, series column) pairs."""
        rng = random.Random(f"series:{seed}")
        hosts = self.history.hosts
        out = []
        for _ in range(n):
            host = rng.choice(hosts)
            out.append((host.id, rng.randrange(len(host.series))))
        return out

    def key(self, host_id: str, column: int) -> str:
        return self.history.by_id(host_id).series[column]

    def check_series(self, asked: list[tuple[str, int]], got: list[tuple[int, int, Any]]) -> None:
        for (host_id, column), (start, end, points) in zip(asked, got, strict=True):
            tier = points["tier"] if isinstance(points, dict) else str(points.tier)
            if tier != str(Tier.H1):
                raise BenchError(f"a 30-day read of {host_id} came from tier {tier}")
            check_points(self.history, host_id, column, start, end, points)

    def expected_fleet(self) -> dict[str, dict[str, dict[str, float]]]:
        out = {}
        for host in self.history.hosts:
            t, values = self.history.last_frame[host.id]
            out[host.id] = {
                k: {"t": t, "v": v} for k, v in zip(host.series, values.tolist(), strict=True)
            }
        return out

    def check_fleet(self, answers: list[list[dict[str, Any]]]) -> None:
        want = self.expected_fleet()
        for answer in answers:
            got = {h["id"]: h["values"] for h in answer}
            if got != want or any(h["live"] != "ok" for h in answer):
                raise BenchError(f"the fleet overview answered {len(got)} hosts unlike the history")

    # -- the raw reads' ids and the tables a read touches ----------------------------------

    def series_ids(self, backend: str) -> dict[tuple[str, str], int]:
        if backend not in self._series_ids:
            sql = (
                "SELECT so.key, se.key, se.id FROM series se"
                " JOIN sources so ON so.id = se.source_id"
            )
            rows = (
                _sqlite(self.services, lambda c: c.execute(sql).fetchall())
                if backend == "sqlite"
                else asyncio.run(_pg(self.services, lambda c: c.fetch(sql)))
            )
            self._series_ids[backend] = {(str(h), str(k)): int(i) for h, k, i in rows}
        return self._series_ids[backend]

    def relations(self, backend: str) -> str:
        """The tables one 30-day read touches: the statements the warm tier's read issues,
        traced (SQLite) or logged and EXPLAINed with their arguments (PostgreSQL)."""
        if backend not in self._relations:
            host = self.history.hosts[0]
            end = _now_ms()
            args = (DOMAIN, host.id, host.series[0], end - SPAN_MS, end, Tier.H1)
            if backend == "sqlite":
                found = _sqlite_tables(self.services, args)
            else:
                found = asyncio.run(_pg_tables(self.services, args))
            self._relations[backend] = ", ".join(sorted(found))
        return self._relations[backend]


def _sqlite(services: FleetServices, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    path = sqlite_path(services.services["sqlite"].warm_url)
    conn = sqlite_db.connect(path, readonly=True)
    try:
        return fn(conn)
    finally:
        conn.close()


async def _pg(services: FleetServices, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    conn = await asyncpg.connect(services.services["pg"].warm_url)
    try:
        return await fn(conn)
    finally:
        await conn.close()


def _sqlite_tables(services: FleetServices, args: tuple[Any, ...]) -> set[str]:
    statements: list[str] = []

    def read(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)
        SqliteReader(conn).read(*args)

    _sqlite(services, read)
    names = {m for s in statements for m in re.findall(r"\bFROM\s+(\w+)", s, re.IGNORECASE)}
    return {n for n in names if re.fullmatch(r"(raw|m1|h1)_\d+", n)}


async def _pg_tables(services: FleetServices, args: tuple[Any, ...]) -> set[str]:
    async def explain(conn: asyncpg.Connection) -> set[str]:
        logged: list[tuple[str, tuple[Any, ...]]] = []
        conn.add_query_logger(lambda q: logged.append((q.query, tuple(q.args or ()))))
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await pg_read.read(conn, *args)
        found: set[str] = set()
        statements = logged.copy()  # the EXPLAINs below are logged too
        for sql, params in statements:
            if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params)
                found |= set(re.findall(r'"Relation Name": "((?:raw|m1|h1)_\d+)"', plan))
        return found

    result: set[str] = await _pg(services, explain)
    return result


# -- one run of each measurement ---------------------------------------------------------------


def _range(core: Core, host_id: str, key: str) -> Callable[[], Awaitable[Any]]:
    async def call() -> tuple[int, int, Any]:
        end = _now_ms()
        start = end - SPAN_MS
        return start, end, await core.queries.range(DOMAIN, host_id, key, start, end, POINTS)

    return call


def series_store_run(q: FleetQueries, backend: str, seed: int) -> Run:
    """``Core.queries.range`` of a random series over the last 30 days at 1,000 points."""
    asked = q.pairs(seed, q.opts.series_queries)

    async def go() -> tuple[list[int], list[Any]]:
        core = await q.services.open_core(backend)
        try:
            return await _timed([_range(core, h, q.key(h, c)) for h, c in asked])
        finally:
            await core.close()

    ns, answers = asyncio.run(go())
    q.check_series(asked, answers)
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in q.services.seconds.items())
    return p99_run(
        ns,
        points=len(answers[-1][2]),
        relations=q.relations(backend),
        setup=setup,
        **q.services.services[backend].loaded,
    )


def series_rest_run(q: FleetQueries, backend: str, seed: int) -> Run:
    """``GET /api/v1/series?host=…&series=…&from=-30d&points=1000``."""
    asked = q.pairs(seed, q.opts.series_queries)
    url = q.services.services[backend].gateway
    ns, answers = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i, (h, c) in enumerate([*asked[:WARM_UP], *asked]):
            params = {"host": h, "series": q.key(h, c), "from": "-30d", "points": str(POINTS)}
            took, body = _get(client, "/api/v1/series", params)
            if i >= WARM_UP:
                ns.append(took)
                answers.append((body["from_ms"], body["to_ms"], body))
    q.check_series(asked, answers)
    return p99_run(ns, points=len(answers[-1][2]["t"]))


def series_raw_run(q: FleetQueries, backend: str, seed: int) -> Run:
    """The hourly rows of the 30 days of one series, by one bare SELECT."""
    asked = q.pairs(seed, q.opts.series_queries)
    ids = q.series_ids(backend)
    wanted = [ids[(h, q.key(h, c))] for h, c in asked]
    if backend == "sqlite":

        def go_sqlite(conn: sqlite3.Connection) -> list[int]:
            end = _now_ms()
            tables = overlapping(sqlite_db.existing_tables(conn), Tier.H1, end - SPAN_MS, end)
            sql = (
                " UNION ALL ".join(
                    RAW_SERIES_SQLITE.format(table=name).replace(" ORDER BY t", "")
                    for name, _, _ in tables
                )
                + " ORDER BY t"
            )
            ns = []
            for i, sid in enumerate([*wanted[:WARM_UP], *wanted]):
                end = _now_ms()
                params = [v for _ in tables for v in (sid, end - SPAN_MS, end)]
                began = time.perf_counter_ns()
                conn.execute(sql, params).fetchall()
                if i >= WARM_UP:
                    ns.append(time.perf_counter_ns() - began)
            return ns

        return p99_run(_sqlite(q.services, go_sqlite))

    async def go_pg(conn: asyncpg.Connection) -> list[int]:
        stmt = await conn.prepare(RAW_SERIES_PG)

        def bind(sid: int) -> Callable[[], Awaitable[Any]]:
            return lambda: stmt.fetch(sid, _now_ms() - SPAN_MS, _now_ms())

        ns, _ = await _timed([bind(sid) for sid in wanted])
        return ns

    return p99_run(asyncio.run(_pg(q.services, go_pg)))


def fleet_store_run(q: FleetQueries, backend: str, seed: int) -> Run:
    """``hosts_overview``: what ``GET /api/v1/hosts`` answers, in this process."""

    async def go() -> tuple[list[int], list[Any]]:
        core = await q.services.open_core(backend)
        try:
            return await _timed([lambda: hosts_overview(core)] * q.opts.fleet_queries)
        finally:
            await core.close()

    ns, answers = asyncio.run(go())
    q.check_fleet([msgspec.to_builtins(hosts) for hosts, _ in answers])
    return p99_run(ns, hosts=len(answers[-1][0]))


def fleet_rest_run(q: FleetQueries, backend: str, seed: int) -> Run:
    """``GET /api/v1/hosts``."""
    url = q.services.services[backend].gateway
    ns: list[int] = []
    answer: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(WARM_UP + q.opts.fleet_queries):
            took, answer = _get(client, "/api/v1/hosts", {})
            if i >= WARM_UP:
                ns.append(took)
                # checked at once and dropped, as a client would: a hundred kept overviews
                # (~2 M objects) made this process's own full collections land in timed calls
                q.check_fleet([answer])
    body = json.dumps(answer).encode()
    decode = sorted(_decode_ns(body) for _ in range(21))[10] / 1e6
    return p99_run(ns, hosts=len(answer), response_bytes=len(body), decode_ms=decode)


def _decode_ns(body: bytes) -> int:
    """How long the client's JSON decoding of ``body`` takes (part of each timed query)."""
    began = time.perf_counter_ns()
    json.loads(body)
    return time.perf_counter_ns() - began


def fleet_raw_run(q: FleetQueries, backend: str, seed: int) -> Run:
    """The newest raw frame of every host, by one bare SELECT."""
    n = q.opts.raw_fleet_queries
    if backend == "sqlite":

        def go_sqlite(conn: sqlite3.Connection) -> list[int]:
            raw = max(t for t in sqlite_db.existing_tables(conn) if t.startswith("raw_"))
            sql = RAW_FLEET_SQLITE.format(table=raw)
            ns = []
            for i in range(WARM_UP + n):
                began = time.perf_counter_ns()
                rows = conn.execute(sql).fetchall()
                if i >= WARM_UP:
                    ns.append(time.perf_counter_ns() - began)
            if len(rows) != len(q.history.hosts):
                raise BenchError(f"the newest frames of {len(rows)} hosts")
            return ns

        return p99_run(_sqlite(q.services, go_sqlite))

    async def go_pg(conn: asyncpg.Connection) -> list[int]:
        stmt = await conn.prepare(RAW_FLEET_PG)
        ns, rows = await _timed([stmt.fetch] * n)
        if len(rows[-1]) != len(q.history.hosts):
            raise BenchError(f"the newest frames of {len(rows[-1])} hosts")
        return ns

    return p99_run(asyncio.run(_pg(q.services, go_pg)))


RUNS: dict[tuple[str, str], Callable[[FleetQueries, str, int], Run]] = {
    ("series", "raw"): series_raw_run,
    ("series", "store"): series_store_run,
    ("series", "rest"): series_rest_run,
    ("fleet", "raw"): fleet_raw_run,
    ("fleet", "store"): fleet_store_run,
    ("fleet", "rest"): fleet_rest_run,
}
