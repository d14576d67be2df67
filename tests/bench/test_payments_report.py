"""The payments section of docs/benchmarks.md: built from the run's payments measurements and
put in the page alone, leaving the other suites' numbers as they were."""

from __future__ import annotations

from pathlib import Path

from bench.model import Measurement, Run
from bench.payments_report import END, START, payments_sections, update_section


class Runs:
    def __init__(self, *found: Measurement) -> None:
        self.found = {m.key: m for m in found}

    def get(self, key: str) -> Measurement | None:
        return self.found.get(key)


def measured(key: str, unit: str, *rates: float, **extra: object) -> Measurement:
    m = Measurement(key=key, title=key, short=key, meaning=f"how {key}", command="c", unit=unit)
    m.runs = [Run(r, 1, 1.0, dict(extra)) for r in rates]
    return m


def report() -> Runs:
    return Runs(
        measured("payments.receive", "webhooks/s", 1000.0, 1100.0, 900.0),
        measured("payments.ledger", "tx/s", 2000.0),
        measured("payments.latency", "ms p50", 40.0, 50.0, 45.0, p99_ms=100.0, exactly_once="yes"),
        measured("payments.sustained", "webhooks/s", 500.0, ladder="100/s: held"),
    )


def test_the_section_states_each_figure_and_the_ratio_to_its_ceilings() -> None:
    """Latency p50 and p99, exactly once, the sustained rate as shares of both ceilings."""
    text = "\n".join(payments_sections(report(), "2026-12-05 01:14 UTC", "python -m bench"))
    assert text.startswith(START)
    assert text.endswith(END)
    assert "| payments.latency | **45.0 ms p50** | 40.0 - 50.0 (3) | p99 **100.0 ms**" in text
    assert "exactly once: yes" in text
    assert "50.0% of payments.receive; 25.0% of payments.ledger" in text
    assert "Rates tried, last run: 100/s: held." in text
    assert payments_sections(Runs(measured("sqlite.wide", "samples/s", 1.0))) == []


def test_update_replaces_only_the_section(tmp_path: Path) -> None:
    """A page without the section gets it before the per-measurement details; a page with it
    gets it replaced, everything else byte for byte as it was."""
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nother suites\n\n## Each measurement\n\ndetails\n")
    update_section(page, payments_sections(report()))
    first = page.read_text()
    assert first.index(START) < first.index("## Each measurement")
    assert first.startswith("# Benchmarks\n\nother suites\n\n")
    assert first.endswith("## Each measurement\n\ndetails\n")

    again = Runs(measured("payments.ledger", "tx/s", 3000.0))
    update_section(page, payments_sections(again))
    second = page.read_text()
    assert second.count(START) == 1
    assert "3,000.0 tx/s" in second
    assert "2,000.0 tx/s" not in second
    head, tail = first.split(START)[0], first.split(END)[1]
    assert second.startswith(head)
    assert second.endswith(tail)
