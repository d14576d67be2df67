"""Presenting a benchmark run: a rich table in the terminal, JSON, and docs/benchmarks.md.

The Markdown page is rewritten from the run's numbers, except the block between
``<!-- analysis:start -->`` and ``<!-- analysis:end -->``: that is a person's reading of the
profile, kept verbatim from the existing page (with the date it was written), because a
program should not pretend to interpret its own numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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
    profile: Profile | None = None
    profile_run: Measurement | None = None
    runtime_s: float = 0.0

    def get(self, key: str) -> Measurement | None:
        return next((m for m in self.measurements if m.key == key), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "command": self.command,
            "runtime_s": self.runtime_s,
            "machine": self.machine.as_dict(),
            "measurements": [m.as_json() for m in self.measurements],
            "profile": asdict(self.profile) if self.profile else None,
            "profile_run": self.profile_run.as_json() if self.profile_run else None,
        }


def rate(value: float) -> str:
    """``1234567`` -> ``1.23 M``; ``81234`` -> ``81.2 k``."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def _spread(m: Measurement) -> str:
    return f"{rate(m.low)} - {rate(m.high)}" if len(m.runs) > 1 else "1 run"


def _bytes(m: Measurement) -> str:
    value = m.extra_median("bytes_per_sample") or m.extra_median("db_bytes_per_sample")
    return f"{value:.1f}" if value is not None else ""


def _cpu(m: Measurement) -> str:
    server, gen = m.extra_median("server_cpu_cores"), m.extra_median("loadgen_cpu_cores")
    if server is None or gen is None:
        return ""
    return f"{server:.2f} / {gen:.2f}"


def _ratios(report: Report, m: Measurement) -> list[tuple[Measurement, float]]:
    found = []
    for key in m.ceilings:
        ceiling = report.get(key)
        if ceiling is not None:
            found.append((ceiling, m.median / ceiling.median))
    return found


def print_report(report: Report, console: Console) -> None:
    table = Table(
        title=f"sysmonstm ingest ({report.machine.cores} cores, {report.machine.cpu}); "
        "samples/s, median of runs",
        title_justify="left",
    )
    table.add_column("measurement")
    table.add_column("median", justify="right")
    table.add_column("min - max", justify="right")
    table.add_column("B/sample", justify="right")
    table.add_column("CPU srv/gen", justify="right")
    table.add_column("vs ceilings measured in this run")
    for m in report.measurements:
        ratios = "\n".join(f"{r:.1%} of {c.short}" for c, r in _ratios(report, m))
        table.add_row(m.short, rate(m.median), _spread(m), _bytes(m), _cpu(m), ratios)
    console.print(table)
    if report.profile is not None:
        console.print(profile_table(report.profile))


