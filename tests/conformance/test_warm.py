"""Warm tier conformance: every backend in ``WARMS`` must pass all of these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sysmonstm.errors import BackendError
from sysmonstm.store.model import Record, Retention, Tier
from sysmonstm.store.partitions import partition_name
from sysmonstm.store.progress import SILENCE_GRACE_MS
from sysmonstm.store.warm import WarmTier
from tests.conformance.backends import WARMS
from tests.conformance.helpers import T0, batch, source, ticks

DISK = 'disk.used_pct{mount="/"}'


@pytest.fixture(params=sorted(WARMS), ids=lambda name: f"warm={name}")
def warm_factory(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def warm(
    warm_factory: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[WarmTier]:
    async with WARMS[warm_factory](request, tmp_path, Retention()) as w:
        yield w


async def test_write_returns_new_batches_and_moves_the_watermark(warm: WarmTier) -> None:
    stored = await warm.write(ticks(1, T0, 5))
    assert [b.sequence for b in stored] == [1, 2, 3, 4, 5]
    assert await warm.stored_through("metrics", "m1") == 5
    assert await warm.stored_through("metrics", "other") == 0


async def test_replayed_batches_are_skipped_and_stored_once(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 5))
    again = await warm.write(ticks(1, T0, 8))
    assert [b.sequence for b in again] == [6, 7, 8]
    pts = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 60_000, Tier.RAW)
    assert pts.times_ms.tolist() == [T0 + i * 1000 for i in range(8)]


async def test_raw_reads_return_exact_samples(warm: WarmTier) -> None:
    await warm.write(
        [batch(1, [T0, T0 + 1000, T0 + 2000], [[1.5, 10.0], [2.25, 20.0], [-3.0, 30.0]])]
    )
    pts = await warm.read("metrics", "m1", DISK, T0, T0 + 3000, Tier.RAW)
    assert pts.times_ms.tolist() == [T0, T0 + 1000, T0 + 2000]
    assert pts.avg.tolist() == [10.0, 20.0, 30.0]
    cpu = await warm.read("metrics", "m1", "cpu.used", T0 + 1000, T0 + 2000, Tier.RAW)
    assert cpu.avg.tolist() == [2.25]


async def test_a_source_whose_series_change_reads_each_series_right(warm: WarmTier) -> None:
    await warm.write([batch(1, [T0], [[1.0, 2.0]])])
    await warm.write(
        [batch(2, [T0 + 1000], [[5.0, 3.0, 4.0]], series=("temp.celsius", "cpu.used", DISK))]
    )
    cpu = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 2000, Tier.RAW)
    assert cpu.avg.tolist() == [1.0, 3.0]
    temp = await warm.read("metrics", "m1", "temp.celsius", T0, T0 + 2000, Tier.RAW)
    assert temp.times_ms.tolist() == [T0 + 1000]
    assert await warm.series("metrics", "m1") == sorted(["cpu.used", DISK, "temp.celsius"])


async def test_rollups_hold_min_max_avg_count_per_minute_and_hour(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 3 * 3600, step_ms=1000))
    assert await warm.rollup() > 0
    m1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 180_000, Tier.M1)
    assert m1.times_ms.tolist() == [T0, T0 + 60_000, T0 + 120_000]
    assert m1.min.tolist() == [0.0, 60.0, 120.0]
    assert m1.max.tolist() == [59.0, 119.0, 179.0]
    assert m1.avg.tolist() == [29.5, 89.5, 149.5]
    assert m1.count.tolist() == [60, 60, 60]
    h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 3 * 3_600_000, Tier.H1)
    assert h1.times_ms.tolist() == [T0, T0 + 3_600_000, T0 + 7_200_000]
    assert h1.count.tolist() == [3600, 3600, 3600]
    assert h1.min.tolist() == [0.0, 3600.0, 7200.0]
    assert h1.avg.tolist() == pytest.approx([1799.5, 5399.5, 8999.5])


async def test_rollup_tiers_reach_the_newest_sample_before_a_rollup(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 150))
    m1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 150_000, Tier.M1)
    assert m1.count.tolist() == [60, 60, 30]
    h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 150_000, Tier.H1)
    assert h1.count.tolist() == [150]
    assert h1.max.tolist() == [149.0]


async def test_an_hourly_read_joins_hours_minutes_and_raw_samples(warm: WarmTier) -> None:
    """Past the rollups' progress an hourly read takes 1-minute rows, then raw samples."""
    await warm.write(ticks(1, T0, 9030))  # 2.5 h and 30 s
    await warm.rollup(now_ms=T0 + 9030_000)  # hours through T0 + 2 h, minutes through 2.5 h
    await warm.write(ticks(9031, T0 + 9030_000, 60))  # cpu.used = 0 .. 59 again
    h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 3 * 3_600_000, Tier.H1)
    assert h1.times_ms.tolist() == [T0, T0 + 3_600_000, T0 + 7_200_000]
    assert h1.count.tolist() == [3600, 3600, 1890]
    assert h1.min.tolist() == [0.0, 3600.0, 0.0]
    assert h1.max.tolist() == [3599.0, 7199.0, 9029.0]
    third = (sum(range(7200, 9030)) + sum(range(60))) / 1890
    assert h1.avg.tolist() == pytest.approx([1799.5, 5399.5, third])


