"""A PNG per issue-6 target, drawn from the numbers of the run (``bench.targets``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.report import rate
from bench.targets import Chart, Outcome

OURS, OTHERS, TARGET = "#2f6db5", "#b0b0b0", "#c0392b"


def _label(value: float, unit: str) -> str:
    if unit in ("ms", "% of one core", "bytes/sample"):
        return f"{value:.3g}"
    return rate(value)


def _draw(ax: Axes, chart: Chart) -> None:
    labels = [b.label for b in chart.bars]
    values = [b.value for b in chart.bars]
    colors = [OURS if b.ours else OTHERS for b in chart.bars]
    y = range(len(labels))
    ax.barh(list(y), values, color=colors)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()  # first bar on top
    if chart.log:
        ax.set_xscale("log")
    for i, v in enumerate(values):
        ax.text(v, i, f" {_label(v, chart.unit)}", va="center", fontsize=8)
    if chart.line is not None:
        ax.axvline(chart.line, color=TARGET, linestyle="--", linewidth=1.2)
        ax.text(
            chart.line,
            -0.6,
            f" {chart.line_label}",
            color=TARGET,
            fontsize=8,
            va="bottom",
        )
    top = max([*values, chart.line or 0.0])
    if chart.log:
        low = min(v for v in [*values, chart.line or top] if v > 0)
        ax.set_xlim(low / 3, top * 4)
    else:
        ax.set_xlim(0, top * 1.25)
    ax.set_xlabel(chart.unit)
    ax.set_title(chart.title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)


def draw(outcome: Outcome, directory: Path) -> Path | None:
    """``directory/target-N.png`` with every chart of the target stacked; None if it has
    none (its suites did not run)."""
    charts = [c for c in outcome.charts if c.bars]
    if not charts:
        return None
    heights = [0.9 + 0.32 * len(c.bars) for c in charts]
    fig, axes = plt.subplots(
        len(charts),
        1,
        figsize=(8, sum(heights) + 0.4),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, chart in zip(axes[:, 0], charts, strict=True):
        _draw(ax, chart)
    fig.suptitle(f"Target {outcome.number}: {outcome.name}", fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"target-{outcome.number}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
