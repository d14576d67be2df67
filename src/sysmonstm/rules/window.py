"""Sliding windows over one group's samples, amortised O(1) per sample.

A window of span ``S`` at time ``T`` holds the samples with ``T - S < time <= T``. Sample
times must not decrease (the engine clamps late observations to the group's newest time).
Running sums make ``avg``/``sum``/``rate`` O(1); they are recomputed exactly once as many
samples have left as remain, which bounds float drift at amortised O(1) cost. ``min`` and
``max`` keep a monotonic deque (a sample that can never be the extreme again is dropped).

Results of an empty window: ``count`` and ``sum`` are 0 (nothing happened), ``avg``, ``min``,
``max`` are ``None`` (unknown). ``rate`` is the per-second increase of a counter between the
window's first and last samples, counting a drop as a reset (the new value is the increase
since the reset, as Prometheus does); it needs two samples at distinct times, else ``None``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from sysmonstm.rules.model import Aggregate, Window


class SlidingWindow(Protocol):
    """One group's window for one rule."""

    def add(self, time_ms: int, value: float) -> None:
        """Add a sample at ``time_ms`` (not before the previous one) and expire old ones."""
        ...

    def expire(self, now_ms: int) -> None:
        """Drop the samples that have left the window at ``now_ms``."""
        ...

    def result(self) -> float | None:
        """The aggregate over the samples held, ``None`` when it is unknown."""
        ...

    def add_result(self, time_ms: int, value: float) -> float | None:
        """``add`` then ``result`` in one call (the engine's hot path)."""
        ...

    def __len__(self) -> int: ...


class CountWindow:
    """How many samples fell in the window (values are ignored)."""

    __slots__ = ("_span", "_times")

    def __init__(self, span_ms: int) -> None:
        self._span = span_ms
        self._times: deque[int] = deque()

    def add(self, time_ms: int, value: float) -> None:
        self._times.append(time_ms)
        self.expire(time_ms)

    def expire(self, now_ms: int) -> None:
        cutoff = now_ms - self._span
        times = self._times
        while times and times[0] <= cutoff:
            times.popleft()

    def result(self) -> float | None:
        return float(len(self._times))

    def add_result(self, time_ms: int, value: float) -> float | None:
        self.add(time_ms, value)
        return float(len(self._times))

    def __len__(self) -> int:
        return len(self._times)


class SumWindow:
    """The sum of the samples, or their mean when ``mean`` is set."""

    __slots__ = ("_evicted", "_mean", "_samples", "_span", "_sum")

    def __init__(self, span_ms: int, *, mean: bool) -> None:
        self._span = span_ms
        self._mean = mean
        self._samples: deque[tuple[int, float]] = deque()
        self._sum = 0.0
        self._evicted = 0

    def add(self, time_ms: int, value: float) -> None:
        self._samples.append((time_ms, value))
        self._sum += value
        self.expire(time_ms)

    def expire(self, now_ms: int) -> None:
        cutoff = now_ms - self._span
        samples = self._samples
        while samples and samples[0][0] <= cutoff:
            self._sum -= samples.popleft()[1]
            self._evicted += 1
        if self._evicted and self._evicted >= len(samples):
            self._sum = math.fsum(v for _, v in samples)
            self._evicted = 0

    def result(self) -> float | None:
        if not self._mean:
            return self._sum
        n = len(self._samples)
        return self._sum / n if n else None

    def add_result(self, time_ms: int, value: float) -> float | None:
        samples = self._samples
        samples.append((time_ms, value))
        self._sum += value
        if samples[0][0] <= time_ms - self._span:
            self.expire(time_ms)
        return self._sum / len(samples) if self._mean else self._sum

    def __len__(self) -> int:
        return len(self._samples)


class ExtremumWindow:
    """The largest (or, with ``largest=False``, smallest) sample held."""

    __slots__ = ("_largest", "_mono", "_span", "_times")

    def __init__(self, span_ms: int, *, largest: bool) -> None:
        self._span = span_ms
        self._largest = largest
        # Candidates only: each is more extreme than every later sample still held.
        self._mono: deque[tuple[int, float]] = deque()
        self._times: deque[int] = deque()

    def add(self, time_ms: int, value: float) -> None:
        mono = self._mono
        if self._largest:
            while mono and mono[-1][1] <= value:
                mono.pop()
        else:
            while mono and mono[-1][1] >= value:
                mono.pop()
        mono.append((time_ms, value))
        self._times.append(time_ms)
        self.expire(time_ms)

    def expire(self, now_ms: int) -> None:
        cutoff = now_ms - self._span
        mono, times = self._mono, self._times
        while mono and mono[0][0] <= cutoff:
            mono.popleft()
        while times and times[0] <= cutoff:
            times.popleft()

    def result(self) -> float | None:
        return self._mono[0][1] if self._mono else None

    def add_result(self, time_ms: int, value: float) -> float | None:
        self.add(time_ms, value)
        return self._mono[0][1]

    def __len__(self) -> int:
        return len(self._times)


class RateWindow:
    """Per-second increase of a counter over the window, resets counted as restarts."""

    __slots__ = ("_evicted", "_increase", "_prev", "_samples", "_span")

    def __init__(self, span_ms: int) -> None:
        self._span = span_ms
        # (time, increase since the previous sample, even one already expired)
        self._samples: deque[tuple[int, float]] = deque()
        self._increase = 0.0
        self._prev: float | None = None
        self._evicted = 0

    def add(self, time_ms: int, value: float) -> None:
        prev = self._prev
        delta = 0.0 if prev is None else (value - prev if value >= prev else value)
        self._prev = value
        self._samples.append((time_ms, delta))
        self._increase += delta
        self.expire(time_ms)

    def expire(self, now_ms: int) -> None:
        cutoff = now_ms - self._span
        samples = self._samples
        while samples and samples[0][0] <= cutoff:
            self._increase -= samples.popleft()[1]
            self._evicted += 1
        if self._evicted and self._evicted >= len(samples):
            self._increase = math.fsum(d for _, d in samples)
            self._evicted = 0

    def result(self) -> float | None:
        samples = self._samples
        if len(samples) < 2:
            return None
        first_ms, first_delta = samples[0]
        elapsed_ms = samples[-1][0] - first_ms
        if elapsed_ms <= 0:
            return None
        # The first sample's delta reaches back before the window; it is not counted.
        return (self._increase - first_delta) * 1000.0 / elapsed_ms

    def add_result(self, time_ms: int, value: float) -> float | None:
        self.add(time_ms, value)
        return self.result()

    def __len__(self) -> int:
        return len(self._samples)


def new_window(window: Window) -> SlidingWindow:
    """An empty window computing ``window.agg`` over ``window.ms``."""
    agg, span = window.agg, window.ms
    if agg is Aggregate.COUNT:
        return CountWindow(span)
    if agg is Aggregate.SUM:
        return SumWindow(span, mean=False)
    if agg is Aggregate.AVG:
        return SumWindow(span, mean=True)
    if agg is Aggregate.RATE:
        return RateWindow(span)
    return ExtremumWindow(span, largest=agg is Aggregate.MAX)
