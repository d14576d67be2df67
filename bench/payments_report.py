"""The payment hub's section of docs/benchmarks.md (issue 5, Done-when 7).

Built from the run's ``payments.*`` measurements; empty when the run had none. The section
sits between markers, so ``python -m bench --only payments`` rewrites it alone and leaves the
rest of the page (other suites' numbers from their own runs) as it was; a full run writes
it with the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bench.model import Measurement

START = "<!-- payments:start -->"
END = "<!-- payments:end -->"
_BEFORE = "## Each measurement"


class _Runs(Protocol):
    def get(self, key: str) -> Measurement | None: ...


def _value(m: Measurement, key: str, spec: str) -> str:
    if key == "exactly_once":  # a yes/no fact holds only when it held in every run
        return "yes" if all(r.extra.get(key) == "yes" for r in m.runs) else "no"
    v = m.fact(key)
    if v is None:
        return "-"
    return format(v, spec) if spec and isinstance(v, int | float) else str(v)


def _row(m: Measurement | None, text: str) -> str:
    if m is None:
        return ""
    spread = f"{m.low:.1f} - {m.high:.1f}" if len(m.runs) > 1 else "1 run"
    return f"| {m.title} | **{m.median:,.1f} {m.unit}** | {spread} ({len(m.runs)}) | {text} |"


def payments_sections(report: _Runs, started: str = "", command: str = "") -> list[str]:
    """The section's lines, markers included (none when the run had no payments suite)."""
    receive, ledger = report.get("payments.receive"), report.get("payments.ledger")
    latency, sustained = report.get("payments.latency"), report.get("payments.sustained")
    found = [m for m in (receive, ledger, latency, sustained) if m is not None]
    if not found:
        return []
    rows = []
    if latency is not None:
        rows.append(
            _row(
                latency,
                f"p99 **{_value(latency, 'p99_ms', '.1f')} ms**; "
                f"sent {_value(latency, 'achieved_rate', '.0f')}/s; "
                f"exactly once: {_value(latency, 'exactly_once', '')}",
            )
        )
    if sustained is not None:
        shares = [
            f"{sustained.median / c.median:.1%} of {c.title.lower()}"
            for c in (receive, ledger)
            if c is not None and c.median
        ]
        rows.append(
            _row(
                sustained,
                f"p99 {_value(sustained, 'p99_ms', '.1f')} ms; " + "; ".join(shares),
            )
        )
    rows += [_row(receive, "ceiling"), _row(ledger, "ceiling")]
    lines = [
        START,
        "## Payment hub: webhook to decision",
        "",
        (f"Run: {started}, `{command}`. " if started else "")
        + "Each figure is the median of its runs (lowest and highest beside it); the ceilings "
        "were measured in the same run, on the same machine.",
        "",
        "| measurement | median | min - max (runs) | beside it |",
        "|---|---:|---:|---|",
        *[r for r in rows if r],
        "",
    ]
    if sustained is not None and sustained.fact("ladder"):
        lines += [f"Rates tried, last run: {sustained.fact('ladder')}.", ""]
    for m in found:
        lines += [f"**{m.title}.** {m.meaning}", ""]
    return [*lines, END]


def update_section(path: Path, section: list[str]) -> None:
    """Put ``section`` in the page at ``path``: in place of the one between the markers, else
    before the per-measurement details, else at the end."""
    if not section:
        return
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = "\n".join(section)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    elif _BEFORE in text:
        head, tail = text.split(_BEFORE, 1)
        text = head + block + "\n\n" + _BEFORE + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
