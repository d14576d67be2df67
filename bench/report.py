"""Presenting a benchmark run: a rich table in the terminal, JSON, and docs/benchmarks.md.

The Markdown page is rewritten from the run's numbers, except the block between
``<!-- analysis:start -->`` and ``<!-- analysis:end -->``: that is a person's reading of the
profile, kept verbatim from the existing page (with the date it was written), because a
program should not pretend to interpret its own numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.deskmeter_report import deskmeter_sections
from bench.machine import Machine
from bench.model import Measurement
from bench.profile import Profile, source_of

ANALYSIS_START = "<!-- analysis:start -->"
ANALYSIS_END = "<!-- analysis:end -->"
_BAR_WIDTH = 40


@dataclass(slots=True)
class Report:
    """Everything one ``python -m bench`` produced."""

    started: datetime
    command: str
    machine: Machine
    measurements: list[Measurement]
    profiles: list[tuple[Measurement, Profile]] = field(default_factory=list)
    runtime_s: float = 0.0
    suite_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each suite

    def get(self, key: str) -> Measurement | None:
        return next((m for m in self.measurements if m.key == key), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "command": self.command,
            "runtime_s": self.runtime_s,
            "suite_seconds": self.suite_seconds,
            "machine": self.machine.as_dict(),
            "measurements": [m.as_json() for m in self.measurements],
            "profiles": [{"run": run.as_json(), "profile": asdict(p)} for run, p in self.profiles],
        }


def rate(value: float) -> str:
    """``1234567`` -> ``1.23 M``; ``81234`` -> ``81.2 k``."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def figure(m: Measurement, v: float) -> str:
    """A figure of ``m`` as text: a rate (``81.2 k``) or a latency in ms (``0.074``)."""
    if not m.latency:
        return rate(v)
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _spread(m: Measurement) -> str:
    return f"{figure(m, m.low)} - {figure(m, m.high)}" if len(m.runs) > 1 else "1 run"


def _bytes_value(m: Measurement) -> float | None:
    value = m.extra_median("bytes_per_sample")
    return value if value is not None else m.extra_median("db_bytes_per_sample")


def _bytes(m: Measurement) -> str:
    value = _bytes_value(m)
    return f"{value:.1f}" if value is not None else ""


# CPU used over a timed phase, in cores: (extra key, short label, label in the docs)
_CPU = (
    ("server_cpu_cores", "srv", "server (sink or aggregator)"),
    ("loadgen_cpu_cores", "gen", "load generator"),
    ("client_cpu_cores", "client", "client (the benchmark's own process)"),
    ("pg_cpu_cores", "pg", "PostgreSQL server (all its processes)"),
)


def _cpu_parts(m: Measurement) -> list[tuple[str, str, float]]:
    return [
        (short, label, value)
        for key, short, label in _CPU
        if (value := m.extra_median(key)) is not None
    ]


def _cpu(m: Measurement) -> str:
    return " / ".join(f"{v:.2f} {short}" for short, _, v in _cpu_parts(m))


def _ratios(
    report: Report, m: Measurement, keys: tuple[str, ...] | None = None
) -> list[tuple[Measurement, float]]:
    """``m``'s median over each of its ceilings' (or ``keys``') in this run."""
    found = []
    for key in m.ceilings if keys is None else keys:
        ceiling = report.get(key)
        if ceiling is not None:
            found.append((ceiling, m.median / ceiling.median))
    return found


def ratio_text(m: Measurement, c: Measurement, r: float, bold: bool = False) -> str:
    """How ``m`` compares with ceiling ``c``: a share of a rate, a multiple of a latency."""
    b = "**" if bold else ""
    if m.latency:
        unit = " ms" if c.unit.startswith("ms") else f" {c.unit}"
        return f"{b}{r:.1f}x{b} the time of {c.title} ({figure(c, c.median)}{unit})"
    return f"{b}{r:.1%}{b} of {c.title} ({rate(c.median)})"


def peer_texts(report: Report, m: Measurement, bold: bool = False) -> list[str]:
    """How many times each peer's rate ``m``'s is (same run)."""
    b = "**" if bold else ""
    return [
        f"{b}{r:.2f}x{b} {c.title} ({figure(c, c.median)})"
        if r < 1
        else f"{b}{r:.1f}x{b} {c.title} ({figure(c, c.median)})"
        for c, r in _ratios(report, m, m.peers)
    ]


