"""Sliding windows: each aggregate, eviction at the boundary, empty results, resets."""

from __future__ import annotations

import math
import random

import pytest

from sysmonstm.rules import Aggregate, Window
from sysmonstm.rules.window import SlidingWindow, new_window


def filled(agg: str, samples: list[tuple[int, float]], span_ms: int = 10_000) -> SlidingWindow:
    window = new_window(Window(Aggregate(agg), span_ms))
    for t, v in samples:
        window.add(t, v)
    return window


SAMPLES = [(0, 5.0), (1000, 1.0), (2000, 9.0), (3000, 3.0)]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("avg", 4.5),
        ("min", 1.0),
        ("max", 9.0),
        ("count", 4.0),
        ("sum", 18.0),
        # rate: 5 -> 1 is a counter reset (+1), 1 -> 9 (+8), 9 -> 3 a reset (+3): 12 over 3 s
        ("rate", 4.0),
    ],
)
def test_aggregate_over_the_samples_held(agg: str, expected: float) -> None:
    assert filled(agg, SAMPLES).result() == pytest.approx(expected)


@pytest.mark.parametrize("agg", ["avg", "min", "max", "count", "sum", "rate"])
def test_a_sample_exactly_one_span_old_has_left(agg: str) -> None:
    window = filled(agg, [(0, 100.0), (5000, 1.0), (9999, 2.0)])
    assert len(window) == 3
    window.add(10_000, 3.0)
    assert len(window) == 3
    window.expire(20_000)
    assert len(window) == 0


@pytest.mark.parametrize(
    ("agg", "empty"),
    [("avg", None), ("min", None), ("max", None), ("count", 0.0), ("sum", 0.0), ("rate", None)],
)
def test_empty_window_result(agg: str, empty: float | None) -> None:
    window = filled(agg, [(0, 4.0)])
    window.expire(60_000)
    assert window.result() == empty


def test_max_falls_back_to_the_next_candidate_when_the_peak_leaves() -> None:
    window = filled("max", [(0, 9.0), (1000, 3.0), (2000, 7.0), (3000, 5.0)])
    assert window.result() == 9.0
    window.expire(10_000)
    assert window.result() == 7.0
    window.expire(12_000)
    assert window.result() == 5.0


def test_min_tracks_the_smallest_sample_held() -> None:
    window = filled("min", [(0, 1.0), (1000, 8.0), (2000, 4.0)])
    window.expire(10_500)
    assert window.result() == 4.0


def test_rate_needs_two_samples_at_distinct_times() -> None:
    assert filled("rate", [(0, 1.0)]).result() is None
    assert filled("rate", [(0, 1.0), (0, 5.0)]).result() is None


def test_rate_ignores_the_increase_from_before_the_window() -> None:
    window = filled("rate", [(0, 0.0), (3000, 1000.0), (12_000, 1010.0), (14_000, 1030.0)])
    assert window.result() == pytest.approx(10.0)  # (1030 - 1010) / 2 s


@pytest.mark.parametrize("agg", ["avg", "sum", "min", "max", "count"])
def test_long_random_streams_match_a_recomputation(agg: str) -> None:
    """Running sums stay exact enough and monotonic deques stay right over many evictions."""
    rng = random.Random(7)
    span = 5_000
    window = new_window(Window(Aggregate(agg), span))
    samples: list[tuple[int, float]] = []
    t = 0
    for _ in range(20_000):
        t += rng.choice((0, 100, 250, 1000))
        v = rng.uniform(-1e6, 1e6)
        window.add(t, v)
        samples.append((t, v))
    held = [v for ts, v in samples if ts > t - span]
    want = {
        "avg": math.fsum(held) / len(held),
        "sum": math.fsum(held),
        "min": min(held),
        "max": max(held),
        "count": float(len(held)),
    }[agg]
    assert window.result() == pytest.approx(want, rel=1e-9, abs=1e-6)