async def test_rollups_are_idempotent(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 600))
    await warm.rollup()
    await warm.rollup()
    m1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 600_000, Tier.M1)
    assert m1.count.tolist() == [60] * 10


async def test_late_samples_are_rolled_up_again(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 600))
    await warm.rollup()
    late = batch(601, [T0 + 90_500], [[1000.0, 0.0]])
    assert len(await warm.write([late])) == 1
    await warm.rollup()
    m1 = await warm.read("metrics", "m1", "cpu.used", T0 + 60_000, T0 + 120_000, Tier.M1)
    assert m1.count.tolist() == [61]
    assert m1.max.tolist() == [1000.0]
    h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 3_600_000, Tier.H1)
    assert h1.max.tolist() == [1000.0]
    assert h1.count.tolist() == [601]


async def test_frames_across_midnight_land_in_their_days(warm: WarmTier) -> None:
    midnight = T0 - T0 % 86_400_000 + 86_400_000
    await warm.write(ticks(1, midnight - 3000, 6))
    pts = await warm.read(
        "metrics", "m1", "cpu.used", midnight - 10_000, midnight + 10_000, Tier.RAW
    )
    assert pts.avg.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


async def test_sources_series_and_latest_describe_what_is_stored(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 10, src=source("a", name="alpha")))
    await warm.write(ticks(1, T0 + 5000, 10, src=source("b", name="beta")))
    states = await warm.sources("metrics")
    assert [s.source.id for s in states] == ["b", "a"]
    assert states[0].source.name == "beta"
    assert states[0].source.labels == (("role", "web"),)
    assert (states[0].first_seen_ms, states[0].last_seen_ms) == (T0 + 5000, T0 + 14_000)
    assert states[0].series_count == 2
    latest = {lv.series: (lv.time_ms, lv.value) for lv in await warm.latest("metrics", "a")}
    assert latest == {"cpu.used": (T0 + 9000, 9.0), DISK: (T0 + 9000, 109.0)}
    assert await warm.sources("deskmeter") == []
    assert await warm.latest("metrics", "nope") == []


async def test_latest_takes_each_series_from_the_newest_frame_that_holds_it(
    warm: WarmTier,
) -> None:
    """When a source's series change, a series left out of the newest frames keeps the value
    of the newest frame that still had it."""
    await warm.write([batch(1, [T0, T0 + 1000], [[1.0, 10.0], [2.0, 20.0]])])
    await warm.write([batch(2, [T0 + 2000], [[3.0, 30.0]], series=("cpu.used", "temp.celsius"))])
    await warm.write([batch(3, [T0 + 3000], [[4.0]], series=("cpu.used",))])
    latest = {lv.series: (lv.time_ms, lv.value) for lv in await warm.latest("metrics", "m1")}
    assert latest == {
        "cpu.used": (T0 + 3000, 4.0),
        DISK: (T0 + 1000, 20.0),
        "temp.celsius": (T0 + 2000, 30.0),
    }


async def test_retention_drops_old_data_per_tier(
    warm_factory: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    day = 86_400_000
    retention = Retention(raw_ms=2 * day, m1_ms=400 * day, h1_ms=800 * day)
    async with WARMS[warm_factory](request, tmp_path, retention) as warm:
        await warm.write(ticks(1, T0 - 5 * day, 120))
        await warm.write(ticks(121, T0, 120))
        await warm.rollup()
        dropped = await warm.enforce_retention(T0 + 60_000)
        assert dropped[Tier.RAW] >= 1
        old = await warm.read("metrics", "m1", "cpu.used", T0 - 6 * day, T0 - 4 * day, Tier.RAW)
        assert len(old) == 0
        new = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 120_000, Tier.RAW)
        assert len(new) == 120
        rolled = await warm.read("metrics", "m1", "cpu.used", T0 - 6 * day, T0 - 4 * day, Tier.M1)
        assert rolled.count.tolist() == [60, 60]