def profile_table(p: Profile) -> Table:
    threads = ", ".join(f"{name} {pct:.0f} %" for name, pct in p.threads.items())
    table = Table(
        title=f"aggregator profile ({p.tool}, {p.seconds:.1f} s)"
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
        lines += [f"{x.title:<{width}}  {_bar(x.median, top)} {rate(x.median)}" for x in group]
        lines.append("")
    return lines[:-1] if lines else lines


def _runs(m: Measurement) -> str:
    return ", ".join(rate(r.rate) for r in m.runs)


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
        ("databases written to", machine.temp_fs),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _result_rows(report: Report) -> list[str]:
    rows = [
        "| measurement | median | min - max (runs) | bytes/sample | compared with (same run) |",
        "|---|---:|---:|---:|---|",
    ]
    for m in report.measurements:
        ratios = "; ".join(
            f"**{r:.1%}** of {c.title} ({rate(c.median)})" for c, r in _ratios(report, m)
        )
        rows.append(
            f"| {m.title} | **{rate(m.median)} {m.unit}** | {_spread(m)} "
            f"({len(m.runs)}) | {_bytes(m)} | {ratios or m.reference} |"
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
        cpu = _cpu(m)
        if cpu:
            out.append(
                f"- CPU used over the timed phase, in cores (server / load generator): {cpu}"
            )
        for c, r in _ratios(report, m):
            out.append(f"- {r:.1%} of {c.title} ({rate(c.median)} {c.unit}, this run)")
        if m.reference:
            out.append(f"- reference: {m.reference}")
        out.append("")
    return out


def _profile_section(report: Report) -> list[str]:
    p, run = report.profile, report.profile_run
    if p is None or run is None:
        return ["_No profile in this run._", ""]
    threads = ", ".join(f"{name} {pct:.0f} %" for name, pct in p.threads.items())
    return [
        f"A separate replay-shape run ({rate(run.median)} samples/s with the profiler attached; "
        f"command: `{run.command}`), profiled with {p.tool} over {p.seconds:.1f} s."
        + (f" CPU per thread (kernel counters), in % of one core: {threads}." if threads else ""),
        "",
        "Shares below are of one core's wall time. A line that calls native code is charged "
        "with all of it, waiting included: `COMMIT` includes its fsync and any WAL "
        "checkpoint, `context.write` the gRPC core's work. Samples in which a thread only "
        "waited for work are left out.",
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


def _line_rows(p: Profile) -> list[str]:
    rows = ["| source line (by own time) | code | own % of a core |", "|---|---|---:|"]
    for c in p.by_line:
        code = source_of(c.function).replace("|", "\\|")
        rows.append(f"| `{c.function}` | {f'`{code}`' if code else ''} | {c.self_pct:.1f} |")
    return [*rows, ""]


def write_markdown(report: Report, path: Path) -> None:
    existing = path.read_text() if path.exists() else ""
    m = report.machine
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (`make bench`); only the *What limits it* section is "
        "written by hand. Every ratio compares numbers measured in the same run, on the "
        "same machine, minutes apart.",
        "",
        f"Run: {report.started:%Y-%m-%d %H:%M} UTC, `{report.command}`, "
        f"{report.runtime_s:.0f} s in all. Each figure is the median of its runs, with the "
        "lowest and highest run beside it.",
        "",
        "Run it with `make bench` or `python -m bench` (a few minutes; it rewrites this page). "
        "`python -m bench --quick` takes one short run of each (a smoke test, page untouched); "
        "`--only sqlite|grpc|pipeline` runs one suite; `--set warm__synchronous=normal` "
        "(any `SYSMONSTM_` setting, repeatable) tries an aggregator knob; `--profiler "
        "py-spy|cprofile|none` picks the profiler (py-spy, if installed, needs no change to "
        "the aggregator). Raw numbers of every run go to `bench/results/` (not committed).",
        "",
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
        "How to read it: a sample is one value of one series at one instant. The pipeline "
        "figures are whole-system throughput: 100 simulated collectors in another process "
        "each send their first batch and wait for its ack (the aggregator learns the source), "
        "then the clock runs from the first send to the last ack covering everything. The "
        "load generator is the same for the gRPC ceiling and the pipeline, so the two differ "
        "only by the server. Bytes/sample is the SQLite file after a checkpoint divided by "
        "the samples it holds; for the pipeline that includes the rollups, series and "
        "layouts. CPU columns are cores used by the server and by the load generator over "
        "the timed phase (the machine has two).",
        "",
        "## Each measurement",
        "",
        "`$PORT`, `$SERVER_PID` and `$DATA` stand for what the benchmark picks per run (a free "
        "port, the server's pid, a fresh temporary directory).",
        "",
        *_details(report),
        "## Profile of the aggregator",
        "",
        *_profile_section(report),
        "## What limits it",
        "",
        _analysis(existing),
        "",
    ]
    path.write_text("\n".join(lines))


def write_json(report: Report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report.started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report.as_json(), indent=2, default=str))
    return path


def now() -> datetime:
    return datetime.now(UTC)
