"""Range queries reach the archive transparently: same tier, same points, bit for bit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sysmonstm.store.archive import ArchiveError
from sysmonstm.store.archive_file import FileStore
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import Archiver, Status
from sysmonstm.store.hot_memory import MemoryHot
from sysmonstm.store.model import PartitionInfo, Retention, Tier
from sysmonstm.store.query import SeriesQueries, choose_tier
from sysmonstm.store.warm_sqlite import SqliteWarm
from tests.store.archive_support import DAY, HOUR, MIN, SERIES, T0, Clock, bits, fill, sqlite_warm

RANGES = {  # name: (start, end, points, tier while the data is recent)
    "1 h, raw": (T0 + 5 * HOUR, T0 + 6 * HOUR, 1000, Tier.RAW),
    "across midnight, raw": (T0 + DAY - 30 * MIN, T0 + DAY + 30 * MIN, 1000, Tier.RAW),
    "30 h, 1 min": (T0 + 3 * HOUR, T0 + 33 * HOUR, 1000, Tier.M1),
    # not the last hour: a source that stopped never gets its last, partial hour rolled up,
    # and once its raw and 1-minute data leave the warm tier that hour is gone from reads
    "47 h, 1 h": (T0, T0 + 47 * HOUR, 40, Tier.H1),
}


@dataclass
class World:
    warm: SqliteWarm
    archive: ObjectArchive
    queries: SeriesQueries
    clock: Clock


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = Clock(T0 + 2 * DAY + HOUR)
    archive = ObjectArchive(FileStore(f"file://{tmp_path / 'archive'}"), listing_ttl_s=0)
    await archive.open()
    async with sqlite_warm(tmp_path / "warm.db", Retention()) as warm:
        await fill(warm)
        hot = MemoryHot(window_ms=5 * MIN, now_ms=clock)
        queries = SeriesQueries(hot, warm, Retention(), now_ms=clock, archive=archive)
        yield World(warm, archive, queries, clock)
    await archive.close()


Snapshot = dict[tuple[str, str], tuple[Tier, int, tuple[list[int], ...]]]


async def snapshot(queries: SeriesQueries) -> Snapshot:
    out: Snapshot = {}
    for name, (start, end, points, _) in RANGES.items():
        for series in SERIES:
            pts = await queries.range("metrics", "h-2", series, start, end, points)
            out[name, series] = (pts.tier, pts.step_ms, bits(pts))
    return out


async def test_points_read_from_the_archive_equal_those_read_while_warm(world: World) -> None:
    before = await snapshot(world.queries)
    tiers = {name: found[0] for (name, _), found in before.items()}
    assert tiers == {name: r[3] for name, r in RANGES.items()}
    world.clock.now = T0 + 400 * DAY  # raw days and the 1-minute month are past retention
    outcomes = await Archiver(world.warm, world.archive, Retention(), now_ms=world.clock).run()
    assert [o.partition.name for o in outcomes if o.status is Status.ARCHIVED] == [
        "m1_202606",
        "raw_20260601",
        "raw_20260602",
    ]
    assert [p.name for p in await world.warm.partitions()] == ["h1_2026"]
    assert await snapshot(world.queries) == before


async def test_a_range_over_an_archived_and_a_warm_day_merges_them(world: World) -> None:
    before = await snapshot(world.queries)
    archiver = Archiver(world.warm, world.archive, Retention())
    info = PartitionInfo(Tier.RAW, "raw_20260601", T0, T0 + DAY)
    assert (await archiver.archive_partition(info)).status is Status.ARCHIVED
    assert await snapshot(world.queries) == before


async def test_a_tier_reaches_back_to_its_oldest_archived_partition() -> None:
    now = T0 + 400 * DAY
    start = T0 + 5 * HOUR
    assert choose_tier(start, start + HOUR, 1000, now, Retention()) is Tier.H1
    archived = {Tier.RAW: T0, Tier.M1: T0}
    assert choose_tier(start, start + HOUR, 1000, now, Retention(), archived_from=archived) is (
        Tier.RAW
    )
    assert choose_tier(start, start + DAY, 1000, now, Retention(), archived_from=archived) is (
        Tier.M1
    )
    before = T0 - DAY
    assert choose_tier(before, before + HOUR, 1000, now, Retention(), archived_from=archived) is (
        Tier.H1
    )


async def test_recent_ranges_with_warm_points_never_list_the_archive(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = [0]
    original = world.archive.manifests

    async def counting() -> list[object]:
        listed[0] += 1
        return list(await original())

    monkeypatch.setattr(world.archive, "manifests", counting)
    await snapshot(world.queries)
    assert listed[0] == 0
    await world.queries.range("metrics", "no-such-host", "cpu.used", T0, T0 + HOUR)
    assert listed[0] == 1  # an empty period might be archived: the catalog is asked


async def test_an_unreadable_archive_leaves_the_warm_tier_answering(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await snapshot(world.queries)
    info = PartitionInfo(Tier.RAW, "raw_20260601", T0, T0 + DAY)
    await Archiver(world.warm, world.archive, Retention()).archive_partition(info)

    async def down() -> list[object]:
        raise ArchiveError("injected: the bucket is unreachable")

    monkeypatch.setattr(world.archive, "manifests", down)
    start, end, points, _ = RANGES["across midnight, raw"]
    pts = await world.queries.range("metrics", "h-2", SERIES[0], start, end, points)
    assert pts.times_ms.min() == T0 + DAY  # the archived half is missing, nothing raised
    assert await snapshot(world.queries) != before
