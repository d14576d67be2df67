"""``python -m bench``: measure ingest and its ceilings in one run, print them, write the docs.

    python -m bench                  all suites, 3 runs each, rewrites docs/benchmarks.md
    python -m bench --quick          1 short run each (smoke test), docs untouched
    python -m bench --only pipeline  one suite (repeatable): sqlite, grpc, pipeline, pg,
                                     pipeline-pg, archive, deskmeter, heartbeats, payments
    python -m bench --only pipeline --set warm__synchronous=normal   try a settings knob

Runs of different measurements are interleaved (A1 B1 A2 B2 ...) so that a noisy minute on
a shared machine spreads over all of them instead of skewing one. The suites ``pg``,
``pipeline-pg`` and ``archive`` need a PostgreSQL server: the machine's on 127.0.0.1:5432
if it answers, else a throwaway one (``bench.pg.pg_server``), started once for the run;
so does ``deskmeter`` (its queries run on SQLite and PostgreSQL). ``heartbeats`` needs
ActivityWatch's venv (``make aw-venv``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import archive, ingest, pg, profile, sqlite_ceiling
from bench.collector_jobs import collector_jobs
from bench.deskmeter_jobs import deskmeter_jobs, heartbeat_jobs
from bench.deskmeter_queries import DeskBench, DeskOptions
from bench.heartbeats import HeartbeatOptions
from bench.latency_jobs import latency_jobs
from bench.machine import describe
from bench.model import Measurement, Run
from bench.payments import PaymentsOptions
from bench.payments_jobs import payments_jobs
from bench.payments_report import payments_sections, update_section
from bench.procs import ROOT, BenchError
from bench.queries_jobs import queries_jobs
from bench.report import Report, now, print_report, write_json, write_markdown
from bench.rules_jobs import rules_jobs
from bench.suite import SuiteContext, SuiteJobs
from bench.targets_report import targets_section
from sysmonstm.config import WarmSettings
from sysmonstm.logs import configure_logging

SUITES = (
    "sqlite",
    "grpc",
    "pipeline",
    "pg",
    "pipeline-pg",
    "archive",
    "deskmeter",
    "heartbeats",
    "payments",
    "latency",
    "collector",
    "queries",
    "rules",
)
PG_SUITES = frozenset({"pg", "pipeline-pg", "archive", "deskmeter", "queries"})
PIPELINE_SUITES = frozenset({"pipeline", "pipeline-pg"})
SHAPES = ("live", "replay")
DOCS = ROOT / "docs" / "benchmarks.md"
CHARTS = ROOT / "docs" / "bench"  # a PNG per issue-6 target
RESULTS = ROOT / "bench" / "results"

_SHAPE_TEXT = {
    "live": "Live shape: 1 frame x 100 series per message.",
    "replay": "Replay shape: 10 frames x 100 series per message.",
}


@dataclass(frozen=True, slots=True)
class Options:
    runs: int
    sqlite_seconds: float
    ingest: ingest.IngestOptions
    profiler: str
    suites: tuple[str, ...]
    pg_seconds: float = 2.0  # timed COPY / write per PostgreSQL run
    archive_hours: int = 6  # of the simulated data sets (demo hosts, random walks)
    recording: Path = archive.RECORDING
    # fixed work per pipeline-pg run: more than into SQLite (it is faster), ~3-4 s each
    pg_batches: tuple[tuple[str, int], ...] = (("live", 200), ("replay", 110))
    desk: DeskOptions = dataclasses.field(default_factory=DeskOptions)
    heartbeats: HeartbeatOptions = dataclasses.field(default_factory=HeartbeatOptions)
    payments: PaymentsOptions = dataclasses.field(default_factory=PaymentsOptions)

    @property
    def pg_ingest(self) -> ingest.IngestOptions:
        return dataclasses.replace(self.ingest, pipeline_batches=self.pg_batches)


# the textbook narrow layouts are a reference for measured.md, not a target: one run each
_REFERENCE_RUNS = 1


@dataclass
class Job:
    """A measurement and how to take one run of it in a fresh directory (run index = seed)."""

    measurement: Measurement
    run: Callable[[Path, int], Run]
    runs: int | None = None  # the suite's own run count, if it sets one


def _sqlite_run(case: sqlite_ceiling.SqliteCase, seconds: float) -> Callable[[Path, int], Run]:
    def run(directory: Path, _seed: int) -> Run:
        return sqlite_ceiling.run_case(case, directory, seconds)

    return run


def _grpc_run(shape: str, o: ingest.IngestOptions) -> Callable[[Path, int], Run]:
    def run(directory: Path, seed: int) -> Run:
        return ingest.grpc_ceiling_run(shape, o, directory, seed)

    return run


def _pipeline_run(shape: str, o: ingest.IngestOptions) -> Callable[[Path, int], Run]:
    def run(directory: Path, seed: int) -> Run:
        return ingest.pipeline_run(shape, o, directory, seed)[0]

    return run


def _sqlite_measurement(case: sqlite_ceiling.SqliteCase, ours: bool) -> Measurement:
    sync = case.synchronous.upper()
    if case.layout == "narrow":
        return Measurement(
            key="sqlite.narrow",
            title="SQLite narrow rows + index (reference)",
            short="SQLite narrow rows + index",
            meaning=(
                "The textbook layout, as measured.md measured it: one row (ts, host, metric, "
                "value) per sample, an index on (host, metric, ts), 50,000 rows per "
                "transaction, WAL, synchronous=NORMAL. Metric names are the real canonical "
                "series keys (about 20 characters). Only executemany and COMMIT are timed. The "
                "rate falls as the table and its index outgrow the page cache, so a longer run "
                "lands lower (measured.md's figure is nearer a big table)."
            ),
            command="python -m bench --only sqlite",
            reference="measured.md: ~60-80k rows/s, 48 B/row",
        )
    knob = "the aggregator's default" if ours else "the `warm.synchronous` knob"
    return Measurement(
        key="sqlite.wide" if ours else f"sqlite.wide.{case.synchronous}",
        title=f"SQLite insert ceiling, warm-tier layout, synchronous={sync}",
        short=f"SQLite ceiling ({sync})",
        meaning=(
            "Raw inserts into the warm tier's raw partition, created by the warm tier's own "
            "code: one row per source and instant, its 100 float64 values in a blob, PRIMARY "
            "KEY (source_id, t, seq) WITHOUT ROWID, WAL. 100 sources interleaved as the "
            "aggregator writes them, one executemany and one transaction per 50,000 samples, "
            f"synchronous={sync} ({knob}). Only executemany and COMMIT are timed."
        ),
        command="python -m bench --only sqlite",
    )


def sqlite_jobs(opts: Options) -> list[Job]:
    default_sync = WarmSettings().synchronous
    cases = [sqlite_ceiling.SqliteCase("wide", default_sync)]
    cases.append(sqlite_ceiling.SqliteCase("narrow", "normal"))
    seconds = opts.sqlite_seconds
    return [
        Job(
            _sqlite_measurement(case, case == cases[0]),
            _sqlite_run(case, seconds),
            _REFERENCE_RUNS if case.layout == "narrow" else None,
        )
        for case in cases
    ]


def grpc_jobs(opts: Options) -> list[Job]:
    o = opts.ingest
    jobs = []
    for shape in SHAPES:
        meaning = (
            f"{_SHAPE_TEXT[shape]} {o.hosts} bidi streams (one channel each) from bench.loadgen "
            "to bench.grpc_sink, a grpc.aio server in its own process that parses every "
            f"MetricBatch (FromString) and acks it; at most {o.window} un-acked batches per "
            f"stream; {o.sink_seconds:g} s of sending, then the drain to the last ack."
        )
        m = Measurement(
            key=f"grpc.{shape}",
            title=f"gRPC streaming ceiling, {shape}",
            short=f"gRPC ceiling, {shape}",
            meaning=meaning,
            command=f"python -m bench --only grpc, which runs: "
            f"{ingest.grpc_ceiling_command(shape, o)}",
            reference=(
                "measured.md: ~340k samples/s (client streaming, 100 bare doubles/message)"
                if shape == "live"
                else ""
            ),
        )
        jobs.append(Job(m, _grpc_run(shape, o)))
    return jobs


def pipeline_jobs(opts: Options) -> list[Job]:
    o = opts.ingest
    jobs = []
    for shape in SHAPES:
        n = o.batches_for(shape)
        knobs = ", ".join(f"{k}={v}" for k, v in o.settings) or "default settings"
        meaning = (
            f"{_SHAPE_TEXT[shape]} A real `sysmonstm aggregator` ({knobs}, empty data "
            f"directory) fed by {o.hosts} simulated collectors in another process, each on its "
            f"own bidi stream sending {n} batches once (sequences 1..{n}, frames 1 s apart, "
            f"all within the last hour), at most {o.window} un-acked. From the first timed "
            "send to the last ack; afterwards the SQLite file is checked: every sample stored "
            "exactly once."
        )
        m = Measurement(
            key=f"pipeline.{shape}",
            title=f"Pipeline into SQLite, {shape}",
            short=f"pipeline, {shape}",
            meaning=meaning,
            command=f"python -m bench --only pipeline, which runs: "
            f"{ingest.pipeline_command(shape, o)}",
            ceilings=(f"grpc.{shape}", "sqlite.wide"),
            bytes_ceilings=("sqlite.wide",),
        )
        jobs.append(Job(m, _pipeline_run(shape, o)))
    return jobs


# -- PostgreSQL --------------------------------------------------------------------------------

_PG_FACTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "pg.wide": (
        ("heap, bytes per sample", "heap_bytes_per_sample", ".2f"),
        (
            "primary key btree (source_id, t, seq), bytes per sample",
            "key_btree_bytes_per_sample",
            ".2f",
        ),
        ("BRIN on t, bytes per sample", "brin_bytes_per_sample", ".4f"),
    ),
    "pg.warm.live": (
        ("raw partitions alone, bytes per sample", "raw_bytes_per_sample", ".2f"),
        (
            "one `rollup()` afterwards, over everything written, samples/s",
            "rollup_samples_per_s",
            "rate",
        ),
    ),
}
_PG_FACTS["pg.warm.replay"] = _PG_FACTS["pg.warm.live"]
_PG_REFERENCE = {
    "pg.wide": "measured.md: ~2.2M samples/s; ~10.5 B per sample",
    "pg.narrow": "measured.md: ~150k rows/s in 5k batches, ~190k in 50k batches; ~95 B per row",
}


def _pg_run(case: pg.PgCase, server: pg.PgServer, seconds: float) -> Callable[[Path, int], Run]:
    def run(_directory: Path, _seed: int) -> Run:
        return pg.run_case(case, server, seconds)

    return run


def _pg_measurement(case: pg.PgCase, opts: Options) -> Measurement:
    warm = case.key.startswith("pg.warm.")
    return Measurement(
        key=case.key,
        title=case.title,
        short=case.title.replace("PostgreSQL", "PG").replace(", warm-tier layout", ""),
        meaning=f"{case.meaning} {opts.pg_seconds:g} s of timed work per run, in a fresh database.",
        command=f"python -m bench --only pg; each case once: python -m bench.pg --seconds "
        f"{opts.pg_seconds:g}",
        reference=_PG_REFERENCE.get(case.key, ""),
        ceilings=("pg.wide",) if warm else (),
        bytes_ceilings=("pg.wide",) if warm else (),
        facts=_PG_FACTS.get(case.key, ()),
    )


def pg_jobs(opts: Options, server: pg.PgServer) -> list[Job]:
    return [
        Job(
            _pg_measurement(case, opts),
            _pg_run(case, server, opts.pg_seconds),
            _REFERENCE_RUNS if case.key == "pg.narrow" else None,
        )
        for case in pg.CASES
    ]


def _pipeline_pg_run(
    shape: str, o: ingest.IngestOptions, server: pg.PgServer
) -> Callable[[Path, int], Run]:
    def run(directory: Path, seed: int) -> Run:
        return ingest.pipeline_run(shape, o, directory, seed, pg=server)[0]

    return run


def pipeline_pg_jobs(opts: Options, server: pg.PgServer) -> list[Job]:
    o = opts.pg_ingest
    jobs = []
    if "pg" not in opts.suites:  # the COPY ceiling it is compared with, in this run too
        wide = next(c for c in pg.CASES if c.key == "pg.wide")
        jobs.append(Job(_pg_measurement(wide, opts), _pg_run(wide, server, opts.pg_seconds)))
    for shape in SHAPES:
        n = o.batches_for(shape)
        knobs = ", ".join(f"{k}={v}" for k, v in o.settings) or "otherwise default settings"
        meaning = (
            f"{_SHAPE_TEXT[shape]} A real `sysmonstm aggregator` with its warm tier in a fresh "
            f"PostgreSQL database ({knobs}) fed by {o.hosts} simulated collectors in another "
            f"process, each on its own bidi stream sending {n} batches once (sequences 1..{n}, "
            f"frames 1 s apart, all within the last hour), at most {o.window} un-acked. From "
            "the first timed send to the last ack; afterwards the database is queried: every "
            "sample stored exactly once (one `raw` row per frame sent, no time twice, all "
            "values, first and last times, each source's `stored_seq` the last batch sent)."
        )
        m = Measurement(
            key=f"pipeline-pg.{shape}",
            title=f"Pipeline into PostgreSQL, {shape}",
            short=f"pipeline PG, {shape}",
            meaning=meaning,
            command=f"python -m bench --only pipeline-pg, which runs: "
            f"{ingest.pipeline_command(shape, o, server)}",
            ceilings=(f"grpc.{shape}", "pg.wide", f"pg.warm.{shape}"),
            bytes_ceilings=("pg.wide",),
            facts=(("raw partitions alone, bytes per sample", "raw_bytes_per_sample", ".2f"),),
        )
        jobs.append(Job(m, _pipeline_pg_run(shape, o, server)))
    return jobs


# -- the cold tier -------------------------------------------------------------------------------


def _datasets(opts: Options) -> list[tuple[str, Callable[[], archive.Dataset]]]:
    """Data sets by name, each built once (lazily: only when a run needs it)."""
    seconds = opts.archive_hours * 3600
    return [
        ("recorded", functools.cache(lambda: archive.recorded(opts.recording))),
        ("walks", functools.cache(lambda: archive.walks(seconds=seconds))),
    ]


_DATASET_TEXT = {
    "recorded": "this machine's real collector (`HostSampler`) at 1 s, as recorded by "
    "`python -m bench.archive record`",
    "demo": "2 simulated demo hosts (`DemoHost`: per-core CPU, memory, disks, NICs as "
    "mean-reverting walks, counters as rates) at 1 s",
    "walks": "full-precision random walks (the ingest benchmark's values), 100 series at 1 s",
}


def archive_jobs(opts: Options, server: pg.PgServer) -> list[Job]:
    jobs = []
    hours = f"--hours {opts.archive_hours}"
    for name, data in _datasets(opts):
        where = (
            f"{archive.RECORDING_NOTE}, kept in the repository as "
            f"{opts.recording.relative_to(ROOT)}"
            if opts.recording == archive.RECORDING
            else f"the recording {opts.recording}"
        )
        source = where if name == "recorded" else f"{opts.archive_hours} h"
        alone = f"python -m bench.archive --pg --only {name}" + (
            "" if name == "recorded" else f" {hours}"
        )
        ceiling = Measurement(
            key=f"archive.parquet.{name}",
            title=f"Parquet write ceiling, {name}",
            short=f"bare Parquet, {name}",
            meaning=f"Data: {_DATASET_TEXT[name]} ({source}). Its partitions (raw and "
            "rollups), written to a fresh SQLite warm tier and exported from it as the "
            "archiver gets them (long format: domain, source, series, t, value or min, max, "
            "sum, count, last; sorted), then written by a bare "
            '`pyarrow.parquet.write_table(table, path, compression="zstd")` with the '
            "library's defaults (dictionary encoding with its fallback, 1 Mi-row groups, "
            "statistics on every column). Only `write_table` is timed; the rate and bytes "
            "count raw samples, as the archive's do.",
            facts=(("raw partitions alone, bytes per sample", "raw_bytes_per_sample", ".2f"),),
            command=f"python -m bench --only archive; the real path alone: {alone}",
            unit="samples/s written",
            reference="measured.md: Parquet (pyarrow, zstd), full-precision random walks "
            "6.5-8 B/sample; values rounded to 2 decimals ~2 B/sample"
            if name == "walks"
            else "",
        )
        real = Measurement(
            key=f"archive.{name}",
            title=f"Archive (cold tier), {name}",
            short=f"archive, {name}",
            meaning=f"Data: {_DATASET_TEXT[name]} ({source}). `SqliteWarm.write` and "
            "`rollup` into a fresh file, then the real `Archiver` into a folder archive: "
            "export each partition, choose the value encoding on a sample, write Parquet "
            "(zstd 3), read every part back and verify sizes, sha256 and content checksums, "
            "commit the manifest, drop the warm partition. The rate is raw samples per second "
            "of `Archiver.run` (raw and rollup partitions); bytes per sample are every part "
            "(raw and rollups) over raw samples. The same batches also go through "
            "`PgWarm.write` and `rollup` into a fresh PostgreSQL database, for that warm "
            "tier's bytes, and when they span less than a day, again repeated to fill one, "
            "each copy right after the previous (PostgreSQL compresses nothing across rows, "
            "so a day's bytes are a day's rows of these values and series); PostgreSQL bytes "
            "are measured once per suite, as they do not vary from run to run.",
            command=f"python -m bench --only archive; alone: {alone}",
            unit="samples/s archived",
            ceilings=(ceiling.key,),
            bytes_ceilings=(ceiling.key,),
            facts=(
                ("warm tier, SQLite file, bytes per sample", "warm_bytes_per_sample", ".2f"),
                (
                    "warm tier, PostgreSQL (every table), bytes per sample",
                    "pg_bytes_per_sample",
                    ".2f",
                ),
                (
                    "warm tier, PostgreSQL (every table), this data repeated to fill a day "
                    "when it spans less, bytes per sample",
                    "pg_day_bytes_per_sample",
                    ".2f",
                ),
                ("hours of data", "hours", ".2f"),
                (
                    "archive, raw parts alone, bytes per sample",
                    "archive_raw_bytes_per_sample",
                    ".2f",
                ),
                ("value encoding the archiver chose", "value_encoding", ""),
            ),
        )
        jobs += [
            Job(ceiling, _parquet_ceiling_run(data)),
            Job(real, _archive_run(data, server)),
        ]
    return jobs


def _parquet_ceiling_run(data: Callable[[], archive.Dataset]) -> Callable[[Path, int], Run]:
    def run(directory: Path, _seed: int) -> Run:
        return archive.parquet_ceiling_run(data(), directory)

    return run


def _archive_run(
    data: Callable[[], archive.Dataset], server: pg.PgServer
) -> Callable[[Path, int], Run]:
    def run(directory: Path, _seed: int) -> Run:
        return archive.archive_run(data(), directory, server.dsn)

    return run


def _deskmeter_jobs(
    stack: contextlib.ExitStack,
    opts: Options,
    server: pg.PgServer,
    workdir: Path,
    progress: Progress,
) -> list[Job]:
    """The deskmeter jobs, on a history generated and loaded into both backends now (once
    for all their runs; dropped when the suite ends)."""
    task = progress.add_task("deskmeter: generating and loading the history", total=None)
    bench = stack.enter_context(DeskBench(opts.desk, server, workdir))
    for backend in ("sqlite", "pg"):
        progress.update(task, description=f"deskmeter: loading the history into {backend}")
        bench.url(backend)
    progress.remove_task(task)
    return [Job(m, run) for m, run in deskmeter_jobs(bench)]


def _suite_jobs(found: SuiteJobs) -> list[Job]:
    return [Job(m, run, found.runs) for m, run in found.jobs]


def run_jobs(jobs: list[Job], runs: int, workdir: Path, progress: Progress) -> None:
    def count(job: Job) -> int:
        return runs if job.runs is None else min(runs, job.runs)

    task = progress.add_task("runs", total=sum(count(j) for j in jobs))
    for i in range(max((count(j) for j in jobs), default=0)):
        for job in (j for j in jobs if i < count(j)):
            progress.update(task, description=f"{job.measurement.short} ({i + 1}/{runs})")
            d = workdir / f"{job.measurement.key}-{i}"
            d.mkdir()
            job.measurement.runs.append(job.run(d, i))
            shutil.rmtree(d, ignore_errors=True)
            progress.advance(task)


def profiled_run(
    opts: Options, workdir: Path, server: pg.PgServer | None = None
) -> tuple[Measurement, profile.Profile | None]:
    """One more replay-shape pipeline run, with a profiler on the aggregator (its warm tier
    on ``server``, when given)."""
    d = workdir / ("profiled-pg" if server else "profiled")
    d.mkdir()
    o = opts.pg_ingest if server else opts.ingest
    run, summary = ingest.pipeline_run("replay", o, d, 99, opts.profiler, pg=server)
    tool = (
        "py-spy record --pid $AGGREGATOR_PID --threads --format raw"
        if opts.profiler == "py-spy"
        else "the aggregator under cProfile"
    )
    suite, into = ("pipeline-pg", "PostgreSQL") if server else ("pipeline", "SQLite")
    m = Measurement(
        key=f"{suite}.replay.profiled",
        title=f"Pipeline into {into}, replay, profiled",
        short=f"{suite}, replay, profiled",
        meaning="The replay-shape pipeline run once more, with a profiler attached.",
        command=f"python -m bench --only {suite}, with {tool}",
        runs=[run],
    )
    return m, summary


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            "expected SECTION__KEY=VALUE, e.g. warm__synchronous=normal"
        )
    return key, value


def parse_args(argv: list[str]) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short run each (smoke test)")
    parser.add_argument(
        "--only", action="append", choices=SUITES, help="run only this suite (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (3)")
    parser.add_argument(
        "--profiler",
        choices=("auto", "py-spy", "cprofile", "none"),
        default="auto",
        help="profile the aggregator in one extra replay run (auto: py-spy if installed)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=_setting,
        default=[],
        metavar="SECTION__KEY=VALUE",
        help="an aggregator setting for the pipeline runs (SYSMONSTM_ env form, repeatable)",
    )
    parser.add_argument(
        "--docs",
        dest="docs",
        action="store_true",
        default=None,
        help="rewrite docs/benchmarks.md (default: only for a plain full run)",
    )
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="where the temporary databases go (default: the system temp dir)",
    )
    parser.add_argument(
        "--recording",
        type=Path,
        default=archive.RECORDING,
        help="the real host recording of the archive suite (default: the one in bench/data)",
    )
    a = parser.parse_args(argv)
    base = ingest.IngestOptions(settings=tuple(a.settings))
    suites = tuple(a.only or SUITES)
    defaults = Options(0, 0.0, base, "none", suites)
    opts = Options(
        runs=a.runs or (1 if a.quick else 3),
        sqlite_seconds=2.0 if a.quick else 4.0,
        ingest=base.scaled(0.4) if a.quick else base,
        profiler=profile.choose(a.profiler) if PIPELINE_SUITES & set(suites) else "none",
        suites=suites,
        pg_seconds=1.0 if a.quick else defaults.pg_seconds,
        archive_hours=1 if a.quick else defaults.archive_hours,
        recording=a.recording.resolve(),
        pg_batches=tuple((s, max(2, round(n * 0.4))) for s, n in defaults.pg_batches)
        if a.quick
        else defaults.pg_batches,
        desk=defaults.desk.quick() if a.quick else defaults.desk,
        heartbeats=defaults.heartbeats.scaled(0.25) if a.quick else defaults.heartbeats,
        payments=defaults.payments.quick() if a.quick else defaults.payments,
    )
    a.no_docs = a.docs is False  # said so: not even the payments section is written
    if a.docs is None:
        a.docs = not a.quick and a.only is None and not a.settings and a.runs is None
    return opts, a


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so child processes and temp dirs are cleaned up."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _pg_if_needed(suites: tuple[str, ...]) -> Iterator[pg.PgServer | None]:
    if not PG_SUITES & set(suites):
        yield None
        return
    with pg.pg_server() as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = sys.argv[1:] if argv is None else argv
    opts, a = parse_args(args)
    configure_logging("warning", "console")  # the warm tiers and the archiver run in-process
    console = Console() if sys.stdout.isatty() else Console(width=132)  # logs stay readable
    clock = time.monotonic()
    tmp_parent = a.tmp or Path(tempfile.gettempdir())
    report = Report(now(), shlex.join(["python", "-m", "bench", *args]), describe(tmp_parent), [])
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with (
            _pg_if_needed(opts.suites) as server,
            tempfile.TemporaryDirectory(prefix="sysmonstm-bench-", dir=tmp_parent) as tmp,
            Progress(*columns, console=console, transient=True) as progress,
        ):
            if server is not None:
                report.machine = dataclasses.replace(
                    report.machine, postgres=pg.describe_server(server)
                )
            make_jobs: dict[str, Callable[[contextlib.ExitStack], list[Job]]] = {
                "sqlite": lambda _: sqlite_jobs(opts),
                "grpc": lambda _: grpc_jobs(opts),
                "pipeline": lambda _: pipeline_jobs(opts),
                "heartbeats": lambda _: [Job(m, run) for m, run in heartbeat_jobs(opts.heartbeats)],
                "payments": lambda _: [Job(m, run) for m, run in payments_jobs(opts.payments)],
            }
            if server is not None:
                make_jobs |= {
                    "pg": lambda _: pg_jobs(opts, server),
                    "pipeline-pg": lambda _: pipeline_pg_jobs(opts, server),
                    "archive": lambda _: archive_jobs(opts, server),
                    "deskmeter": lambda stack: _deskmeter_jobs(
                        stack, opts, server, Path(tmp), progress
                    ),
                }

            def context(stack: contextlib.ExitStack) -> SuiteContext:
                return SuiteContext(stack, Path(tmp), a.quick, server)

            make_jobs |= {
                "latency": lambda stack: _suite_jobs(latency_jobs(context(stack))),
                "collector": lambda stack: _suite_jobs(collector_jobs(context(stack))),
                "rules": lambda stack: _suite_jobs(rules_jobs(context(stack))),
            }
            if server is not None:
                make_jobs["queries"] = lambda stack: _suite_jobs(queries_jobs(context(stack)))
            for suite in (s for s in SUITES if s in opts.suites):
                suite_start = time.monotonic()
                with contextlib.ExitStack() as suite_resources:
                    jobs = make_jobs[suite](suite_resources)
                    run_jobs(jobs, opts.runs, Path(tmp), progress)
                report.measurements += [j.measurement for j in jobs]
                report.suite_seconds[suite] = time.monotonic() - suite_start
            if opts.profiler != "none":
                # one profile: into PostgreSQL when that suite ran (budget: issue 6, 15 min)
                profiled = [s for s in SUITES if s in PIPELINE_SUITES & set(opts.suites)]
                for suite in profiled[-1:]:
                    progress.add_task(f"{suite}: aggregator under {opts.profiler}", total=None)
                    on = server if suite == "pipeline-pg" else None
                    report.profiles.append(profiled_run(opts, Path(tmp), on))
    except BenchError as exc:
        console.print(f"[red]benchmark failed:[/red] {exc}")
        return 1
    except KeyboardInterrupt:  # child processes and temp dirs are gone by now
        console.print("[yellow]interrupted[/yellow]")
        return 130
    report.runtime_s = time.monotonic() - clock
    print_report(report, console)
    saved = write_json(report, RESULTS)
    console.print(f"raw results: {saved.relative_to(ROOT)}; took {report.runtime_s:.0f} s")
    if a.docs:
        write_markdown(report, DOCS, targets_section(report, CHARTS, DOCS))
        console.print(f"wrote {DOCS.relative_to(ROOT)}")
    if "payments" in opts.suites and not a.no_docs and not a.quick:
        # the payment hub's section alone, between its markers (issue 5, Done-when 7)
        started = f"{report.started:%Y-%m-%d %H:%M} UTC"
        update_section(DOCS, payments_sections(report, started, report.command))
        console.print(f"wrote the payments section of {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
