"""Thirty days of history of a fleet of demo hosts, as the warm tier holds it, and what reads of
it must answer.

Each host is a ``DemoHost`` (``domains/metrics/demo.py``): the series a real collector
reports (per-core CPU, memory, disks, mounts, NICs, load, processes, a temperature; 42 to 127
per host, ~73 on average) with its machine id, hostname and labels. Values swing around the
host's first demo sample with a daily cycle and noise (vectorised, seeded per host), so they
look like a machine's without simulating 2.6 M seconds of walks per host.

What the warm tier holds after its retention (raw 7 days, 1-minute rollups 90 days, hourly 2
years), in three spans ending at ``end_ms`` (the wall clock when the history is made):

- 1-hour rollup rows for every whole hour from ``h1_start_ms`` (30 days back) until the
  1-minute span;
- 1-minute rollup rows for ``m1_hours`` before the raw frames;
- raw 1 s frames for the last ``raw_minutes`` (``raw_start_ms`` to ``end_ms``); their 1-minute
  and 1-hour rollups are left to the warm tier's own rollup job.

Left out, and said so wherever it is reported: the raw frames of the 7 days before
``raw_start_ms`` (100 hosts x 7 days at 1 Hz is 4.4 billion samples) and the 1-minute rows of
the 30 days before ``m1_start_ms`` (313 million rows, ~30 GB in PostgreSQL). A 30-day read at
1,000 points reads neither: it reads the hourly tier, and finer tiers only after the hourly
tier's progress (the last hour).

``FleetHistory.expected`` keeps, per host, every hour's aggregates from all three spans and
from frames added later (``add_frames``: what is streamed in at the end), through the same
bucket maths the warm tier uses (``store/rollup.py``), so an hourly read can be checked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from sysmonstm.domains.metrics.demo import DemoHost
from sysmonstm.store.model import Float64Array, Int64Array, SeriesBatch, SourceInfo
from sysmonstm.store.progress import H1, M1
from sysmonstm.store.rollup import Buckets, bucket_matrix, merge

DAY_MS = 86_400_000
DOMAIN = "metrics"
_SWING = 0.2  # daily cycle, as a fraction of the level
_NOISE = 0.02  # per-sample noise, as a fraction
_SPREAD = 0.05  # how far a bucket's min and max lie from its mean, as a fraction


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """How much history: hosts, days of hourly rollups, hours of 1-minute rollups, minutes
    of raw frames."""

    hosts: int = 100
    days: int = 30
    m1_hours: int = 2
    raw_minutes: int = 30
    frames_per_batch: int = 300  # raw frames per written batch
    seed: int = 0

    def quick(self) -> HistorySpec:
        return replace(self, hosts=10, days=3, m1_hours=1, raw_minutes=10)


@dataclass(frozen=True, slots=True, eq=False)
class Host:
    """One demo host: identity, series keys, level and phase of each series."""

    info: SourceInfo
    series: tuple[str, ...]
    level: Float64Array
    phase: Float64Array
    rng: np.random.Generator

    @property
    def id(self) -> str:
        return self.info.id

    def values(self, times_ms: Int64Array) -> Float64Array:
        """Sample values at ``times_ms``: rows are times, columns series."""
        day = 2 * np.pi * (times_ms % DAY_MS / DAY_MS)
        cycle = 1.0 + _SWING * np.sin(day[:, None] + self.phase[None, :])
        noise = 1.0 + _NOISE * self.rng.standard_normal((len(times_ms), len(self.series)))
        return np.abs(self.level[None, :] * cycle * noise)

    def buckets(self, starts_ms: Int64Array, count: int) -> Buckets:
        """Stored rollup rows for buckets starting at ``starts_ms``, each of ``count``
        samples: sorted by (column, t), the column index standing for the series id."""
        avg = self.values(starts_ms)
        n_t, n_s = avg.shape
        below = 1.0 - _SPREAD * self.rng.random((n_t, n_s))
        above = 1.0 + _SPREAD * self.rng.random((n_t, n_s))
        t = np.tile(starts_ms, n_s)
        return Buckets(
            series_ids=np.repeat(np.arange(n_s, dtype=np.int64), n_t),
            t=t,
            min=(avg * below).T.ravel(),
            max=(avg * above).T.ravel(),
            sum=(avg * count).T.ravel(),
            count=np.full(n_t * n_s, count, dtype=np.int64),
            last=avg.T.ravel(),
            last_t=t + (count - 1) * 1000,
        )


def _host(index: int, seed: int) -> Host:
    demo = DemoHost(index, seed)
    identity = demo.source()
    info = SourceInfo(
        DOMAIN, identity.machine_id, identity.hostname, tuple(sorted(identity.labels.items()))
    )
    _, level = demo.sample(1.0)
    rng = np.random.default_rng([seed, index])
    phase = rng.uniform(0, 2 * np.pi, len(demo.series))
    return Host(info, demo.series, np.asarray(level, dtype=np.float64), phase, rng)


@dataclass(slots=True)
class FleetHistory:
    """The history's hosts, its time spans, and per host the expected hourly aggregates."""

    spec: HistorySpec
    end_ms: int
    hosts: list[Host]
    last_frame: dict[str, tuple[int, Float64Array]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)  # last batch sequence per host
    _parts: dict[str, list[Buckets]] = field(default_factory=dict, init=False, repr=False)
    _merged: dict[str, Buckets] = field(default_factory=dict, init=False, repr=False)

    @property
    def raw_start_ms(self) -> int:
        start = self.end_ms - self.spec.raw_minutes * M1
        return start - start % M1

    @property
    def m1_start_ms(self) -> int:
        """An hour's start, so every hour before the raw span's is whole in one tier."""
        hour = self.raw_start_ms - self.raw_start_ms % H1
        return hour - self.spec.m1_hours * H1

    @property
    def h1_start_ms(self) -> int:
        start = self.end_ms - self.spec.days * DAY_MS
        return start - start % H1

    def by_id(self, host_id: str) -> Host:
        return next(h for h in self.hosts if h.id == host_id)

    def h1_rows(self, host: Host) -> Buckets:
        """Hourly rows stored directly (before the 1-minute span)."""
        starts = np.arange(self.h1_start_ms, self.m1_start_ms, H1, dtype=np.int64)
        return host.buckets(starts, H1 // 1000)

    def m1_rows(self, host: Host) -> Buckets:
        """1-minute rows of the span before the raw frames."""
        starts = np.arange(self.m1_start_ms, self.raw_start_ms, M1, dtype=np.int64)
        return host.buckets(starts, M1 // 1000)

    def m1_hourly(self, m1: Buckets) -> Buckets:
        """The hourly rows of the whole hours ``m1`` covers (those before the raw span's
        hour, which the rollup job closes), rolled up from ``m1`` as the job does."""
        done = m1.t < self.raw_start_ms - self.raw_start_ms % H1
        return merge([Buckets(*(a[done] for a in _columns(m1)))], H1)

    def frames(self, host: Host, start_ms: int, end_ms: int) -> tuple[Int64Array, Float64Array]:
        times = np.arange(start_ms, end_ms, 1000, dtype=np.int64)
        return times, host.values(times)

    def batches(
        self, host: Host, times: Int64Array, values: Float64Array, per_batch: int = 0
    ) -> list[SeriesBatch]:
        """``times``/``values`` as batches of ``per_batch`` frames (``frames_per_batch`` by
        default), numbered after the host's last batch; what they hold joins the expected
        aggregates and the host's last frame."""
        out = []
        step = per_batch or self.spec.frames_per_batch
        seq = self.sequences.get(host.id, 0)
        for i in range(0, len(times), step):
            seq += 1
            out.append(
                SeriesBatch(host.info, seq, host.series, times[i : i + step], values[i : i + step])
            )
        self.sequences[host.id] = seq
        self.add(host, bucket_matrix(np.arange(len(host.series)), times, values, H1))
        if len(times):
            self.last_frame[host.id] = (int(times[-1]), values[-1])
        return out

    def add(self, host: Host, buckets: Buckets) -> None:
        """Fold aggregates (of any step up to an hour) into what a read of ``host`` must
        answer."""
        self._parts.setdefault(host.id, []).append(buckets)
        self._merged.pop(host.id, None)

    def expected(self, host_id: str) -> Buckets:
        """Every hour's aggregates of ``host_id``'s series, sorted by (column, t)."""
        found = self._merged.get(host_id)
        if found is None:
            found = self._merged[host_id] = merge(self._parts.get(host_id, []), H1)
            self._parts[host_id] = [found]
        return found

    def expected_points(
        self, host_id: str, column: int, start_ms: int, end_ms: int
    ) -> tuple[Int64Array, Float64Array, Float64Array, Float64Array, Int64Array]:
        """``(t, avg, min, max, count)`` an hourly read of ``[start_ms, end_ms)`` answers."""
        b = self.expected(host_id)
        lo = int(np.searchsorted(b.series_ids, column, "left"))
        hi = int(np.searchsorted(b.series_ids, column, "right"))
        t = b.t[lo:hi]
        keep = slice(
            lo + int(np.searchsorted(t, start_ms - start_ms % H1)),
            lo + int(np.searchsorted(t, end_ms)),
        )
        return (
            b.t[keep],
            b.sum[keep] / b.count[keep],
            b.min[keep],
            b.max[keep],
            b.count[keep],
        )


def _columns(b: Buckets) -> tuple[np.ndarray, ...]:
    return (b.series_ids, b.t, b.min, b.max, b.sum, b.count, b.last, b.last_t)


def make_history(spec: HistorySpec, end_ms: int | None = None) -> FleetHistory:
    """The fleet's hosts and time spans, ending now (to the second) unless told."""
    end = end_ms if end_ms is not None else time.time_ns() // 1_000_000
    end -= end % 1000
    hosts = [_host(i, spec.seed) for i in range(1, spec.hosts + 1)]
    return FleetHistory(spec, end, hosts)
