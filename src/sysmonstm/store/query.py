"""The query router: picks the tier that answers a range within a point budget.

Like Netdata's tiers: the hot tier answers ranges inside its window; otherwise the coarsest
warm tier that still gives at least half the budget in points (so a chart is never starved),
among the tiers whose retention reaches back to the start of the range; then the result is
coarsened to at most ``points`` buckets.

With an archive, a tier also reaches back to its oldest archived partition, and the archive
fills in every partition period of the range where the warm tier returned no point (its
partition was archived and dropped): the same tier, the same values, bit for bit. The
archive's catalog is only consulted for ranges older than some tier's retention, or with
periods the warm tier left empty. An archive that cannot be read is logged and the warm
tier answers alone (a gap in an old chart rather than an error).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
import structlog

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.archive import Archive, ArchiveError
from sysmonstm.store.archive_read import ArchiveReader, has_points
from sysmonstm.store.hot import HotTier
from sysmonstm.store.model import Retention, SeriesPoints, Tier
from sysmonstm.store.partitions import partitions_between
from sysmonstm.store.rollup import rebucket
from sysmonstm.store.warm import WarmTier

log = structlog.get_logger(__name__)

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
    archived_from: Mapping[Tier, int] | None = None,
) -> Tier:
    """The tier a range query reads (see the module docstring). ``archived_from`` maps a
    tier to the start of its oldest archived partition."""
    if hot_window_ms and start_ms >= now_ms - hot_window_ms:
        return Tier.HOT
    span = end_ms - start_ms
    archived = archived_from or {}
    covering = [
        t
        for t in _WARM_TIERS
        if start_ms >= now_ms - retention.of(t) or start_ms >= archived.get(t, start_ms + 1)
    ]
    if not covering:
        return Tier.H1
    for tier in covering:
        step = tier.step_ms or max(raw_step_ms, 1)
        if span / step >= points / 2:
            return tier
    return covering[-1]


class SeriesQueries:
    """Range queries over the hot and warm tiers, and the archive when there is one."""

    def __init__(
        self,
        hot: HotTier,
        warm: WarmTier,
        retention: Retention,
        now_ms: Callable[[], int] = _wall_ms,
        archive: Archive | None = None,
    ) -> None:
        self.hot = hot
        self.warm = warm
        self.retention = retention
        self._now_ms = now_ms
        self.archive = archive
        self._archived = ArchiveReader(archive) if archive is not None else None

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
        archived_from = None
        if self._archived is not None and any(
            start_ms < now - self.retention.of(t) for t in _WARM_TIERS
        ):
            try:
                archived_from = await self._archived.coverage()
            except ArchiveError as exc:
                log.warning("archive unreadable, answering from the warm tier", error=str(exc))
        tier = choose_tier(
            start_ms,
            end_ms,
            points,
            now,
            self.retention,
            hot_window_ms=self.hot.window_ms,
            archived_from=archived_from,
        )
        if tier is Tier.HOT:
            found = await self.hot.recent(domain, source_id, series, start_ms)
            if len(found) == 0:  # a restarted process: the warm tier still has it
                tier = Tier.RAW
                found = await self.warm.read(domain, source_id, series, start_ms, end_ms, tier)
        else:
            found = await self.warm.read(domain, source_id, series, start_ms, end_ms, tier)
            if self._archived is not None:
                try:
                    found = await self._fill_from_archive(
                        self._archived, found, domain, source_id, series, start_ms, end_ms, tier
                    )
                except ArchiveError as exc:
                    log.warning("archive unreadable, answering from the warm tier", error=str(exc))
        return _fit(found, start_ms, end_ms, points)

    async def _fill_from_archive(
        self,
        reader: ArchiveReader,
        found: SeriesPoints,
        domain: str,
        source_id: str,
        series: str,
        start_ms: int,
        end_ms: int,
        tier: Tier,
    ) -> SeriesPoints:
        """``found`` plus archived points of every partition period in which the warm tier
        returned none. The warm tier is read first, so a partition dropped meanwhile was
        committed to the archive before: no period is missed and none is read twice."""
        lo = start_ms - start_ms % tier.step_ms if tier.step_ms else start_ms
        empty = [
            (p_start, p_end)
            for _, p_start, p_end in partitions_between(tier, lo, end_ms)
            if not has_points(found.times_ms, max(p_start, lo), p_end)
        ]
        if not empty:
            return found
        manifests = [
            m
            for m in await reader.partitions(tier, lo, end_ms, domain, source_id)
            if (m.start_ms, m.end_ms) in empty
        ]
        if not manifests:
            return found
        extra = await reader.read(manifests, domain, source_id, series, lo, end_ms, tier)
        return _merge(found, extra)


def _merge(warm: SeriesPoints, archived: SeriesPoints) -> SeriesPoints:
    """Both point sets in time order; a raw step is the median interval of the whole."""
    if len(archived) == 0:
        return warm
    parts = (warm, archived)
    t = np.concatenate([p.times_ms for p in parts])
    order = np.argsort(t, kind="stable")
    t = t[order]
    step = warm.tier.step_ms
    if warm.tier in (Tier.RAW, Tier.HOT):
        step = int(np.median(np.diff(t))) if len(t) > 1 else 0
    return SeriesPoints(
        warm.series,
        warm.tier,
        step,
        t,
        np.concatenate([p.avg for p in parts])[order],
        np.concatenate([p.min for p in parts])[order],
        np.concatenate([p.max for p in parts])[order],
        np.concatenate([p.count for p in parts])[order],
    )


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