def _bytes_ratios(report: Report, m: Measurement) -> list[tuple[Measurement, float]]:
    """``m``'s bytes per sample over each of its ``bytes_ceilings``' (same run)."""
    found = []
    own = _bytes_value(m)
    for key in m.bytes_ceilings:
        ceiling = report.get(key)
        theirs = _bytes_value(ceiling) if ceiling is not None else None
        if ceiling is not None and own is not None and theirs:
            found.append((ceiling, own / theirs))
    return found


def _fact(m: Measurement, key: str, spec: str) -> str:
    value = m.fact(key)
    if value is None:
        return ""
    if spec == "rate":
        return rate(float(value))
    return format(value, spec) if spec else str(value)


def print_report(report: Report, console: Console) -> None:
    table = Table(
        title=f"sysmonstm benchmarks ({report.machine.cores} cores, {report.machine.cpu}); "
        "median of runs (rates per second, latencies p50 in ms)",
        title_justify="left",
    )
    table.add_column("measurement")
    table.add_column("median", justify="right")
    table.add_column("min - max", justify="right")
    table.add_column("B/sample", justify="right")
    table.add_column("CPU cores", justify="right")
    table.add_column("vs ceilings measured in this run")
    for m in report.measurements:
        ratios = [
            f"{r:.1f}x the time of {c.short}" if m.latency else f"{r:.1%} of {c.short}"
            for c, r in _ratios(report, m)
        ]
        ratios += [f"{r:.2f}x the bytes of {c.short}" for c, r in _bytes_ratios(report, m)]
        ratios += [f"{r:.1f}x {c.short}" for c, r in _ratios(report, m, m.peers)]
        median = figure(m, m.median) + (" ms" if m.unit.startswith("ms") else "")
        table.add_row(m.short, median, _spread(m), _bytes(m), _cpu(m), "\n".join(ratios))
    console.print(table)
    for run, p in report.profiles:
        console.print(profile_table(p, run.short))


def profile_table(p: Profile, what: str = "aggregator") -> Table:
    threads = ", ".join(f"{name} {pct:.0f} %" for name, pct in p.threads.items())
    table = Table(
        title=f"{what}: aggregator profile ({p.tool}, {p.seconds:.1f} s)"
        + (f"; CPU % of a core: {threads}" if threads else ""),
        title_justify="left",
    )
    table.add_column("function (by own time)")
    table.add_column("own %", justify="right")
    table.add_column("incl. %", justify="right")
    for c in p.by_self:
        table.add_row(c.function, f"{c.self_pct:.1f}", f"{c.total_pct:.1f}")
    return table


def _bar(value: float, top: float) -> str:
    n = round(_BAR_WIDTH * value / top) if top > 0 else 0
    return "█" * max(n, 1)


def _bars(report: Report) -> list[str]:
    """Text bars: each pipeline measurement next to its ceilings, to the same scale."""
    lines: list[str] = []
    for m in report.measurements:
        if not m.ceilings:
            continue
        group = [c for c, _ in _ratios(report, m)] + [m]
        top = max(x.median for x in group)
        width = max(len(x.title) for x in group)
        lines += [
            f"{x.title:<{width}}  {_bar(x.median, top)} {figure(x, x.median)}"
            + (" ms" if x.unit.startswith("ms") else "")
            for x in group
        ]
        lines.append("")
    return lines[:-1] if lines else lines


def _runs(m: Measurement) -> str:
    return ", ".join(figure(m, r.rate) for r in m.runs)


def _analysis(existing: str) -> str:
    pattern = re.escape(ANALYSIS_START) + r"(.*?)" + re.escape(ANALYSIS_END)
    found = re.search(pattern, existing, flags=re.DOTALL)
    body = (
        found.group(1).strip()
        if found
        else ("_Not written yet: read the profile above and say what limits the pipeline._")
    )
    return f"{ANALYSIS_START}\n{body}\n{ANALYSIS_END}"


