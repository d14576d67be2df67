"""Builders shared by the archive tests: warm-tier history worth archiving, a clock, bits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from sysmonstm.store.model import Retention, SeriesBatch, SeriesPoints, SourceInfo
from sysmonstm.store.warm_sqlite import SqliteWarm

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
T0 = 1_780_272_000_000  # 2026-06-01 00:00 UTC: a day, a month (not a year) start
SERIES = ("cpu.used", 'disk.used_pct{mount="/"}', 'net.rx_bps{iface="eth0"}')
SOURCES = ("h-1", "h-2")
NOTHING_DUE = Retention(raw_ms=10_000 * DAY, m1_ms=10_000 * DAY, h1_ms=10_000 * DAY)
ALL_DUE = Retention(raw_ms=DAY, m1_ms=DAY, h1_ms=DAY)


class Clock:
    """A settable clock in Unix ms."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


def history(
    source: str,
    start_ms: int,
    frames: int,
    step_ms: int = 10_000,
    seed: int = 0,
    series: tuple[str, ...] = SERIES,
    domain: str = "metrics",
) -> SeriesBatch:
    """One batch of full-precision random walks (the hardest values to compress)."""
    rng = np.random.default_rng(seed)
    values = np.abs(1000.0 + np.cumsum(rng.normal(0, 1, (frames, len(series))), axis=0))
    times = start_ms + np.arange(frames, dtype=np.int64) * step_ms
    return SeriesBatch(
        SourceInfo(domain, source, f"{source}.example"),
        seed + 1,
        series,
        times,
        values,
        step_ms,
    )


async def fill(warm: SqliteWarm, days: int = 2, step_ms: int = 10_000) -> None:
    """``days`` days from ``T0`` of every ``SOURCES`` host, rolled up."""
    frames = days * DAY // step_ms
    for i, source in enumerate(SOURCES):
        await warm.write([history(source, T0, frames, step_ms, seed=i)])
    await warm.rollup()


@asynccontextmanager
async def sqlite_warm(path: Path, retention: Retention = NOTHING_DUE) -> AsyncIterator[SqliteWarm]:
    warm = SqliteWarm(f"sqlite:///{path}", retention=retention)
    await warm.open()
    try:
        yield warm
    finally:
        await warm.close()


def bits(points: SeriesPoints) -> tuple[list[int], ...]:
    """Every column of ``points`` as exact bit patterns (float64 viewed as uint64)."""
    return (
        points.times_ms.tolist(),
        points.avg.view(np.uint64).tolist(),
        points.min.view(np.uint64).tolist(),
        points.max.view(np.uint64).tolist(),
        points.count.tolist(),
    )
