"""The *Targets* section of docs/benchmarks.md: issue 6's targets against this run, with
a chart per target (PNG files beside the page)."""

from __future__ import annotations

from pathlib import Path

from bench.charts import draw
from bench.report import Report
from bench.targets import Check, outcomes

_VERDICT = {True: "holds", False: "**misses**", None: "not measured in this run"}

_INTRO = (
    "Issue 6's targets, each checked against the figures of the run above (medians; ratios "
    "to ceilings and peers measured in the same run). Where one misses, *What limits it* at "
    "the end says where the time goes and what would close the rest. In the charts, our "
    "figures are blue, ceilings and peers grey, the target the dashed red line."
)


# Peers measured on this machine kind in ../shared/measured.md, run the same way here:
# (measurement key, what, the figure there, whether a higher figure is a faster machine)
SCALE: tuple[tuple[str, str, float, bool], ...] = (
    ("heartbeats.aw.1", "aw-server 0.12, heartbeats/s one at a time", 200.0, True),
    ("collector.glances", "Glances 4.5 web server polled each second, % of a core", 3.1, False),
    ("collector.node_exporter", "node-exporter scraped each second, % of a core", 0.9, False),
)

_SCALE_INTRO = (
    "How fast the machine ran: the same peers measured.md measured on this machine kind, "
    "run the same way in this run. Above 1, this run's machine did their work faster than "
    "measured.md's did. The absolute rates among the targets (1's 500k samples/s, 6's "
    "1,000 and 5,000 tx/s, 8's 500k samples/s) were written on measured.md's scale: read "
    "them with this factor in mind (the ratios to ceilings and peers need no such care)."
)


def scale_lines(report: Report) -> list[str]:
    """The machine-speed table (empty when no peer was measured)."""
    rows = []
    for key, what, there, higher in SCALE:
        m = report.get(key)
        if m is None or not m.runs or m.median <= 0:
            continue
        factor = m.median / there if higher else there / m.median
        rows.append(f"| {what} | {m.median:,.4g} | {there:,.4g} | {factor:.2f}x |")
    if not rows:
        return []
    head = ["", _SCALE_INTRO, "", "| peer | this run | measured.md | speed |"]
    head.append("|---|---:|---:|---:|")
    return [*head, *rows]


def _row(number: int, name: str, check: Check) -> str:
    measured = check.measured or "-"
    return f"| {number} | {name} | {check.asked} | {measured} | {_VERDICT[check.holds]} |"


def targets_section(report: Report, charts: Path, page: Path) -> list[str]:
    """Markdown lines of the section; writes ``charts/target-N.png`` (N with numbers)."""
    found = outcomes(report)
    lines = [
        "## Targets",
        "",
        _INTRO,
        "",
        "| # | target | asked | measured | |",
        "|---:|---|---|---|---|",
    ]
    for o in found:
        lines += [_row(o.number, o.name, c) for c in o.checks]
    lines += scale_lines(report)
    lines.append("")
    for o in found:
        png = draw(o, charts)
        if png is not None:
            lines += [f"![Target {o.number}: {o.name}]({png.relative_to(page.parent)})", ""]
    return lines