def _machine_rows(machine: Machine) -> list[str]:
    rows = [
        ("CPU", f"{machine.cpu}, {machine.cores} cores"),
        ("RAM", f"{machine.ram_gib} GiB"),
        ("OS", f"{machine.os}, Linux {machine.kernel}"),
        ("Python", machine.python),
        ("SQLite", machine.sqlite),
        ("grpcio / protobuf / numpy", f"{machine.grpcio} / {machine.protobuf} / {machine.numpy}"),
        ("pyarrow", machine.pyarrow),
        ("databases written to", machine.temp_fs),
    ]
    if machine.postgres:
        rows.append(("PostgreSQL", machine.postgres))
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _result_rows(report: Report) -> list[str]:
    rows = [
        "| measurement | median | min - max (runs) | bytes/sample | compared with (same run) |",
        "|---|---:|---:|---:|---|",
    ]
    for m in report.measurements:
        ratios = "; ".join(
            [ratio_text(m, c, r, bold=True) for c, r in _ratios(report, m)]
            + peer_texts(report, m, bold=True)
        )
        rows.append(
            f"| {m.title} | **{figure(m, m.median)} {m.unit}** | {_spread(m)} "
            f"({len(m.runs)}) | {_bytes(m)} | {ratios or m.reference} |"
        )
    return rows


def _bytes_rows(report: Report) -> list[str]:
    """Every measurement that stored something: its bytes per sample beside its ceilings'."""
    rows = [
        "| stored by | bytes/sample | compared with (same run) |",
        "|---|---:|---|",
    ]
    for m in report.measurements:
        if _bytes_value(m) is None:
            continue
        ratios = "; ".join(
            f"**{r:.2f}x** {c.title} ({_bytes(c)})" for c, r in _bytes_ratios(report, m)
        )
        rows.append(f"| {m.title} | **{_bytes(m)}** | {ratios} |")
    return rows if len(rows) > 2 else []


_COLD = (
    ("warm, SQLite file", "warm_bytes_per_sample"),
    ("warm, SQLite raw tables", "warm_raw_bytes_per_sample"),
    ("warm, PostgreSQL tier", "pg_bytes_per_sample"),
    ("warm, PostgreSQL raw partitions", "pg_raw_bytes_per_sample"),
    ("warm, PostgreSQL rollup partitions", "pg_rollup_bytes_per_sample"),
    ("warm, PostgreSQL, repeated to a day", "pg_day_bytes_per_sample"),
    ("archive, raw", "archive_raw_bytes_per_sample"),
    ("archive, raw + rollups", "archive_bytes_per_sample"),
)


def _cold_rows(report: Report) -> list[str]:
    """The archive measurements: bytes per raw sample in each tier, for the same data."""
    cold = [m for m in report.measurements if m.key.startswith("archive.") and m.bytes_ceilings]
    if not cold:
        return []
    rows = [
        "| data | " + " | ".join(label for label, _ in _COLD) + " | bare pyarrow, raw "
        "| bare pyarrow, raw + rollups | archive ÷ warm (SQLite; PostgreSQL) "
        "| value encoding chosen |",
        "|---|" + "---:|" * (len(_COLD) + 3) + "---|",
    ]
    for m in cold:
        cells = [_fact(m, key, ".2f") for _, key in _COLD]
        bare = report.get(m.bytes_ceilings[0])
        bare_raw = _fact(bare, "raw_bytes_per_sample", ".2f") if bare else ""
        archive = m.fact("archive_bytes_per_sample")
        shares = [
            f"{archive / warm:.0%}"
            for key in ("warm_bytes_per_sample", "pg_bytes_per_sample")
            if archive is not None and (warm := m.fact(key))
        ]
        rows.append(
            f"| {_fact(m, 'data', '') or m.short} | "
            + " | ".join(cells)
            + f" | {bare_raw} | {_bytes(bare) if bare else ''} | {'; '.join(shares)} "
            f"| {_fact(m, 'value_encoding', '')} |"
        )
    return rows


