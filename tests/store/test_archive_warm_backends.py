"""Every warm backend (``WARMS``: SQLite, PostgreSQL) archives and restores through the same
job: reads are equal bit for bit before and after, and a restore exports what was archived."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.store.archive_file import FileStore
from sysmonstm.store.archive_parquet import content_checksum
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import Archiver, Status, restore_partition
from sysmonstm.store.hot_memory import MemoryHot
from sysmonstm.store.query import SeriesQueries
from sysmonstm.store.warm import WarmTier
from tests.conformance.warm_backends import WARMS
from tests.store.archive_support import (
    ALL_DUE,
    DAY,
    HOUR,
    MIN,
    NOTHING_DUE,
    SERIES,
    SOURCES,
    T0,
    Clock,
    bits,
    history,
)

RANGES = [(T0 + 5 * HOUR, T0 + 6 * HOUR, 1000), (T0 + 3 * HOUR, T0 + 33 * HOUR, 1000)]


@pytest.fixture(params=sorted(WARMS), ids=lambda name: f"warm={name}")
async def warm(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WarmTier]:
    async with WARMS[request.param](request, tmp_path, NOTHING_DUE) as w:
        for i, source in enumerate(SOURCES):
            await w.write([history(source, T0, 2 * DAY // 10_000, 10_000, seed=i)])
        await w.rollup()
        yield w


async def test_archive_and_restore_through_every_warm_backend(
    warm: WarmTier, tmp_path: Path
) -> None:
    clock = Clock(T0 + 3 * DAY)
    archive = ObjectArchive(FileStore(f"file://{tmp_path / 'archive'}"), listing_ttl_s=0)
    await archive.open()
    try:
        queries = SeriesQueries(
            MemoryHot(window_ms=5 * MIN, now_ms=clock), warm, NOTHING_DUE, clock, archive
        )

        async def snapshot() -> list[tuple[list[int], ...]]:
            return [
                bits(await queries.range("metrics", SOURCES[1], s, a, b, n))
                for a, b, n in RANGES
                for s in SERIES
            ]

        before = await snapshot()
        exported = {p.name: await warm.export_partition(p.name) for p in await warm.partitions()}
        outcomes = await Archiver(warm, archive, ALL_DUE, now_ms=clock).run(T0 + 1000 * DAY)
        assert {o.partition.name: o.status for o in outcomes} == dict.fromkeys(
            exported, Status.ARCHIVED
        )
        assert await warm.partitions() == []
        assert await snapshot() == before
        for name, table in exported.items():
            assert await restore_partition(warm, archive, name) == table.num_rows
            assert content_checksum(await warm.export_partition(name)) == content_checksum(table)
        assert await snapshot() == before
        assert await warm.rollup() == 0
    finally:
        await archive.close()