async def test_data_and_watermarks_survive_a_reopen(
    warm_factory: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with WARMS[warm_factory](request, tmp_path, Retention()) as warm:
        await warm.write(ticks(1, T0, 10))
    async with WARMS[warm_factory](request, tmp_path, Retention()) as warm:
        assert await warm.stored_through("metrics", "m1") == 10
        assert [b.sequence for b in await warm.write(ticks(1, T0, 12))] == [11, 12]
        pts = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 60_000, Tier.RAW)
        assert np.array_equal(pts.avg, np.arange(12, dtype=np.float64))


async def test_records_are_kept_once_and_listed_newest_first(warm: WarmTier) -> None:
    recs = [Record("alert", f"r{i}", T0 + i, f"k{i % 2}", {"n": i}) for i in range(5)]
    await warm.append_records(recs)
    await warm.append_records(recs[:2])
    got = await warm.records("alert")
    assert [r.id for r in got] == ["r4", "r3", "r2", "r1", "r0"]
    assert got[0].body == {"n": 4}
    assert [r.id for r in await warm.records("alert", key="k1")] == ["r3", "r1"]
    window = await warm.records("alert", start_ms=T0 + 1, end_ms=T0 + 3)
    assert [r.id for r in window] == ["r2", "r1"]
    assert [r.id for r in await warm.records("alert", limit=2)] == ["r4", "r3"]
    assert await warm.records("other") == []


async def test_one_write_is_all_or_nothing(warm: WarmTier) -> None:
    good = ticks(1, T0, 3)
    broken = batch(4, [T0 + 3000, T0 + 3000], [[1.0, 2.0], [3.0, 4.0]])  # same instant twice
    with pytest.raises(BackendError):
        await warm.write([*good, broken])
    assert await warm.stored_through("metrics", "m1") == 0
    assert len(await warm.read("metrics", "m1", "cpu.used", T0, T0 + 10_000, Tier.RAW)) == 0
    assert len(await warm.write(good)) == 3


async def test_partitions_export_in_the_archive_format_and_drop(warm: WarmTier) -> None:
    day = 86_400_000
    await warm.write(ticks(1, T0 - 2 * day, 120))
    await warm.write(ticks(121, T0, 60, src=source("b", name="beta")))
    await warm.rollup()
    parts = await warm.partitions()
    raw = [p for p in parts if p.tier is Tier.RAW]
    assert [p.end_ms - p.start_ms for p in raw] == [day, day]
    assert raw[0].start_ms <= T0 - 2 * day < raw[0].end_ms
    table = await warm.export_partition(raw[0].name)
    assert table.column_names == ["domain", "source", "series", "t", "value"]
    assert table.num_rows == 240
    rows = table.to_pylist()
    cpu = [r for r in rows if r["series"] == "cpu.used"]
    assert [r["value"] for r in cpu] == [float(i) for i in range(120)]
    assert {(r["domain"], r["source"]) for r in rows} == {("metrics", "m1")}
    assert [r["t"] for r in cpu] == sorted(r["t"] for r in cpu)
    m1 = next(p for p in parts if p.tier is Tier.M1 and p.start_ms <= T0 - 2 * day < p.end_ms)
    rolled = (await warm.export_partition(m1.name)).to_pylist()
    first = next(r for r in rolled if r["series"] == "cpu.used" and r["source"] == "m1")
    assert (first["min"], first["max"], first["count"]) == (0.0, 59.0, 60)
    await warm.drop_partition(raw[0].name)
    assert raw[0].name not in [p.name for p in await warm.partitions()]
    gone = await warm.read("metrics", "m1", "cpu.used", T0 - 3 * day, T0 - day, Tier.RAW)
    assert len(gone) == 0


async def _drop_finer_tiers(warm: WarmTier) -> None:
    """What retention or the archive leave of old data: the 1-hour tier only."""
    for p in await warm.partitions():
        if p.tier in (Tier.RAW, Tier.M1):
            await warm.drop_partition(p.name)


