"""Partitions go back into the warm tier: the import is the exact inverse of the export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyarrow as pa
import pytest

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.archive import ArchiveError
from sysmonstm.store.archive_file import FileStore
from sysmonstm.store.archive_parquet import content_checksum
from sysmonstm.store.archive_schema import RAW_SCHEMA
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import Archiver, restore_partition
from sysmonstm.store.model import Tier
from sysmonstm.store.warm_sqlite import SqliteWarm
from tests.store.archive_support import ALL_DUE, DAY, HOUR, SERIES, T0, bits, fill, history
from tests.store.archive_support import sqlite_warm as open_warm

PARTITIONS = ["h1_2026", "m1_202606", "raw_20260601", "raw_20260602"]


@pytest.fixture
async def warm(tmp_path: Path) -> AsyncIterator[SqliteWarm]:
    async with open_warm(tmp_path / "warm.db") as w:
        await fill(w)
        yield w


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[SqliteWarm]:
    async with open_warm(tmp_path / "fresh.db") as w:
        yield w


@pytest.mark.parametrize("name", PARTITIONS)
async def test_an_imported_partition_exports_the_same_content(
    warm: SqliteWarm, fresh: SqliteWarm, name: str
) -> None:
    table = await warm.export_partition(name)
    assert await fresh.import_partition(name, table) == table.num_rows
    assert content_checksum(await fresh.export_partition(name)) == content_checksum(table)
    assert await fresh.rollup() == 0  # an import never triggers rollups


async def test_imported_raw_data_reads_bit_for_bit_like_the_original(
    warm: SqliteWarm, fresh: SqliteWarm
) -> None:
    for name in ("raw_20260601", "raw_20260602"):
        await fresh.import_partition(name, await warm.export_partition(name))
    for series in SERIES:
        args = ("metrics", "h-1", series, T0 + 23 * HOUR, T0 + 25 * HOUR, Tier.RAW)
        assert bits(await fresh.read(*args)) == bits(await warm.read(*args))
    assert sorted(s.source.id for s in await fresh.sources("metrics")) == ["h-1", "h-2"]


async def test_an_import_replaces_the_partition_whole(warm: SqliteWarm) -> None:
    table = await warm.export_partition("raw_20260601")
    half = table.slice(0, table.num_rows // 2)
    await warm.import_partition("raw_20260601", half)
    assert content_checksum(await warm.export_partition("raw_20260601")) == content_checksum(half)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("raw_2026060", None, "not a partition"),
        ("m1_202606", None, "schema"),
        ("raw_20260602", None, "outside"),
    ],
)
async def test_a_bad_import_is_refused_and_changes_nothing(
    warm: SqliteWarm, name: str, change: None, message: str
) -> None:
    table = await warm.export_partition("raw_20260601")
    before = content_checksum(await warm.export_partition("m1_202606"))
    with pytest.raises(InvalidInputError, match=message):
        await warm.import_partition(name, table)
    assert [p.name for p in await warm.partitions()] == PARTITIONS
    assert content_checksum(await warm.export_partition("m1_202606")) == before
    del change


async def test_restore_brings_an_archived_partition_back(warm: SqliteWarm, tmp_path: Path) -> None:
    archive = ObjectArchive(FileStore(f"file://{tmp_path / 'archive'}"), listing_ttl_s=0)
    await archive.open()
    try:
        expected = await warm.export_partition("raw_20260602")
        await Archiver(warm, archive, ALL_DUE).run(now_ms=T0 + 1000 * DAY)
        assert await warm.partitions() == []
        late = history("h-9", T0 + DAY + HOUR, 30, 1000, seed=9)
        await warm.write([late])  # the warm tier holds a few late rows of that day
        rows = await restore_partition(warm, archive, "raw_20260602")
        assert rows == expected.num_rows + 30 * len(SERIES)
        restored = await warm.export_partition("raw_20260602")
        kept = restored.filter(pa.compute.not_equal(restored.column("source"), "h-9"))
        assert content_checksum(kept) == content_checksum(expected)
        with pytest.raises(ArchiveError, match="not in the archive"):
            await restore_partition(warm, archive, "raw_20250101")
    finally:
        await archive.close()


def test_the_raw_schema_is_what_exports_carry() -> None:
    assert RAW_SCHEMA.names == ["domain", "source", "series", "t", "value"]


async def test_two_rollup_rows_of_one_series_and_minute_are_refused(warm: SqliteWarm) -> None:
    table = await warm.export_partition("m1_202606")
    doubled = pa.concat_tables([table.slice(0, 1), table])
    with pytest.raises(InvalidInputError, match="two rollup rows"):
        await warm.import_partition("m1_202606", doubled)
    assert content_checksum(await warm.export_partition("m1_202606")) == content_checksum(table)
