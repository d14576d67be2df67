"""The query router picks the tier by range, budget and retention, and keeps the budget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.hot_memory import MemoryHot
from sysmonstm.store.model import Retention, Tier
from sysmonstm.store.query import SeriesQueries, choose_tier
from sysmonstm.store.warm_sqlite import SqliteWarm
from tests.conformance.helpers import T0, ticks

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
NOW = T0 + 40 * DAY


@pytest.mark.parametrize(
    ("span", "tier"),
    [
        (4 * MIN, Tier.HOT),
        (15 * MIN, Tier.RAW),
        (HOUR, Tier.RAW),
        (24 * HOUR, Tier.M1),
        (7 * DAY, Tier.M1),
        (30 * DAY, Tier.H1),
        (400 * DAY, Tier.H1),
    ],
)
def test_tier_follows_the_span(span: int, tier: Tier) -> None:
    assert choose_tier(NOW - span, NOW, 1000, NOW, Retention(), hot_window_ms=5 * MIN) is tier


def test_a_tier_whose_retention_misses_the_start_is_skipped() -> None:
    short = Retention(raw_ms=HOUR, m1_ms=DAY, h1_ms=400 * DAY)
    assert choose_tier(NOW - 2 * HOUR, NOW, 1000, NOW, short) is Tier.M1
    assert choose_tier(NOW - 2 * DAY, NOW, 1000, NOW, short) is Tier.H1
    assert choose_tier(NOW - 30 * MIN, NOW, 1000, NOW, short) is Tier.RAW


@pytest.fixture
async def queries(tmp_path: Path) -> AsyncIterator[SeriesQueries]:
    clock = [T0 + 2 * HOUR]
    hot = MemoryHot(window_ms=5 * MIN, now_ms=lambda: clock[0])
    warm = SqliteWarm(f"sqlite:///{tmp_path / 'w.db'}")
    await warm.open()
    batches = ticks(1, T0, 2 * 3600)
    await warm.write(batches)
    await hot.write(batches)
    await warm.rollup()
    yield SeriesQueries(hot, warm, Retention(), now_ms=lambda: clock[0])
    await warm.close()


async def test_recent_ranges_come_from_the_hot_tier(queries: SeriesQueries) -> None:
    end = T0 + 2 * HOUR
    pts = await queries.range("metrics", "m1", "cpu.used", end - 2 * MIN, end)
    assert pts.tier is Tier.HOT
    assert len(pts) == 120
    assert pts.avg[-1] == 7199.0


async def test_results_never_exceed_the_point_budget(queries: SeriesQueries) -> None:
    end = T0 + 2 * HOUR
    pts = await queries.range("metrics", "m1", "cpu.used", T0, end, points=100)
    assert pts.tier is Tier.M1
    assert len(pts) <= 100
    assert int(pts.count.sum()) == 7200
    assert pts.min[0] == 0.0
    assert pts.max[-1] == 7199.0


async def test_a_raw_range_is_coarsened_with_weighted_averages(queries: SeriesQueries) -> None:
    pts = await queries.range("metrics", "m1", "cpu.used", T0, T0 + 30 * MIN, points=600)
    assert pts.tier is Tier.RAW
    assert len(pts) == 600
    assert pts.step_ms == 3000
    assert pts.avg[:2].tolist() == [1.0, 4.0]
    assert pts.min[1] == 3.0
    assert pts.max[1] == 5.0
    assert pts.count.tolist() == [3] * 600


async def test_bad_ranges_are_refused(queries: SeriesQueries) -> None:
    with pytest.raises(InvalidInputError):
        await queries.range("metrics", "m1", "cpu.used", T0, T0)
    with pytest.raises(InvalidInputError):
        await queries.range("metrics", "m1", "cpu.used", T0, T0 + 1, points=0)
