"""``python -m bench``: measure ingest and its ceilings in one run, print them, write the docs.

    python -m bench                  all suites, 3 runs each, rewrites docs/benchmarks.md
    python -m bench --quick          1 short run each (smoke test), docs untouched
    python -m bench --only pipeline  one suite (sqlite, grpc, pipeline; repeatable)
    python -m bench --only pipeline --set warm__synchronous=normal   try a settings knob

Runs of different measurements are interleaved (A1 B1 A2 B2 ...) so that a noisy minute on
a shared machine spreads over all of them instead of skewing one.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import ingest, profile, sqlite_ceiling
from bench.machine import describe
from bench.model import Measurement, Run
from bench.procs import ROOT, BenchError
from bench.report import Report, now, print_report, write_json, write_markdown
from sysmonstm.config import WarmSettings

SUITES = ("sqlite", "grpc", "pipeline")
SHAPES = ("live", "replay")
DOCS = ROOT / "docs" / "benchmarks.md"
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


@dataclass
class Job:
    """A measurement and how to take one run of it in a fresh directory (run index = seed)."""

    measurement: Measurement
    run: Callable[[Path, int], Run]


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
    if default_sync != "normal":
        cases.append(sqlite_ceiling.SqliteCase("wide", "normal"))
    cases.append(sqlite_ceiling.SqliteCase("narrow", "normal"))
    seconds = opts.sqlite_seconds
    return [
        Job(
            _sqlite_measurement(case, case == cases[0]),
            _sqlite_run(case, seconds),
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
        )
        jobs.append(Job(m, _pipeline_run(shape, o)))
    return jobs


def run_jobs(jobs: list[Job], runs: int, workdir: Path, progress: Progress) -> None:
    task = progress.add_task("runs", total=runs * len(jobs))
    for i in range(runs):
        for job in jobs:
            progress.update(task, description=f"{job.measurement.short} ({i + 1}/{runs})")
            d = workdir / f"{job.measurement.key}-{i}"
            d.mkdir()
            job.measurement.runs.append(job.run(d, i))
            shutil.rmtree(d, ignore_errors=True)
            progress.advance(task)


def profiled_run(opts: Options, workdir: Path) -> tuple[Measurement, profile.Profile | None]:
    """One more replay-shape pipeline run, with a profiler on the aggregator."""
    d = workdir / "profiled"
    d.mkdir()
    run, summary = ingest.pipeline_run("replay", opts.ingest, d, 99, opts.profiler)
    tool = (
        "py-spy record --pid $AGGREGATOR_PID --threads --format raw"
        if opts.profiler == "py-spy"
        else "the aggregator under cProfile"
    )
    m = Measurement(
        key="pipeline.replay.profiled",
        title="Pipeline into SQLite, replay, profiled",
        short="pipeline, replay, profiled",
        meaning="The replay-shape pipeline run once more, with a profiler attached.",
        command=f"python -m bench --only pipeline, with {tool}",
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
    a = parser.parse_args(argv)
    base = ingest.IngestOptions(settings=tuple(a.settings))
    suites = tuple(a.only or SUITES)
    opts = Options(
        runs=a.runs or (1 if a.quick else 3),
        sqlite_seconds=2.0 if a.quick else 5.0,
        ingest=base.scaled(0.4) if a.quick else base,
        profiler=profile.choose(a.profiler) if "pipeline" in suites else "none",
        suites=suites,
    )
    if a.docs is None:
        a.docs = not a.quick and a.only is None and not a.settings and a.runs is None
    return opts, a


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so child processes and temp dirs are cleaned up."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = sys.argv[1:] if argv is None else argv
    opts, a = parse_args(args)
    console = Console() if sys.stdout.isatty() else Console(width=132)  # logs stay readable
    clock = time.monotonic()
    tmp_parent = a.tmp or Path(tempfile.gettempdir())
    report = Report(now(), shlex.join(["python", "-m", "bench", *args]), describe(tmp_parent), [])
    make_jobs = {"sqlite": sqlite_jobs, "grpc": grpc_jobs, "pipeline": pipeline_jobs}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="sysmonstm-bench-", dir=tmp_parent) as tmp,
            Progress(*columns, console=console, transient=True) as progress,
        ):
            for suite in (s for s in SUITES if s in opts.suites):
                jobs = make_jobs[suite](opts)
                run_jobs(jobs, opts.runs, Path(tmp), progress)
                report.measurements += [j.measurement for j in jobs]
            if opts.profiler != "none":
                progress.add_task(f"aggregator under {opts.profiler}, replay", total=None)
                report.profile_run, report.profile = profiled_run(opts, Path(tmp))
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
        write_markdown(report, DOCS)
        console.print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
