"""Rollup progress: the one rule every warm backend follows for ``m1_through``/``h1_through``.

Per source, ``m1_through`` and ``h1_through`` say up to where (exclusive) its 1-minute and
1-hour rollups are complete.

- The rollup job advances them (``m1_end``, ``h1_end``) up to the start of the bucket that
  holds the source's newest sample (``last_ms``): more samples may still come for it. Once
  the source has been silent for longer than ``SILENCE_GRACE_MS`` its last minute and hour
  are rolled up too, so a source that stopped sending keeps its last hour in the 1-hour tier
  after retention or the archive took the finer tiers away. A sample that arrives later for
  a bucket before the progress marks that bucket dirty when it is written and is rolled up
  again, as any late sample is.
- A read of a rollup tier (``read_spans``) takes the tier's stored rows before its progress
  and the finer tiers after it, so it reaches the newest sample before any rollup ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sysmonstm.store.model import SeriesPoints, Tier
from sysmonstm.store.rollup import Buckets, merge

M1, H1 = Tier.M1.step_ms, Tier.H1.step_ms
SILENCE_GRACE_MS = 5 * 60_000  # silent this long, a source's last minute and hour are closed


def _end_of(t_ms: int, step_ms: int) -> int:
    """The end of the ``step_ms`` bucket holding ``t_ms``."""
    return t_ms - t_ms % step_ms + step_ms


def silent(last_ms: int, now_ms: int) -> bool:
    """Whether a source whose newest sample is at ``last_ms`` counts as stopped at ``now_ms``."""
    return now_ms - last_ms > SILENCE_GRACE_MS


def closed(last_ms: int) -> tuple[int, int]:
    """``(m1_through, h1_through)`` of a source whose rollups are complete through its
    newest sample: the ends of the minute and the hour holding ``last_ms``."""
    return _end_of(last_ms, M1), _end_of(last_ms, H1)


def m1_end(last_ms: int, now_ms: int) -> int:
    """How far the job may advance ``m1_through`` (see the module docstring)."""
    if silent(last_ms, now_ms):
        return _end_of(last_ms, M1)
    return last_ms - last_ms % M1


def h1_end(last_ms: int, m1_through: int, now_ms: int) -> int:
    """How far the job may advance ``h1_through``: the hours the 1-minute rollups cover,
    through the hour of ``last_ms`` once the source is silent and its last minute is rolled."""
    end = m1_through - m1_through % H1
    if silent(last_ms, now_ms) and m1_through >= _end_of(last_ms, M1):
        return max(end, _end_of(last_ms, H1))
    return end


def due(last_ms: int, m1_through: int, h1_through: int, now_ms: int) -> bool:
    """Whether the job has progress to make for a source (dirty buckets aside)."""
    return m1_through < m1_end(last_ms, now_ms) or h1_through < h1_end(last_ms, m1_through, now_ms)


def hours_to_redo(lo: int, hi: int, h1_through: int) -> list[int]:
    """Starts of the hours already rolled up (before ``h1_through``) that 1-minute buckets
    newly rolled up in ``[lo, hi)`` belong to: a source that sent again after its last hour
    was closed. Their 1-hour buckets are recomputed like dirty ones."""
    return list(range(lo - lo % H1, min(hi, h1_through), H1))


@dataclass(frozen=True, slots=True)
class Span:
    """A part of a rollup-tier read: ``tier``'s rows in ``[start_ms, end_ms)``; for RAW, the
    raw frames there, rolled into 1-minute buckets."""

    tier: Tier
    start_ms: int
    end_ms: int


def read_spans(
    tier: Tier, start_ms: int, end_ms: int, m1_through: int, h1_through: int
) -> list[Span]:
    """Where a read of rollup tier ``tier`` (M1 or H1) over ``[start_ms, end_ms)`` finds its
    buckets, coarsest first: the tier's stored rows before its progress, then each finer tier
    for the time not rolled up yet. Empty spans are left out."""
    start = start_ms - start_ms % tier.step_ms
    if tier is Tier.M1:
        spans = [
            Span(Tier.M1, start, min(end_ms, m1_through)),
            Span(Tier.RAW, max(start, m1_through), end_ms),
        ]
    else:
        lo = max(start, h1_through)
        spans = [
            Span(Tier.H1, start, min(end_ms, h1_through)),
            Span(Tier.M1, lo, min(end_ms, m1_through)),
            Span(Tier.RAW, max(lo, m1_through), end_ms),
        ]
    return [s for s in spans if s.start_ms < s.end_ms]


def rollup_points(series: str, tier: Tier, parts: list[Buckets]) -> SeriesPoints:
    """The points of one series of rollup tier ``tier`` from the buckets of its spans."""
    b = merge(parts, tier.step_ms)
    order = np.argsort(b.t, kind="stable")
    count = b.count[order]
    return SeriesPoints(
        series,
        tier,
        tier.step_ms,
        b.t[order],
        b.sum[order] / count,
        b.min[order],
        b.max[order],
        count,
    )
