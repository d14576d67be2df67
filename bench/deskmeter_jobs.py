"""The measurements of the ``deskmeter`` and ``heartbeats`` suites, and how to take a run of each.

``python -m bench`` wraps each ``(Measurement, run)`` pair in a ``Job``; ``run(directory,
seed)`` takes one run. The deskmeter runs read the history a ``DeskBench`` loaded once for
the suite; the heartbeat runs start their servers fresh in ``directory``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench import aw_server, heartbeats
from bench.deskmeter_queries import (
    RAW_AT,
    RAW_MONTH,
    RUNS,
    WARM_UP,
    ZONE,
    DeskBench,
    DeskOptions,
)
from bench.heartbeats import Case, HeartbeatOptions
from bench.model import Measurement, Run
from bench.procs import BenchError
from sysmonstm.domains.deskmeter.watcher import MERGE

RunFn = Callable[[Path, int], Run]
_BACKEND = {"sqlite": "SQLite", "pg": "PostgreSQL"}
_LATENCY_FACTS = (
    ("p99, ms", "p99_ms", ".3f"),
    ("mean, ms", "mean_ms", ".3f"),
    ("slowest query, ms", "max_ms", ".2f"),
    ("queries per run", "queries", ".0f"),
)
_AT_FACTS = (
    ("instants that fell inside an interval (the rest: machine off)", "hits", ".0f"),
    ("`at(t)` over every machine (3 lookups), p50, ms", "every_machine_p50_ms", ".3f"),
    ("`at(t)` over every machine (3 lookups), p99, ms", "every_machine_p99_ms", ".3f"),
)
_HISTORY_FACTS = (
    ("history: intervals", "history_intervals", ",.0f"),
    ("history: daily rollup rows", "history_day_rows", ",.0f"),
    ("history: watcher events it stands for", "history_events", ",.0f"),
    ("history: database bytes (every table of the file / database)", "db_bytes", ",.0f"),
    ("history: bulk load, seconds (once per `python -m bench`)", "load_seconds", ".1f"),
)


def _desk_text(opts: DeskOptions) -> str:
    s = opts.spec
    zones = ", ".join(p.time_zone for p in s.machines)
    return (
        f"History: {s.years:g} years of synthetic desktop days on {len(s.machines)} machines "
        f"({zones}), a workspace switch every {s.mean_dwell_s:g} s on average during work "
        f"hours, idle breaks, nights off, lighter weekends (bench.deskmeter_history, seed "
        f"{s.seed}), loaded once per backend through the stores' own write code "
        "(bench.deskmeter_load); PostgreSQL in a fresh database."
    )


def _desk_measurement(question: str, kind: str, backend: str, opts: DeskOptions) -> Measurement:
    db = _BACKEND[backend]
    key = f"deskmeter.{question}.{kind}.{backend}"
    raw, store = f"deskmeter.{question}.raw.{backend}", f"deskmeter.{question}.store.{backend}"
    n = {
        ("at", "store"): opts.at_queries,
        ("at", "raw"): opts.at_queries,
        ("at", "rest"): opts.rest_at_queries,
        ("month", "store"): opts.month_queries,
        ("month", "raw"): opts.month_queries,
        ("month", "rest"): opts.rest_month_queries,
    }[(question, kind)]
    if question == "at":
        asked = f"{n} random instants over the whole history, each on a random machine"
        what = {
            "raw": (
                "Raw indexed lookup",
                "the bare index probe `"
                + RAW_AT.format(m="?", t="?")
                + "` with the same driver, no pool or transaction",
            ),
            "store": (
                "Deskmeter at(t, machine), store",
                "`IntervalStore.at(t, machine)` in "
                "process, as the gateway calls it (a fresh store instance per run)",
            ),
            "rest": (
                "Deskmeter at over REST",
                "`GET /api/v1/deskmeter/at?time=<ms>&machine="
                "<id>` on a real `sysmonstm gateway` (keep-alive httpx client, JSON decoded)",
            ),
        }[kind]
    else:
        asked = f"{n} random whole calendar months (in {ZONE}) of the history, every machine"
        what = {
            "raw": (
                "Raw month of daily rollups per task",
                "the bare `"
                + RAW_MONTH.format(ids="…", a="?", b="?")
                + "` over the month's local days (edges not cut at "
                "the month's instants), same driver, no pool or transaction",
            ),
            "store": (
                "Deskmeter month by task, store",
                "`IntervalStore.summary(month, "
                "SummaryBy.TASK)` in process (whole local days from the rollups, the "
                "edges from the intervals, per machine)",
            ),
            "rest": (
                "Deskmeter month by task over REST",
                "`GET /api/v1/deskmeter/summary?"
                f"period=month&at=<ms>&tz={ZONE}&by=task` on a real gateway",
            ),
        }[kind]
    title, how = what
    checked = (
        ""
        if kind == "raw"
        else (" Every answer is checked against the generated history after the clock stopped.")
    )
    facts: tuple[tuple[str, str, str], ...] = _LATENCY_FACTS
    if kind == "store":
        facts = facts + (_AT_FACTS if question == "at" else ()) + _HISTORY_FACTS
    elif kind == "rest" and question == "at":
        facts = facts + _AT_FACTS[:1]
    return Measurement(
        key=key,
        title=f"{title}, {db}",
        short=f"{question} {kind} {backend}",
        meaning=f"{how}; {asked}; {_desk_text(opts)} Each query timed alone, after "
        f"{WARM_UP} untimed ones; the figure is the median, p99 beside it.{checked}",
        command="python -m bench --only deskmeter",
        unit="ms p50",
        ceilings=() if kind == "raw" else ((raw,) if kind == "store" else (store, raw)),
        facts=facts,
        reference=_reference(question, kind),
    )


def _reference(question: str, kind: str) -> str:
    if kind == "raw":
        return ""
    target = "issue 6 target: p99 <= 20 ms"
    if question == "month":
        target += "; measured.md: aw-server's 30-day per-app summary over 200k events takes ~9.4 s"
    return target


def _desk_run(bench: DeskBench, question: str, kind: str, backend: str) -> RunFn:
    fn = RUNS[(question, kind)]

    def run(_directory: Path, seed: int) -> Run:
        return fn(bench, backend, seed)

    return run


def deskmeter_jobs(bench: DeskBench) -> list[tuple[Measurement, RunFn]]:
    out = []
    for question in ("at", "month"):
        for backend in ("sqlite", "pg"):
            for kind in ("raw", "store", "rest"):
                m = _desk_measurement(question, kind, backend, bench.opts)
                out.append((m, _desk_run(bench, question, kind, backend)))
    return out


# -- heartbeats --------------------------------------------------------------------------------

_PATH_TITLE = {
    "aw": "aw-server (ActivityWatch) heartbeats",
    "api0": "sysmonstm /api/0 heartbeats",
    "watcher": "Native path, the watcher's spool and sender, a burst",
    "replay": "Native path, the watcher's spool replayed after an outage",
    "single": "Native DeskBatch stream, every heartbeat its own message",
    "sink-single": "gRPC ceiling, every heartbeat its own DeskBatch",
}
_NATIVE = (
    "a real `sysmonstm aggregator` (embedded default, fresh data directory); each source runs "
    "the watcher's own code (`Outbox.send`: every event a `DeskBatch` in its `Spool`, a "
    f"`StreamSender` with the watcher's options, merging up to {MERGE:,} spooled events per "
    "message when they pile up; a live event goes out alone at once)"
)
_PATH_TEXT = {
    "aw": "ActivityWatch's own server, aw-server {version} from PyPI (its own venv, `--testing`, "
    "its SQLite database in a fresh home), `POST /api/0/buckets/<id>/heartbeat?pulsetime=2`",
    "api0": "sysmonstm's ActivityWatch API on a real `sysmonstm gateway` (embedded default: "
    "SQLite warm tier, synchronous=FULL, fresh data directory), the same requests",
    "watcher": f"{_NATIVE}; the events come one after another as fast as the watcher's "
    "loop can spool them (it yields to the event loop after each), the sender shipping what "
    "the spool holds whenever the stream has room: the burst of a busy desktop, or many "
    "watchers' worth from one",
    "replay": f"{_NATIVE}; the events are spooled while the stream is away, then a new "
    "stream ships the backlog, as after an aggregator outage or a laptop offline",
    "single": "the same aggregator fed hand-built streams (`bench.desk_loadgen --path "
    "batches`), each heartbeat its own `DeskBatch`, at most 1,000 un-acked (the sender's "
    "window): what every heartbeat costs when each goes out alone, as a live watcher's do "
    "(one per 10 s each: the rate divided by 0.1/s is how many idle watchers one aggregator "
    "could take)",
    "sink-single": "the gRPC ceiling of those streams: the same `DeskBatch`es (one event "
    "each) into `bench.grpc_sink --domain deskmeter`, a grpc.aio server in its own process "
    "with the aggregator's server options that parses each batch and acks every 100th (the "
    "aggregator acks a whole flush at once)",
}
_CHECK_TEXT = {
    "aw": "afterwards every bucket's events are read back: exactly one merged event per run of "
    "an app, with its start and duration",
    "api0": "checked the same way",
    "watcher": "after a graceful stop the interval store in the SQLite file is read: exactly "
    "one interval per run of an app with exact bounds, watermark = the last sequence spooled",
    "replay": "checked the same way",
    "single": "checked the same way",
    "sink-single": "it keeps nothing (the load generator checks that every batch was acked)",
}
_NATIVE_FACTS = (
    ("stored (merged events or intervals), each checked", "stored", ".0f"),
    ("time they cover, s", "stored_seconds", ".0f"),
    ("messages sent", "messages", ".0f"),
    ("events per message", "events_per_message", ".1f"),
    ("server CPU per event, µs", "server_cpu_us_per_event", ".1f"),
)


def _hb_measurement(case: Case) -> Measurement:
    clients = "1 watcher" if case.sources == 1 else f"{case.sources} concurrent watchers"
    own = (
        "its own bucket or machine and connection"
        if case.sources == 1
        else "each its own bucket or machine and connection"
    )
    verb = "sends" if case.sources == 1 else "send"
    peer = f"heartbeats.aw.{case.sources}"
    text = _PATH_TEXT[case.path].format(version=aw_server.version())
    total = case.count * case.sources
    return Measurement(
        key=case.key,
        title=f"{_PATH_TITLE[case.path]}, {clients}",
        short=f"hb {case.path} x{case.sources}",
        meaning=f"{text}; {clients} ({own}) {verb} "
        f"{total:,} heartbeats in all, one a second of event time, an app change every "
        f"~20 s (bench.heartbeat_workload); the clock runs from the first to the last "
        f"answer or ack; {_CHECK_TEXT[case.path]}.",
        command=f"python -m bench --only heartbeats, which runs: {heartbeats.server_command(case)}"
        f" & {heartbeats.client_command(case)}",
        unit="heartbeats/s",
        peers=() if case.path in ("aw", "sink-single") else (peer,),
        ceilings=(f"heartbeats.sink-single.{case.sources}",) if case.path == "single" else (),
        facts=()
        if case.path.startswith("sink")
        else _NATIVE_FACTS[:2]
        if case.path in ("aw", "api0")
        else _NATIVE_FACTS,
        reference="measured.md: aw-server ~200/s one at a time, keep-alive"
        if case.path == "aw" and case.sources == 1
        else "",
    )


def _hb_run(case: Case) -> RunFn:
    def run(directory: Path, _seed: int) -> Run:
        return heartbeats.run_case(case, directory)

    return run


def heartbeat_jobs(opts: HeartbeatOptions) -> list[tuple[Measurement, RunFn]]:
    if not aw_server.available():
        raise BenchError("aw-server is missing: build ActivityWatch's venv with `make aw-venv`")
    return [(_hb_measurement(c), _hb_run(c)) for c in heartbeats.cases(opts)]
