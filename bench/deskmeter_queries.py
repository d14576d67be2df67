"""Deskmeter's two questions on five years of history for three machines, and their ceilings.

"What was I doing at <instant>" (``IntervalStore.at`` for one machine; ``GET
/api/v1/deskmeter/at?time=…&machine=…``) and "this month's totals per task"
(``IntervalStore.summary`` over a calendar month in Europe/Berlin, every machine, by task;
``GET /api/v1/deskmeter/summary?period=month&at=…&tz=Europe/Berlin&by=task``), each timed
query by query over many random instants and months, on SQLite and on PostgreSQL, in
process (what the gateway calls) and through a real gateway over HTTP. Each answer is checked
against the generated history (the interval covering the instant; the month's time per
task, active and idle apart, to the millisecond), after the clock stopped.

Ceilings, in the same database and run: the raw indexed lookup ``SELECT … FROM desk_intervals
WHERE machine_id = ? AND start_ms <= ? ORDER BY start_ms DESC LIMIT 1`` and the raw ``SELECT
task, idle, sum(ms) FROM desk_days WHERE machine_id IN (…) AND day >= ? AND day < ? GROUP BY
task, idle`` over the month's daily rollup rows, with the same driver (sqlite3, asyncpg), no
transaction or pool around them.

The history (``bench.deskmeter_history``) is generated and loaded once per backend per
``python -m bench`` (``bench.deskmeter_load``, through the stores' own write code); every run
reads the same database, which the queries do not change. ``DeskBench`` owns it: the SQLite
file, the PostgreSQL database (dropped at the end) and the two gateways.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import httpx
import numpy as np

from bench.deskmeter_history import TASKS, HistorySpec, MachineHistory, history
from bench.deskmeter_load import Loaded, load_pg, load_sqlite
from bench.gateway import start_gateway
from bench.model import Run
from bench.pg import PgServer, create_database, drop_database
from bench.procs import BenchError, Children
from sysmonstm.domains.deskmeter.localdays import day_start_ms
from sysmonstm.domains.deskmeter.model import Interval, SummaryBy, Total
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.store_pg import PgIntervals
from sysmonstm.domains.deskmeter.store_sqlite import SqliteIntervals
from sysmonstm.store import sqlite_db

ZONE = "Europe/Berlin"  # the person's zone: calendar months are read in it
BACKENDS = ("sqlite", "pg")
QUESTIONS = ("at", "month")
WARM_UP = 20  # untimed queries before each timed series
RAW_AT = (
    "SELECT start_ms, end_ms, workspace_index, workspace, task, idle FROM desk_intervals"
    " WHERE machine_id = {m} AND start_ms <= {t} ORDER BY start_ms DESC LIMIT 1"
)
RAW_MONTH = (
    "SELECT task, idle, sum(ms) FROM desk_days WHERE machine_id IN ({ids}) AND day >= {a}"
    " AND day < {b} GROUP BY task, idle"
)


@dataclass(frozen=True, slots=True)
class DeskOptions:
    """Sizes of the query runs."""

    spec: HistorySpec = field(default_factory=HistorySpec)
    at_queries: int = 2_000
    month_queries: int = 200
    rest_at_queries: int = 1_000
    rest_month_queries: int = 200
    every_machine_queries: int = 500  # ``at`` without a machine, a fact of the ``at`` runs

    def quick(self) -> DeskOptions:
        return replace(
            self,
            spec=replace(self.spec, years=1.0),
            at_queries=400,
            month_queries=40,
            rest_at_queries=200,
            rest_month_queries=40,
            every_machine_queries=100,
        )


@dataclass(frozen=True, slots=True)
class Month:
    first: date
    from_ms: int
    to_ms: int


def _months(spec: HistorySpec) -> list[Month]:
    """Every whole calendar month of the history, in ``ZONE``."""
    out: list[Month] = []
    y, m = spec.first_day.year, spec.first_day.month + 1
    while True:
        if m > 12:
            y, m = y + 1, 1
        first = date(y, m, 1)
        after = date(y + m // 12, m % 12 + 1, 1)
        if after > spec.end:
            return out
        out.append(Month(first, day_start_ms(first, ZONE), day_start_ms(after, ZONE)))
        m += 1


def latencies(ns: list[int]) -> dict[str, float]:
    """p50, p99, mean and max in milliseconds of per-query times in nanoseconds."""
    ms = np.array(ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "queries": len(ns),
        "qps": float(1000.0 / ms.mean()),
    }


def _run(ns: list[int], **extra: Any) -> Run:
    stats = latencies(ns)
    return Run(stats["p50_ms"], len(ns), sum(ns) / 1e9, stats | extra)


# -- what the answers must be ------------------------------------------------------------------


def _expected_at(h: MachineHistory, t: int) -> tuple[Any, ...] | None:
    i = h.covering(t)
    if i is None:
        return None
    iv = h.intervals(i, i + 1)[0]
    return (iv.machine, iv.start_ms, iv.end_ms, iv.workspace, iv.task, iv.idle)


def _interval_key(iv: Interval) -> tuple[Any, ...]:
    return (iv.machine, iv.start_ms, iv.end_ms, iv.workspace, iv.task, iv.idle)


def expected_month(histories: list[MachineHistory], month: Month) -> dict[str, tuple[int, int]]:
    """Active and idle ms per task over every machine within the month."""
    active = np.zeros(len(TASKS), dtype=np.int64)
    idle = np.zeros(len(TASKS), dtype=np.int64)
    for h in histories:
        ms = np.clip(np.minimum(h.stop, month.to_ms) - np.maximum(h.start, month.from_ms), 0, None)
        np.add.at(active, h.task[~h.idle], ms[~h.idle])
        np.add.at(idle, h.task[h.idle], ms[h.idle])
    return {
        TASKS[i]: (int(active[i]), int(idle[i])) for i in range(len(TASKS)) if active[i] or idle[i]
    }


def _totals_ms(totals: list[Total] | list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    out = {}
    for t in totals:
        key, a, i = (
            (t.key, t.active_s, t.idle_s)
            if isinstance(t, Total)
            else (
                t["key"],
                t["active_s"],
                t["idle_s"],
            )
        )
        out[key] = (round(a * 1000), round(i * 1000))
    return out


# -- the bench's state for one suite -----------------------------------------------------------


class DeskBench:
    """The loaded history per backend and the gateways reading it; closed after the suite."""

    def __init__(self, opts: DeskOptions, pg: PgServer, workdir: Path) -> None:
        self.opts = opts
        self.pg = pg
        self.workdir = workdir / "deskmeter"
        self.workdir.mkdir()
        self.histories = history(opts.spec)
        self.months = _months(opts.spec)
        self.sqlite_path = self.workdir / "warm.db"
        self.pg_dsn: str | None = None
        self.loaded: dict[str, dict[str, Any]] = {}
        self._stack = ExitStack()
        self._kids = self._stack.enter_context(Children(self.workdir))
        self._gateways: dict[str, str] = {}
        self._machine_ids: dict[str, dict[str, int]] = {}

    def __enter__(self) -> DeskBench:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.__exit__(kind, exc, tb)
        if self.pg_dsn is not None:
            asyncio.run(drop_database(self.pg.dsn, self.pg_dsn))

    # the history, loaded once per backend

    def url(self, backend: str) -> str:
        if backend == "sqlite":
            if "sqlite" not in self.loaded:
                self._load(
                    "sqlite", lambda: load_sqlite(self.histories, self.opts.spec, self.sqlite_path)
                )
            return f"sqlite:///{self.sqlite_path}"
        if self.pg_dsn is None:
            self.pg_dsn = asyncio.run(create_database(self.pg.dsn))
            dsn = self.pg_dsn
            self._load("pg", lambda: load_pg(self.histories, self.opts.spec, dsn))
        return self.pg_dsn

    def _load(self, backend: str, load: Callable[[], Coroutine[Any, Any, Loaded]]) -> None:
        began = time.perf_counter()
        loaded = asyncio.run(load())
        seconds = time.perf_counter() - began
        self.loaded[backend] = {
            "history_intervals": loaded.intervals,
            "history_day_rows": loaded.day_rows,
            "history_events": loaded.events,
            "history_years": self.opts.spec.years,
            "history_machines": len(self.opts.spec.machines),
            "load_seconds": seconds,
            "db_bytes": self._db_bytes(backend),
        }

    def _db_bytes(self, backend: str) -> int:
        if backend == "sqlite":
            return sum(f.stat().st_size for f in self.workdir.glob("warm.db*"))

        async def size() -> int:
            conn = await asyncpg.connect(self.pg_dsn)
            try:
                return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
            finally:
                await conn.close()

        return asyncio.run(size())

    def store(self, backend: str) -> IntervalStore:
        url = self.url(backend)
        return SqliteIntervals(url) if backend == "sqlite" else PgIntervals(url)

    def gateway(self, backend: str) -> str:
        """A gateway reading the backend's history (started on first use)."""
        if backend not in self._gateways:
            data = self.workdir / f"gateway-{backend}"
            data.mkdir()
            _, url = start_gateway(self._kids, data, self.url(backend), name=f"gateway-{backend}")
            self._gateways[backend] = url
        return self._gateways[backend]

    def machine_ids(self, backend: str) -> dict[str, int]:
        """Row ids of the machines in the backend's ``desk_machines`` (for the raw SQL)."""
        if backend not in self._machine_ids:
            sql = "SELECT key, id FROM desk_machines"
            if backend == "sqlite":
                self.url(backend)
                conn = sqlite_db.connect(self.sqlite_path, readonly=True)
                try:
                    rows = conn.execute(sql).fetchall()
                finally:
                    conn.close()
            else:
                rows = asyncio.run(_pg_fetch(self.url(backend), sql))
            self._machine_ids[backend] = {str(k): int(i) for k, i in rows}
        return self._machine_ids[backend]

    # what the runs ask

    def instants(self, seed: int, n: int) -> list[tuple[str, int]]:
        """``n`` random (machine, instant) pairs over the whole history."""
        rng = random.Random(f"at:{seed}")
        lo = min(int(h.start[0]) for h in self.histories)
        hi = max(int(h.stop[-1]) for h in self.histories)
        ids = [h.profile.id for h in self.histories]
        return [(rng.choice(ids), rng.randrange(lo, hi)) for _ in range(n)]

    def random_months(self, seed: int, n: int) -> list[Month]:
        rng = random.Random(f"month:{seed}")
        return [rng.choice(self.months) for _ in range(n)]

    def check_at(self, asked: list[tuple[str, int]], got: list[list[tuple[Any, ...]]]) -> int:
        """Every answer is the generated interval covering the instant; the hits."""
        by_id = {h.profile.id: h for h in self.histories}
        hits = 0
        for (machine, t), answer in zip(asked, got, strict=True):
            want = _expected_at(by_id[machine], t)
            if answer != ([] if want is None else [want]):
                raise BenchError(f"at({t}, {machine}) answered {answer}, expected {want}")
            hits += want is not None
        return hits

    def check_months(self, asked: list[Month], got: list[dict[str, tuple[int, int]]]) -> None:
        cache: dict[date, dict[str, tuple[int, int]]] = {}
        for month, answer in zip(asked, got, strict=True):
            if month.first not in cache:
                cache[month.first] = expected_month(self.histories, month)
            if answer != cache[month.first]:
                raise BenchError(
                    f"month {month.first:%Y-%m} by task: {answer}, expected {cache[month.first]}"
                )


