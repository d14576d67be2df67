"""Raw frames as every warm backend reads them back: grouped by layout, rolled into buckets.

A backend fetches a source's raw rows its own way (SQLite blobs, PostgreSQL ``array_send``
bytes) and hands them over as ``FrameGroup``s; what follows is the same maths for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sysmonstm.store.model import Float64Array, Int64Array
from sysmonstm.store.rollup import Buckets, bucket_matrix, merge


@dataclass(frozen=True, slots=True, eq=False)
class FrameGroup:
    """Raw frames of one layout: ``values[i, j]`` is series ``ids[j]`` at ``times[i]``."""

    ids: Int64Array
    times: Int64Array
    values: Float64Array


def raw_buckets(groups: list[FrameGroup], step_ms: int, only: int | None = None) -> Buckets:
    """Roll raw frame groups into ``step_ms`` buckets (all series, or only series ``only``)."""
    parts = []
    for g in groups:
        if only is None:
            parts.append(bucket_matrix(g.ids, g.times, g.values, step_ms))
            continue
        cols = np.flatnonzero(g.ids == only)
        if len(cols):
            parts.append(bucket_matrix(g.ids[cols], g.times, g.values[:, cols], step_ms))
    return merge(parts, step_ms)