def _details(report: Report) -> list[str]:
    out: list[str] = []
    for m in report.measurements:
        out += [
            f"### {m.title}",
            "",
            m.meaning,
            "",
            f"- command: `{m.command}`",
            f"- runs: {_runs(m)} {m.unit}",
        ]
        cpu = _cpu_parts(m)
        if cpu:
            used = ", ".join(f"{label} {v:.2f}" for _, label, v in cpu)
            out.append(f"- CPU used over the timed phase, in cores: {used}")
        for label, key, spec in m.facts:
            value = _fact(m, key, spec)
            if value:
                out.append(f"- {label}: {value}")
        for c, r in _ratios(report, m):
            out.append(
                f"- {ratio_text(m, c, r)}, this run"
                if m.latency
                else f"- {r:.1%} of {c.title} ({rate(c.median)} {c.unit}, this run)"
            )
        out += [f"- {text}, this run" for text in peer_texts(report, m)]
        if _bytes_value(m) is not None:
            out.append(f"- bytes per sample: {_bytes(m)}")
        for c, r in _bytes_ratios(report, m):
            out.append(f"- {r:.2f}x the bytes per sample of {c.title} ({_bytes(c)}, this run)")
        if m.reference:
            out.append(f"- reference: {m.reference}")
        out.append("")
    return out


_CAPTION_SQLITE = (
    "A line that calls native code is charged with all of it, waiting included: `COMMIT` "
    "includes its fsync and any WAL checkpoint, `context.write` the gRPC core's work."
)
_CAPTION_PG = (
    "The warm tier's work is mostly in the PostgreSQL server's processes, which py-spy does "
    "not see (their CPU is in the pipeline measurement above); on the aggregator's side "
    "asyncpg's I/O is awaited, so time spent waiting for the server is left out with the "
    "event loop's idle time. A line that calls native code is charged with all of it."
)


def _profile_section(report: Report) -> list[str]:
    if not report.profiles:
        return ["_No profile in this run._", ""]
    out: list[str] = []
    for run, p in report.profiles:
        threads = ", ".join(f"{name} {pct:.0f} %" for name, pct in p.threads.items())
        caption = _CAPTION_PG if run.key.startswith("pipeline-pg") else _CAPTION_SQLITE
        out += [
            f"### {run.title}",
            "",
            f"A separate replay-shape run ({rate(run.median)} samples/s with the profiler "
            f"attached; command: `{run.command}`), profiled with {p.tool} over "
            f"{p.seconds:.1f} s."
            + (
                f" CPU per thread (kernel counters), in % of one core: {threads}."
                if threads
                else ""
            ),
            "",
            f"Shares below are of one core's wall time. {caption} Samples in which a thread "
            "only waited for work are left out.",
            "",
            "| function (by own time) | own % of a core | incl. callees |",
            "|---|---:|---:|",
            *(f"| `{c.function}` | {c.self_pct:.1f} | {c.total_pct:.1f} |" for c in p.by_self),
            "",
            "| our function (by time including callees) | incl. % of a core |",
            "|---|---:|",
            *(f"| `{c.function}` | {c.total_pct:.1f} |" for c in p.by_total),
            "",
            *(_line_rows(p) if p.by_line else []),
        ]
    return out


def _line_rows(p: Profile) -> list[str]:
    rows = ["| source line (by own time) | code | own % of a core |", "|---|---|---:|"]
    for c in p.by_line:
        code = source_of(c.function).replace("|", "\\|")
        rows.append(f"| `{c.function}` | {f'`{code}`' if code else ''} | {c.self_pct:.1f} |")
    return [*rows, ""]


_HOW_TO_READ = (
    "How to read it: a sample is one value of one series at one instant. The pipeline "
    "figures are whole-system throughput: 100 simulated collectors in another process "
    "each send their first batch and wait for its ack (the aggregator learns the source), "
    "then the clock runs from the first send to the last ack covering everything. The "
    "load generator is the same for the gRPC ceiling and both pipelines, so they differ "
    "only by the server. The PostgreSQL figures use the server named above; a pipeline into "
    "PostgreSQL is checked by querying the database afterwards, as the SQLite one is by "
    "reading the file. CPU columns are cores used over the timed phase: by the server "
    "(sink or aggregator), the load generator, the benchmark's own process (a PostgreSQL "
    "client) and all of the PostgreSQL server's processes (the machine has two cores)."
)
_BYTES_TEXT = (
    "Bytes per sample: SQLite, the database file after a checkpoint; PostgreSQL, "
    "`pg_total_relation_size` (heap, TOAST, indexes) of every table of the database; both "
    "divided by the raw samples stored. For the pipelines and `PgWarm.write` that includes "
    "the rollups, series and layouts; the ceilings hold raw rows only."
)
_COLD_TEXT = (
    "The same data in each tier, bytes per raw sample: the warm tier (SQLite file and its raw "
    "tables; PostgreSQL, every table and the raw partitions alone, after `write` and "
    "`rollup`), the archive the real `Archiver` wrote from the SQLite warm tier (Parquet "
    "parts of the raw partitions, and with the rollup partitions), and the same partitions "
    'written by a bare `pyarrow.parquet.write_table(compression="zstd")` (pyarrow\'s '
    "default encodings: the reference the archive's encoding choice is measured against)."
)


