"""Values that cross the storage seams. Domain-neutral: sources own numeric series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sysmonstm.store.tiers import Tier as Tier  # noqa: PLC0414 - re-exported: most modules name it here

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Who produced a batch: a machine within a domain (``metrics``, ``deskmeter``, ...)."""

    domain: str
    id: str
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """The dedupe identity: sequences only grow per (domain, id)."""
        return f"{self.domain}:{self.id}"


@dataclass(frozen=True, slots=True, eq=False)
class SeriesBatch:
    """A dense matrix of samples: ``values[i, j]`` is series ``j`` at ``times_ms[i]``.

    Times are Unix milliseconds (UTC), distinct within a batch. Values are finite.
    """

    source: SourceInfo
    sequence: int
    series: tuple[str, ...]
    times_ms: Int64Array
    values: Float64Array
    interval_ms: int = 1000

    @property
    def size(self) -> int:
        """Number of samples."""
        return int(self.values.size)


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the tiers know about a source."""

    source: SourceInfo
    first_seen_ms: int
    last_seen_ms: int
    interval_ms: int
    series_count: int


@dataclass(frozen=True, slots=True)
class LatestValue:
    series: str
    time_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each warm tier keeps data (defaults: raw 7 days, 1 min 90 days, 1 h 2 years)."""

    raw_ms: int = 7 * 86_400_000
    m1_ms: int = 90 * 86_400_000
    h1_ms: int = 2 * 365 * 86_400_000

    def of(self, tier: Tier) -> int:
        return {Tier.RAW: self.raw_ms, Tier.M1: self.m1_ms, Tier.H1: self.h1_ms}.get(tier, 0)


@dataclass(frozen=True, slots=True, eq=False)
class SeriesPoints:
    """A range read: per point its time (bucket start), avg, min, max and sample count.

    Raw points have avg == min == max and count 1.
    """

    series: str
    tier: Tier
    step_ms: int
    times_ms: Int64Array
    avg: Float64Array
    min: Float64Array
    max: Float64Array
    count: Int64Array

    @classmethod
    def empty(cls, series: str, tier: Tier, step_ms: int) -> SeriesPoints:
        f = np.empty(0, dtype=np.float64)
        i = np.empty(0, dtype=np.int64)
        return cls(series, tier, step_ms, i, f, f, f, i)

    @classmethod
    def raw(
        cls, series: str, tier: Tier, step_ms: int, times_ms: Int64Array, values: Float64Array
    ) -> SeriesPoints:
        return cls(
            series,
            tier,
            step_ms,
            times_ms,
            values,
            values,
            values,
            np.ones(len(times_ms), dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.times_ms)


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One time partition of the warm tier (``raw_20261204``, ``m1_202612``, ``h1_2026``)."""

    tier: Tier
    name: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Record:
    """A small document kept as history (alert transitions and the like), keyed for lookup."""

    kind: str
    id: str
    time_ms: int
    key: str
    body: dict[str, Any] = field(default_factory=dict)