async def _pg_fetch(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


# -- one run of each measurement ---------------------------------------------------------------


async def _timed(calls: list[Callable[[], Awaitable[Any]]]) -> tuple[list[int], list[Any]]:
    for call in calls[:WARM_UP]:
        await call()
    ns, answers = [], []
    for call in calls:
        began = time.perf_counter_ns()
        answer = await call()
        ns.append(time.perf_counter_ns() - began)
        answers.append(answer)
    return ns, answers


def store_at_run(bench: DeskBench, backend: str, seed: int) -> Run:
    """``at(t, machine)`` on the store as the gateway calls it; plus, as a fact, ``at(t)``
    over every machine."""
    asked = bench.instants(seed, bench.opts.at_queries)
    every = bench.instants(seed + 1000, bench.opts.every_machine_queries)

    async def go() -> tuple[list[int], list[Any], list[int]]:
        store = bench.store(backend)
        await store.open()
        try:
            ns, answers = await _timed([_bind_at(store, t, m) for m, t in asked])
            all_ns, _ = await _timed([_bind_at(store, t, None) for _, t in every])
        finally:
            await store.close()
        return ns, answers, all_ns

    ns, answers, all_ns = asyncio.run(go())
    hits = bench.check_at(asked, [[_interval_key(iv) for iv in a] for a in answers])
    every_stats = latencies(all_ns)
    return _run(
        ns,
        hits=hits,
        every_machine_p50_ms=every_stats["p50_ms"],
        every_machine_p99_ms=every_stats["p99_ms"],
        **bench.loaded[backend],
    )


def _bind_at(store: IntervalStore, t: int, m: str | None) -> Callable[[], Awaitable[Any]]:
    return lambda: store.at(t, m)


def store_month_run(bench: DeskBench, backend: str, seed: int) -> Run:
    """``summary(month, by task)`` over every machine on the store."""
    asked = bench.random_months(seed, bench.opts.month_queries)

    async def go() -> tuple[list[int], list[Any]]:
        store = bench.store(backend)
        await store.open()
        try:
            return await _timed([_bind_month(store, m.from_ms, m.to_ms) for m in asked])
        finally:
            await store.close()

    ns, answers = asyncio.run(go())
    bench.check_months(asked, [_totals_ms(a) for a in answers])
    return _run(ns, **bench.loaded[backend])


def _bind_month(store: IntervalStore, a: int, b: int) -> Callable[[], Awaitable[Any]]:
    return lambda: store.summary(a, b, SummaryBy.TASK)


def raw_at_run(bench: DeskBench, backend: str, seed: int) -> Run:
    """The indexed lookup alone, same table, same driver."""
    asked = bench.instants(seed, bench.opts.at_queries)
    ids = bench.machine_ids(backend)
    if backend == "sqlite":
        bench.url(backend)
        conn = sqlite_db.connect(bench.sqlite_path, readonly=True)
        sql = RAW_AT.format(m="?", t="?")
        try:
            for m, t in asked[:WARM_UP]:
                conn.execute(sql, (ids[m], t)).fetchone()
            ns = []
            for m, t in asked:
                began = time.perf_counter_ns()
                conn.execute(sql, (ids[m], t)).fetchone()
                ns.append(time.perf_counter_ns() - began)
        finally:
            conn.close()
        return _run(ns)

    async def go() -> list[int]:
        conn = await asyncpg.connect(bench.url(backend))
        try:
            stmt = await conn.prepare(RAW_AT.format(m="$1", t="$2"))
            calls = [_bind_fetchrow(stmt, ids[m], t) for m, t in asked]
            ns, _ = await _timed(calls)
            return ns
        finally:
            await conn.close()

    return _run(asyncio.run(go()))


def _bind_fetchrow(stmt: Any, *args: object) -> Callable[[], Awaitable[Any]]:
    return lambda: stmt.fetchrow(*args)


def raw_month_run(bench: DeskBench, backend: str, seed: int) -> Run:
    """The month's daily rollup rows summed per task by the database alone."""
    asked = bench.random_months(seed, bench.opts.month_queries)
    ids = ",".join(str(i) for i in sorted(bench.machine_ids(backend).values()))
    if backend == "sqlite":
        bench.url(backend)
        conn = sqlite_db.connect(bench.sqlite_path, readonly=True)
        sql = RAW_MONTH.format(ids=ids, a="?", b="?")
        try:
            bounds = [(m.first.isoformat(), _next_month(m.first).isoformat()) for m in asked]
            for a, b in bounds[:WARM_UP]:
                conn.execute(sql, (a, b)).fetchall()
            ns = []
            for a, b in bounds:
                began = time.perf_counter_ns()
                conn.execute(sql, (a, b)).fetchall()
                ns.append(time.perf_counter_ns() - began)
        finally:
            conn.close()
        return _run(ns)

    async def go() -> list[int]:
        conn = await asyncpg.connect(bench.url(backend))
        try:
            stmt = await conn.prepare(RAW_MONTH.format(ids=ids, a="$1", b="$2"))
            calls = [_bind_fetch(stmt, m.first, _next_month(m.first)) for m in asked]
            ns, _ = await _timed(calls)
            return ns
        finally:
            await conn.close()

    return _run(asyncio.run(go()))


def _bind_fetch(stmt: Any, *args: object) -> Callable[[], Awaitable[Any]]:
    return lambda: stmt.fetch(*args)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _get(client: httpx.Client, path: str, params: dict[str, str]) -> tuple[int, Any]:
    began = time.perf_counter_ns()
    resp = client.get(path, params=params)
    body = resp.json()  # part of what a client pays
    took = time.perf_counter_ns() - began
    if resp.status_code != 200:
        raise BenchError(f"GET {path} {params}: {resp.status_code} {resp.text[:300]}")
    return took, body


def rest_at_run(bench: DeskBench, backend: str, seed: int) -> Run:
    """``GET /api/v1/deskmeter/at?time=<ms>&machine=<id>`` on a real gateway."""
    asked = bench.instants(seed, bench.opts.rest_at_queries)
    url = bench.gateway(backend)
    ns, answers = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        for m, t in asked[:WARM_UP]:
            _get(client, "/api/v1/deskmeter/at", {"time": str(t), "machine": m})
        for m, t in asked:
            took, body = _get(client, "/api/v1/deskmeter/at", {"time": str(t), "machine": m})
            ns.append(took)
            answers.append(
                [
                    (i["machine"], i["start_ms"], i["end_ms"], i["workspace"], i["task"], i["idle"])
                    for i in body["intervals"]
                ]
            )
    hits = bench.check_at(asked, answers)
    return _run(ns, hits=hits)


def rest_month_run(bench: DeskBench, backend: str, seed: int) -> Run:
    """``GET /api/v1/deskmeter/summary?period=month&at=<ms>&tz=Europe/Berlin&by=task``."""
    asked = bench.random_months(seed, bench.opts.rest_month_queries)
    url = bench.gateway(backend)
    ns, answers = [], []

    def params(m: Month) -> dict[str, str]:
        return {"period": "month", "at": str(m.from_ms + 43_200_000), "tz": ZONE, "by": "task"}

    with httpx.Client(base_url=url, timeout=60) as client:
        for m in asked[:WARM_UP]:
            _get(client, "/api/v1/deskmeter/summary", params(m))
        for m in asked:
            took, body = _get(client, "/api/v1/deskmeter/summary", params(m))
            if (body["from_ms"], body["to_ms"]) != (m.from_ms, m.to_ms):
                raise BenchError(f"summary of {m.first:%Y-%m} covered {body['from_ms']}..")
            ns.append(took)
            answers.append(_totals_ms(body["totals"]))
    bench.check_months(asked, answers)
    return _run(ns)


RUNS: dict[tuple[str, str], Callable[[DeskBench, str, int], Run]] = {
    ("at", "store"): store_at_run,
    ("month", "store"): store_month_run,
    ("at", "raw"): raw_at_run,
    ("month", "raw"): raw_month_run,
    ("at", "rest"): rest_at_run,
    ("month", "rest"): rest_month_run,
}


def median_of(runs: list[Run], key: str) -> float:
    return statistics.median(float(r.extra[key]) for r in runs)