def write_markdown(report: Report, path: Path, targets: list[str] | None = None) -> None:
    """The whole page; ``targets`` is the *Targets* section's lines (bench.targets_report)."""
    existing = path.read_text() if path.exists() else ""
    m = report.machine
    bytes_rows, cold_rows = _bytes_rows(report), _cold_rows(report)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (`make bench`); only the *What limits it* section is "
        "written by hand. Every ratio compares numbers measured in the same run, on the "
        "same machine, minutes apart.",
        "",
        f"Run: {report.started:%Y-%m-%d %H:%M} UTC, `{report.command}`, "
        f"{report.runtime_s:.0f} s in all ({_suite_times(report)}). Each figure is the "
        "median of its runs, with the lowest and highest run beside it.",
        "",
        "Run it with `make bench` or `python -m bench` (under 15 minutes on the 2-core "
        "reference machine; it rewrites this page). `python -m bench --quick` takes one "
        "short run of each (a smoke test, page "
        "untouched); `--only sqlite|grpc|pipeline|pg|pipeline-pg|archive|deskmeter|heartbeats|"
        "payments|latency|collector|queries|rules` runs one suite "
        "(repeatable); `--set warm__synchronous=normal` (any `SYSMONSTM_` setting, repeatable) "
        "tries an aggregator knob; `--profiler py-spy|cprofile|none` picks the profiler "
        "(py-spy, if installed, needs no change to the aggregator). PostgreSQL is the "
        "machine's server on 127.0.0.1:5432 when it answers (trust auth, user postgres), else "
        "a throwaway one from `tests/servers.py` (`SYSMONSTM_TEST_OWN_SERVERS=1` forces that); "
        "every run gets a fresh database, dropped afterwards. Raw numbers of every run go to "
        "`bench/results/` (not committed). The heartbeats suite races ActivityWatch's own "
        "aw-server, from the separate venv `make aw-venv` builds; the collector suite runs "
        "Glances (`make glances-venv`) and Debian's prometheus-node-exporter beside our "
        "collector (`make bench` builds and installs all three).",
        "",
        *(targets or []),
        "## Machine",
        "",
        *_machine_rows(m),
        "",
        "## Results",
        "",
        *_result_rows(report),
        "",
        "```text",
        *_bars(report),
        "```",
        "",
        _HOW_TO_READ,
        "",
    ]
    if bytes_rows:
        lines += ["### Bytes per sample", "", *bytes_rows, "", _BYTES_TEXT, ""]
    if cold_rows:
        lines += ["### Warm and cold tiers, same data", "", *cold_rows, "", _COLD_TEXT, ""]
    lines += deskmeter_sections(report)
    lines += [
        "## Each measurement",
        "",
        "`$PORT`, `$SERVER_PID`, `$DATA` and `$DB` stand for what the benchmark picks per run "
        "(a free port, the server's pid, a fresh temporary directory, a fresh database).",
        "",
        *_details(report),
        "## Profiles of the aggregator",
        "",
        *_profile_section(report),
        "## What limits it",
        "",
        _analysis(existing),
        "",
    ]
    path.write_text("\n".join(lines))


def _suite_times(report: Report) -> str:
    return ", ".join(f"{name} {secs:.0f} s" for name, secs in report.suite_seconds.items())


def write_json(report: Report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report.started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report.as_json(), indent=2, default=str))
    return path


def now() -> datetime:
    return datetime.now(UTC)
