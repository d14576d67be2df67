"""The payments ladder: upwards from the bottom in the first run, from the previous run's best
in the next ones (one lower when that no longer holds), the steady run reused for its rate,
and the highest rate that held as the figure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import payments
from bench.payments import Ladder, PathResult, PaymentsOptions
from sysmonstm.domains.payments.simulate import Summary

OPTS = PaymentsOptions(
    steady_rate=200.0, steady_seconds=3.0, ladder=(100.0, 200.0, 300.0, 400.0), ladder_seconds=3.0
)


def result(rate: float, holds: bool) -> PathResult:
    """A run at ``rate`` that kept pace and exactly once, its p99 within or beyond the bound."""
    keys = {f"stripe:evt_{i}" for i in range(10)}
    summary = Summary(
        sent=Counter({"stripe": 10}), statuses=Counter({200: 10}), accepted=keys, keys=keys
    )
    summary.seconds = 10 / rate
    p99 = 5.0 if holds else 10 * payments.P99_HELD_MS
    return PathResult(rate, summary, [p99], Counter(dict.fromkeys(keys, 1)), 10, 10, True, {})


class FakeHub:
    """Stands in for ``path_run``: holds every rate up to ``capacity``; records the rates."""

    def __init__(self) -> None:
        self.capacity = 250.0
        self.ran: list[float] = []

    def __call__(
        self, directory: Path, seed: int, rate: float, seconds: float, opts: PaymentsOptions
    ) -> PathResult:
        self.ran.append(rate)
        return result(rate, rate <= self.capacity)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    fake = FakeHub()
    monkeypatch.setattr(payments, "path_run", fake)
    return fake


def test_the_ladder_climbs_reuses_the_steady_run_and_starts_later_runs_at_the_best(
    tmp_path: Path, hub: FakeHub
) -> None:
    """Run 1: 100, (200 = the steady run, not repeated), 300 fails → 200. Run 2 starts at 200.
    Then the hub holds less: run 3 finds 200 failing and steps down to 100; run 4 holds none."""
    memo = Ladder()
    memo.steady[0] = result(200.0, True)
    for sub in "abcd":
        (tmp_path / sub).mkdir()
    first = payments.sustained_run(tmp_path / "a", 0, OPTS, memo)
    assert hub.ran == [100.0, 300.0]
    assert first.extra["target_rate"] == 200.0
    assert "300/s: not held" in str(first.extra["ladder"])
    hub.ran.clear()
    second = payments.sustained_run(tmp_path / "b", 1, OPTS, memo)
    assert hub.ran == [200.0, 300.0]
    assert second.extra["target_rate"] == 200.0
    hub.ran.clear()
    hub.capacity = 150.0
    third = payments.sustained_run(tmp_path / "c", 2, OPTS, memo)
    assert hub.ran == [200.0, 100.0]
    assert third.extra["target_rate"] == 100.0
    hub.ran.clear()
    hub.capacity = 50.0
    fourth = payments.sustained_run(tmp_path / "d", 3, OPTS, memo)
    assert hub.ran == [100.0]
    assert fourth.rate == 0.0
    assert fourth.extra["held"] == "no"
