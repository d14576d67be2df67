"""Small builders for conformance tests."""

from __future__ import annotations

import numpy as np

from sysmonstm.store.model import SeriesBatch, SourceInfo

T0 = 1_796_400_000_000  # 2026-12-04 03:20 UTC, minute- and hour-aligned
T0 -= T0 % 3_600_000


def source(sid: str = "m1", domain: str = "metrics", name: str = "host-1") -> SourceInfo:
    return SourceInfo(domain, sid, name, (("role", "web"),))


def batch(
    seq: int,
    times: list[int],
    values: list[list[float]],
    series: tuple[str, ...] = ("cpu.used", 'disk.used_pct{mount="/"}'),
    src: SourceInfo | None = None,
    interval_ms: int = 1000,
) -> SeriesBatch:
    return SeriesBatch(
        src or source(),
        seq,
        series,
        np.asarray(times, dtype=np.int64),
        np.asarray(values, dtype=np.float64),
        interval_ms,
    )


def ticks(
    first_seq: int, start_ms: int, n: int, step_ms: int = 1000, src: SourceInfo | None = None
) -> list[SeriesBatch]:
    """``n`` one-frame batches: cpu.used = i, disk = 100 + i, at ``start_ms + i * step``."""
    return [
        batch(
            first_seq + i,
            [start_ms + i * step_ms],
            [[float(i), 100.0 + i]],
            src=src,
            interval_ms=step_ms,
        )
        for i in range(n)
    ]
