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
    lines.append("")
    for o in found:
        png = draw(o, charts)
        if png is not None:
            lines += [f"![Target {o.number}: {o.name}]({png.relative_to(page.parent)})", ""]
    return lines