async def test_a_source_that_stopped_sending_gets_its_last_minute_and_hour_rolled_up(
    warm: WarmTier,
) -> None:
    n = 90 * 60 + 30  # one sample a second, the last at T0 + 1:30:29
    await warm.write(ticks(1, T0, n))
    last = T0 + (n - 1) * 1000
    assert await warm.rollup(now_ms=last + 1000) > 0
    assert await warm.rollup(now_ms=last + SILENCE_GRACE_MS) == 0  # still within the grace
    h1_part = partition_name(Tier.H1, T0)
    open_hours = [r["t"] for r in (await warm.export_partition(h1_part)).to_pylist()]
    assert open_hours == [T0, T0]  # the complete first hour of both series, nothing more
    assert await warm.rollup(now_ms=last + SILENCE_GRACE_MS + 1) > 0  # silent: closed
    assert await warm.rollup(now_ms=last + 10 * SILENCE_GRACE_MS) == 0
    await _drop_finer_tiers(warm)
    h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 2 * 3_600_000, Tier.H1)
    assert h1.times_ms.tolist() == [T0, T0 + 3_600_000]
    assert h1.count.tolist() == [3600, n - 3600]
    assert h1.max.tolist() == [3599.0, float(n - 1)]


async def test_samples_after_a_source_was_closed_are_rolled_up_as_late_data(
    warm: WarmTier,
) -> None:
    minute, hour = 60_000, 3_600_000
    await warm.write(ticks(1, T0, 20 * 60 + 30))  # until T0 + 0:20:29, then silent
    await warm.rollup(now_ms=T0 + 20 * minute + 29_000 + SILENCE_GRACE_MS + 1)
    # a late sample for the closed minute, then the source sends again within the closed
    # hour and on into the next one
    await warm.write([batch(1231, [T0 + 20 * minute + 29_500], [[5000.0, 0.0]])])
    await warm.write(ticks(1232, T0 + 40 * minute, 20 * 60))  # 0:40:00 .. 0:59:59
    await warm.rollup(now_ms=T0 + hour)
    await warm.write(ticks(2432, T0 + hour, 20 * 60))  # 1:00:00 .. 1:19:59
    await warm.rollup(now_ms=T0 + 80 * minute)
    await warm.rollup(now_ms=T0 + 80 * minute + SILENCE_GRACE_MS + 1)
    m1 = await warm.read("metrics", "m1", "cpu.used", T0 + 20 * minute, T0 + 21 * minute, Tier.M1)
    assert (m1.count.tolist(), m1.max.tolist()) == ([31], [5000.0])
    await _drop_finer_tiers(warm)
    h1 = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 2 * hour, Tier.H1)
    assert h1.times_ms.tolist() == [T0, T0 + hour]
    assert h1.count.tolist() == [20 * 60 + 30 + 1 + 20 * 60, 20 * 60]
    assert h1.max.tolist() == [5000.0, 1199.0]


def _as_source(table: pa.Table, source: str) -> pa.Table:
    """``table`` (in the archive's long format) with every row moved to ``source``."""
    i = table.schema.get_field_index("source")
    return table.set_column(i, table.schema.field(i), pa.array([source] * len(table), pa.string()))


async def test_a_source_an_import_creates_is_never_rolled_up_again(warm: WarmTier) -> None:
    await warm.write(ticks(1, T0, 150))  # until T0 + 0:02:29
    assert await warm.rollup(now_ms=T0 + 150_000 + SILENCE_GRACE_MS) > 0
    for p in await warm.partitions():
        await warm.import_partition(p.name, _as_source(await warm.export_partition(p.name), "b"))
    assert await warm.rollup(now_ms=T0 + 100 * SILENCE_GRACE_MS) == 0  # "b" is long silent
    h1 = await warm.read("metrics", "b", "cpu.used", T0, T0 + 3_600_000, Tier.H1)
    assert (h1.count.tolist(), h1.max.tolist()) == ([150], [149.0])


async def test_a_late_sample_after_its_raw_day_was_dropped_rewrites_only_its_series(
    warm: WarmTier,
) -> None:
    await warm.write(ticks(1, T0, 180))
    await warm.rollup(T0 + 2 * 3_600_000)  # silent since: its minutes and hour rolled up
    for p in await warm.partitions():
        if p.tier is Tier.RAW:
            await warm.drop_partition(p.name)
    late = batch(181, [T0 + 30_500], [[1000.0]], series=("cpu.used",))
    assert len(await warm.write([late])) == 1
    await warm.rollup(T0 + 2 * 3_600_000)
    disk = await warm.read("metrics", "m1", DISK, T0, T0 + 60_000, Tier.M1)
    assert (disk.count.tolist(), disk.max.tolist()) == ([60], [159.0])
    cpu = await warm.read("metrics", "m1", "cpu.used", T0, T0 + 120_000, Tier.M1)
    assert cpu.count.tolist() == [1, 60]  # its minute is what its raw samples now hold
    assert cpu.max.tolist() == [1000.0, 119.0]
