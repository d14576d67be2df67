"""The queries suite's fleet history: its spans fit together, and loaded through the warm
tier's own write, import and rollup it reads back as the history says, on every backend."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from bench.fleet_history import DOMAIN, HistorySpec, make_history
from bench.fleet_load import check, load, plan
from sysmonstm.store.model import Retention, Tier
from sysmonstm.store.progress import H1, M1
from sysmonstm.store.warm_sqlite import SqliteWarm

SPEC = HistorySpec(hosts=3, days=2, m1_hours=1, raw_minutes=5)


def test_the_spans_follow_each_other_on_bucket_bounds() -> None:
    """Hourly rows up to the 1-minute span (an hour's start), minutes up to the raw frames."""
    h = make_history(SPEC, end_ms=1_796_443_210_500)
    assert h.end_ms % 1000 == 0
    assert h.raw_start_ms % M1 == 0
    assert h.end_ms - h.raw_start_ms >= SPEC.raw_minutes * M1
    assert h.m1_start_ms % H1 == 0
    assert h.h1_start_ms % H1 == 0
    host = h.hosts[0]
    assert h.h1_rows(host).t.max() == h.m1_start_ms - H1
    assert h.m1_rows(host).t.max() == h.raw_start_ms - M1
    assert len(host.series) == len(set(host.series)) > 40


async def test_a_loaded_history_reads_back_as_generated(tmp_path: Path) -> None:
    """Sources, latest values and hourly reads of the loaded SQLite warm tier are the
    history's (``check`` raises otherwise); the read is of the hourly tier."""
    h = make_history(SPEC, end_ms=time.time_ns() // 1_000_000)
    loading = plan(h, Retention())
    warm = SqliteWarm(f"sqlite:///{tmp_path / 'warm.db'}")
    await warm.open()
    try:
        loaded = await load(loading, warm)
        assert loaded.h1_rows > 0
        assert loaded.m1_rows > 0
        assert loaded.raw_samples == sum(len(x.series) for x in h.hosts) * (
            (h.end_ms - h.raw_start_ms) // 1000
        )
        await check(h, warm, reads=3)
        host = h.hosts[1]
        got = await warm.read(DOMAIN, host.id, host.series[0], h.h1_start_ms, h.end_ms, Tier.H1)
        t, avg, *_ = h.expected_points(host.id, 0, h.h1_start_ms, h.end_ms)
        assert got.times_ms.tolist() == t.tolist()
        assert np.allclose(got.avg, avg, rtol=1e-9)
        assert {p.name for p in await warm.partitions() if p.tier is Tier.RAW} >= {
            n for n in loading.tables if n.startswith("raw_")
        }
    finally:
        await warm.close()


@pytest.mark.parametrize("per_batch", [0, 7])
def test_batches_continue_the_numbering_and_the_expected_hours(per_batch: int) -> None:
    """Frames added later are numbered after the history's batches and join its hours."""
    h = make_history(SPEC, end_ms=1_796_443_210_000)
    host = h.hosts[0]
    first = h.batches(host, *h.frames(host, h.raw_start_ms, h.end_ms))
    later = h.batches(host, *h.frames(host, h.end_ms, h.end_ms + 20_000), per_batch)
    assert [b.sequence for b in first + later] == list(range(1, len(first) + len(later) + 1))
    assert h.last_frame[host.id][0] == h.end_ms + 19_000
    _, _, _, _, count = h.expected_points(host.id, 0, h.raw_start_ms, h.end_ms + 20_000)
    assert int(count.sum()) == (h.end_ms + 20_000 - h.raw_start_ms) // 1000
