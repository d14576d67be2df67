"""The query router: picks the tier that answers a range within a point budget.

Like Netdata's tiers: the hot tier answers ranges inside its window; otherwise the coarsest
warm tier that still gives at least half the budget in points (so a chart is never starved),
among the tiers whose retention reaches back to the start of the range; then the result is
coarsened to at most ``points`` buckets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.hot import HotTier
from sysmonstm.store.model import Retention, SeriesPoints, Tier
from sysmonstm.store.rollup import rebucket
from sysmonstm.store.warm import WarmTier

_WARM_TIERS = (Tier.H1, Tier.M1, Tier.RAW)  # coarsest first
MAX_POINTS = 10_000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def choose_tier(
    start_ms: int,
    end_ms: int,
    points: int,
    now_ms: int,
    retention: Retention,
    raw_step_ms: int = 1000,
    hot_window_ms: int = 0,
) -> Tier:
    """The tier a range query reads (see the module docstring)."""
    if hot_window_ms and start_ms >= now_ms - hot_window_ms:
        return Tier.HOT
    span = end_ms - start_ms
    covering = [t for t in _WARM_TIERS if start_ms >= now_ms - retention.of(t)]
    if not covering:
        return Tier.H1
    for tier in covering:
        step = tier.step_ms or max(raw_step_ms, 1)
        if span / step >= points / 2:
            return tier
    return covering[-1]


class SeriesQueries:
    """Range queries over the hot and warm tiers."""

    def __init__(
        self,
        hot: HotTier,
        warm: WarmTier,
        retention: Retention,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.hot = hot
        self.warm = warm
        self.retention = retention
        self._now_ms = now_ms

    async def range(
        self,
        domain: str,
        source_id: str,
        series: str,
        start_ms: int,
        end_ms: int,
        points: int = 1000,
    ) -> SeriesPoints:
        """Points of one series in ``[start_ms, end_ms)``, at most ``points`` of them."""
        if end_ms <= start_ms:
            raise InvalidInputError("the range must end after it starts")
        if not 1 <= points <= MAX_POINTS:
            raise InvalidInputError(f"points must be within 1..{MAX_POINTS}")
        now = self._now_ms()
        tier = choose_tier(
            start_ms, end_ms, points, now, self.retention, hot_window_ms=self.hot.window_ms
        )
        if tier is Tier.HOT:
            found = await self.hot.recent(domain, source_id, series, start_ms)
            if len(found) == 0:  # a restarted process: the warm tier still has it
                tier = Tier.RAW
                found = await self.warm.read(domain, source_id, series, start_ms, end_ms, tier)
        else:
            found = await self.warm.read(domain, source_id, series, start_ms, end_ms, tier)
        return _fit(found, start_ms, end_ms, points)


def _fit(found: SeriesPoints, start_ms: int, end_ms: int, points: int) -> SeriesPoints:
    keep = (found.times_ms >= start_ms - found.step_ms) & (found.times_ms < end_ms)
    if not keep.all():
        found = SeriesPoints(
            found.series,
            found.tier,
            found.step_ms,
            found.times_ms[keep],
            found.avg[keep],
            found.min[keep],
            found.max[keep],
            found.count[keep],
        )
    if len(found) <= points:
        return found
    step = -(-(end_ms - start_ms) // points)
    step = max(step, found.step_ms)
    t, avg, mn, mx, count = rebucket(
        found.times_ms, found.avg, found.min, found.max, found.count, step, origin_ms=start_ms
    )
    return SeriesPoints(found.series, found.tier, step, t, avg, mn, mx, count)
