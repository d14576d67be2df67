"""Bucket aggregation shared by every warm backend: min, max, sum, count, last per bucket.

Works on whole matrices with numpy (one reduction per bucket column, never a Python loop per
sample), so rolling up a day of a host's raw frames costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sysmonstm.store.model import Float64Array, Int64Array


@dataclass(frozen=True, slots=True, eq=False)
class Buckets:
    """Aggregates per (series id, bucket start): parallel arrays, sorted by (series, t)."""

    series_ids: Int64Array
    t: Int64Array
    min: Float64Array
    max: Float64Array
    sum: Float64Array
    count: Int64Array
    last: Float64Array
    last_t: Int64Array

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls) -> Buckets:
        i = np.empty(0, dtype=np.int64)
        f = np.empty(0, dtype=np.float64)
        return cls(i, i, f, f, f, i, f, i)

    def select(self, picked: np.ndarray) -> Buckets:
        """The buckets ``picked`` (a boolean mask or indices) selects, in its order."""
        return Buckets(
            self.series_ids[picked],
            self.t[picked],
            self.min[picked],
            self.max[picked],
            self.sum[picked],
            self.count[picked],
            self.last[picked],
            self.last_t[picked],
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Any]) -> Buckets:
        """Buckets from rows ``(series_id, t, min, max, sum, count, last)``, as ``rows``
        gives them and narrow rollup tables hold them."""
        if not rows:
            return cls.empty()
        cols = list(zip(*rows, strict=True))
        t = np.asarray(cols[1], dtype=np.int64)
        return cls(
            series_ids=np.asarray(cols[0], dtype=np.int64),
            t=t,
            min=np.asarray(cols[2], dtype=np.float64),
            max=np.asarray(cols[3], dtype=np.float64),
            sum=np.asarray(cols[4], dtype=np.float64),
            count=np.asarray(cols[5], dtype=np.int64),
            last=np.asarray(cols[6], dtype=np.float64),
            last_t=t,
        )

    def rows(self) -> list[tuple[int, int, float, float, float, int, float]]:
        """Rows ``(series_id, t, min, max, sum, count, last)`` for an executemany."""
        return list(
            zip(
                self.series_ids.tolist(),
                self.t.tolist(),
                self.min.tolist(),
                self.max.tolist(),
                self.sum.tolist(),
                self.count.tolist(),
                self.last.tolist(),
                strict=True,
            )
        )


def bucket_matrix(
    series_ids: Int64Array, times_ms: Int64Array, values: Float64Array, step_ms: int
) -> Buckets:
    """Aggregate a dense matrix (rows sorted by time) into ``step_ms`` buckets per column."""
    if len(times_ms) == 0 or len(series_ids) == 0:
        return Buckets.empty()
    buckets = times_ms - times_ms % step_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)] - 1
    n_b, n_s = len(starts), len(series_ids)
    mins = np.minimum.reduceat(values, starts, axis=0)
    maxs = np.maximum.reduceat(values, starts, axis=0)
    sums = np.add.reduceat(values, starts, axis=0)
    counts = np.repeat((ends - starts + 1)[:, None], n_s, axis=1)
    lasts = values[ends]
    last_t = np.repeat(times_ms[ends][:, None], n_s, axis=1)
    # transpose to series-major order so results sort by (series, t)
    return Buckets(
        series_ids=np.repeat(series_ids, n_b),
        t=np.tile(buckets[starts], n_s),
        min=mins.T.ravel(),
        max=maxs.T.ravel(),
        sum=sums.T.ravel(),
        count=counts.T.ravel().astype(np.int64),
        last=lasts.T.ravel(),
        last_t=last_t.T.ravel(),
    )


def merge(parts: list[Buckets], step_ms: int) -> Buckets:
    """Combine partial aggregates (e.g. from several frame layouts, or finer buckets) into
    ``step_ms`` buckets per series."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Buckets.empty()
    sid = np.concatenate([p.series_ids for p in parts])
    t = np.concatenate([p.t for p in parts])
    t = t - t % step_ms
    mn = np.concatenate([p.min for p in parts])
    mx = np.concatenate([p.max for p in parts])
    sm = np.concatenate([p.sum for p in parts])
    ct = np.concatenate([p.count for p in parts])
    la = np.concatenate([p.last for p in parts])
    lt = np.concatenate([p.last_t for p in parts])
    order = np.lexsort((lt, t, sid))
    sid, t, mn, mx, sm, ct, la, lt = (a[order] for a in (sid, t, mn, mx, sm, ct, la, lt))
    new = np.r_[True, (sid[1:] != sid[:-1]) | (t[1:] != t[:-1])]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(sid)] - 1
    return Buckets(
        series_ids=sid[starts],
        t=t[starts],
        min=np.minimum.reduceat(mn, starts),
        max=np.maximum.reduceat(mx, starts),
        sum=np.add.reduceat(sm, starts),
        count=np.add.reduceat(ct, starts),
        last=la[ends],
        last_t=lt[ends],
    )


def rebucket(
    times_ms: Int64Array,
    avg: Float64Array,
    mins: Float64Array,
    maxs: Float64Array,
    counts: Int64Array,
    step_ms: int,
    origin_ms: int = 0,
) -> tuple[Int64Array, Float64Array, Float64Array, Float64Array, Int64Array]:
    """Coarsen a point series to ``step_ms`` buckets (count-weighted average)."""
    if len(times_ms) == 0:
        return times_ms, avg, mins, maxs, counts
    b = times_ms - (times_ms - origin_ms) % step_ms
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    c = np.add.reduceat(counts, starts)
    weighted = np.add.reduceat(avg * counts, starts)
    return (
        b[starts],
        weighted / np.maximum(c, 1),
        np.minimum.reduceat(mins, starts),
        np.maximum.reduceat(maxs, starts),
        c,
    )
