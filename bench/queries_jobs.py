"""The ``queries`` suite: series and fleet queries on 30 days of 100 hosts (issue 6, #5).

The history is built, loaded into SQLite and PostgreSQL and served by a real ``sysmonstm up``
on each once for the suite (``bench.fleet_services``); each run then times one kind of read
of one backend (``bench.fleet_queries``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.fleet_history import HistorySpec
from bench.fleet_queries import (
    RAW_FLEET_PG,
    RAW_SERIES_PG,
    RUNS,
    WARM_UP,
    FleetQueries,
    QueryOptions,
)
from bench.fleet_services import FleetServices
from bench.model import Measurement, Run
from bench.procs import BenchError
from bench.suite import RunFn, SuiteContext, SuiteJobs

COMMAND = "python -m bench --only queries"
TARGET = "issue 6 target: p99 <= 50 ms"
_BACKEND = {"sqlite": "SQLite", "pg": "PostgreSQL"}
_SETUP = {
    "sqlite": "the embedded default: `sysmonstm up --no-collect` (aggregator, rules and "
    "gateway in one process, memory hot tier, SQLite warm tier)",
    "pg": "`sysmonstm up --no-collect` on PostgreSQL (warm tier, a fresh database) and Redis "
    "(hot tier, a throwaway redis-server)",
}
_LATENCY_FACTS = (
    ("p50, ms", "p50_ms", ".3f"),
    ("mean, ms", "mean_ms", ".3f"),
    ("slowest query, ms", "max_ms", ".2f"),
    ("queries per run", "queries", ".0f"),
)
_HISTORY_FACTS = (
    ("history: raw samples (the last minutes)", "history_raw_samples", ",.0f"),
    ("history: 1-minute rows imported", "history_m1_rows", ",.0f"),
    ("history: hourly rows imported", "history_h1_rows", ",.0f"),
    ("history: buckets the rollup job wrote", "history_rolled_up_buckets", ",.0f"),
    ("history: load seconds (both backends at once, once per suite)", "load_seconds", ".1f"),
    ("partitions a 30-day read touches", "relations", ""),
    ("suite set-up (once per suite, both backends)", "setup", ""),
)


def history_text(spec: HistorySpec) -> str:
    return (
        f"History: {spec.hosts} demo hosts (`DemoHost`: the series a real collector reports, "
        f"~73 per host) over {spec.days} days, as the warm tier holds them after retention: "
        f"hourly rollup rows for the {spec.days} days, 1-minute rows for {spec.m1_hours} h "
        f"before the raw frames, raw 1 s frames for the last {spec.raw_minutes} min, rolled "
        "up by the warm tier's own job, then the minutes since streamed in over gRPC by every "
        "host (bench.fleet_history, loaded through `write`, `import_partition` and `rollup`). "
        "Left out: the raw frames of the 7 days before (4.4 billion samples for 100 hosts) and "
        f"the 1-minute rows of the {spec.days} days (313 million rows); their partitions exist, "
        "empty. A 30-day read at 1,000 points reads neither (tier 1h; the partitions it "
        "touches are listed)."
    )


def _what(question: str, kind: str, backend: str) -> tuple[str, str]:
    db = _BACKEND[backend]
    if question == "series":
        return {
            "raw": (
                f"Raw hourly rows of a 30-day series, {db}",
                f"the bare `{RAW_SERIES_PG}` (720 rows; the last hour's finer rows left out), "
                "same driver, no pool or transaction",
            ),
            "store": (
                f"30-day series at 1,000 points, store, {db}",
                "`Core.queries.range(metrics, host, series, now-30d, now, 1000)` in process, as "
                "the route calls it (a fresh Core per run)",
            ),
            "rest": (
                f"30-day series at 1,000 points over REST, {db}",
                "`GET /api/v1/series?host=<id>&series=<key>&from=-30d&points=1000` on "
                + _SETUP[backend],
            ),
        }[kind]
    return {
        "raw": (
            f"Raw newest frame of every host, {db}",
            f"the bare `{RAW_FLEET_PG}` (on SQLite the same from the newest raw table), same "
            "driver, no pool or transaction",
        ),
        "store": (
            f"Fleet overview of 100 hosts, store, {db}",
            "`hosts_overview(core)` in process (what `GET /api/v1/hosts` answers: the hot "
            "tier's sources and latest values, the warm tier's sources)",
        ),
        "rest": (
            f"Fleet overview of 100 hosts over REST, {db}",
            "`GET /api/v1/hosts` on " + _SETUP[backend],
        ),
    }[kind]


def _measurement(question: str, kind: str, backend: str, opts: QueryOptions) -> Measurement:
    title, how = _what(question, kind, backend)
    n = {
        ("series", "raw"): opts.series_queries,
        ("series", "store"): opts.series_queries,
        ("series", "rest"): opts.series_queries,
        ("fleet", "raw"): opts.raw_fleet_queries,
        ("fleet", "store"): opts.fleet_queries,
        ("fleet", "rest"): opts.fleet_queries,
    }[(question, kind)]
    asked = (
        f"{n} queries of a random host and series"
        if question == "series"
        else f"{n} queries in a row"
    )
    checked = "" if kind == "raw" else " Every answer is checked against the history."
    key = f"queries.{question}.{backend}"
    facts = _LATENCY_FACTS
    if kind == "store" and question == "series":
        facts = facts + _HISTORY_FACTS
    if kind == "rest" and question == "fleet":
        facts = (
            *facts,
            ("response bytes", "response_bytes", ",.0f"),
            ("of which the client's JSON decoding (json.loads), ms", "decode_ms", ".2f"),
        )
    return Measurement(
        key=f"{key}.{kind}",
        title=title,
        short=f"{question} {kind} {backend}",
        meaning=f"{how}; {asked}, each timed alone after {WARM_UP} untimed ones; the figure "
        f"is the p99, the p50 beside it. {history_text(opts.spec)}{checked}",
        command=COMMAND,
        unit="ms p99",
        ceilings=()
        if kind == "raw"
        else (
            (f"{key}.raw",)
            if kind == "store"
            else (
                f"{key}.store",
                f"{key}.raw",
            )
        ),
        facts=facts,
        reference="" if kind == "raw" else TARGET,
    )


def _run(q: FleetQueries, question: str, kind: str, backend: str) -> RunFn:
    fn = RUNS[(question, kind)]

    def run(_directory: Path, seed: int) -> Run:
        return fn(q, backend, seed)

    return run


def queries_jobs(ctx: SuiteContext) -> SuiteJobs:
    if ctx.pg is None:
        raise BenchError("the queries suite needs PostgreSQL")
    opts = QueryOptions().quick() if ctx.quick else QueryOptions()
    services = ctx.stack.enter_context(FleetServices(opts.spec, ctx.pg, ctx.workdir))
    services.start()
    q = FleetQueries(opts, services)
    jobs: list[tuple[Measurement, Callable[[Path, int], Run]]] = [
        (_measurement(question, kind, backend, opts), _run(q, question, kind, backend))
        for question in ("series", "fleet")
        for backend in ("sqlite", "pg")
        for kind in ("raw", "store", "rest")
    ]
    return SuiteJobs(jobs)
