"""The archiving job: what is due, crash safety at every step, late data, and retention that
never drops a partition the archive does not hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.errors import BackendError
from sysmonstm.store.archive import ArchiveError
from sysmonstm.store.archive_file import FileStore
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import (
    Archiver,
    Status,
    archive_then_expire,
    due,
    read_partition,
)
from sysmonstm.store.model import Retention, Tier
from sysmonstm.store.warm_sqlite import SqliteWarm
from tests.store.archive_support import (
    ALL_DUE,
    DAY,
    SERIES,
    T0,
    fill,
    history,
    sqlite_warm,
)

NOW = T0 + 1000 * DAY
RAW_ONLY = Retention(raw_ms=DAY, m1_ms=10_000 * DAY, h1_ms=10_000 * DAY)


@pytest.fixture
async def warm(tmp_path: Path) -> AsyncIterator[SqliteWarm]:
    async with sqlite_warm(tmp_path / "warm.db") as w:
        await fill(w)
        yield w


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[ObjectArchive]:
    a = ObjectArchive(FileStore(f"file://{tmp_path / 'archive'}"), listing_ttl_s=0)
    await a.open()
    yield a
    await a.close()


async def names(warm: SqliteWarm) -> list[str]:
    return [p.name for p in await warm.partitions()]


async def test_due_is_exactly_what_retention_drops(warm: SqliteWarm) -> None:
    now = T0 + 2 * DAY + DAY // 2
    retention = Retention(raw_ms=DAY, m1_ms=DAY, h1_ms=DAY)
    expected = [p.name for p in due(await warm.partitions(), retention, now)]
    assert expected == ["raw_20260601"]
    before = set(await names(warm))
    warm.retention = retention
    await warm.enforce_retention(now)
    assert before - set(await names(warm)) == set(expected)


async def test_a_crash_before_the_commit_leaves_the_warm_partition_and_a_rerun_completes(
    warm: SqliteWarm, archive: ObjectArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_args: object) -> None:
        raise ArchiveError("injected: the process died after the upload")

    monkeypatch.setattr(archive, "verify", crash)
    outcomes = await Archiver(warm, archive, RAW_ONLY).run(NOW)
    assert [o.status for o in outcomes] == [Status.FAILED, Status.FAILED]
    assert await names(warm) == ["h1_2026", "m1_202606", "raw_20260601", "raw_20260602"]
    assert await archive.manifests() == []
    assert await archive.store.list("raw/")  # uploaded parts without a manifest: orphans
    monkeypatch.undo()
    outcomes = await Archiver(warm, archive, RAW_ONLY).run(NOW)
    assert [o.status for o in outcomes] == [Status.ARCHIVED, Status.ARCHIVED]
    assert await names(warm) == ["h1_2026", "m1_202606"]
    listed = [o.key for o in await archive.store.list("raw/")]
    manifests = await archive.manifests()
    assert listed == sorted(
        [f"raw/{m.name}.json" for m in manifests] + [p.key for m in manifests for p in m.parts]
    )


async def test_a_crash_after_the_commit_is_finished_by_the_rerun(
    warm: SqliteWarm, archive: ObjectArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(name: str) -> None:
        raise BackendError(f"injected: the process died before dropping {name}")

    expected = await warm.export_partition("raw_20260601")
    monkeypatch.setattr(warm, "drop_partition", crash)
    outcomes = await Archiver(warm, archive, RAW_ONLY).run(NOW)
    assert [o.status for o in outcomes] == [Status.FAILED, Status.FAILED]
    assert [m.name for m in await archive.manifests()] == ["raw_20260601", "raw_20260602"]
    assert "raw_20260601" in await names(warm)
    monkeypatch.undo()
    outcomes = await Archiver(warm, archive, RAW_ONLY).run(NOW)
    assert [o.status for o in outcomes] == [Status.DROPPED, Status.DROPPED]
    assert await names(warm) == ["h1_2026", "m1_202606"]
    manifest = await archive.manifest("raw_20260601")
    assert manifest is not None
    assert (await read_partition(archive, manifest)).equals(expected)


async def test_late_rows_in_an_archived_day_are_merged_into_the_archive(
    warm: SqliteWarm, archive: ObjectArchive
) -> None:
    await Archiver(warm, archive, RAW_ONLY).run(NOW)
    first = await archive.manifest("raw_20260601")
    assert first is not None
    late = history("h-9", T0 + 3600_000, 60, 1000, seed=9)  # a host replaying its spool
    await warm.write([late])
    outcomes = await Archiver(warm, archive, RAW_ONLY).run(NOW)
    assert [(o.partition.name, o.status) for o in outcomes] == [("raw_20260601", Status.MERGED)]
    merged = await archive.manifest("raw_20260601")
    assert merged is not None
    assert merged.rows == first.rows + 60 * len(SERIES)
    assert ("metrics", "h-9") in merged.sources
    table = await read_partition(archive, merged)
    assert table.num_rows == merged.rows
    assert "raw_20260601" not in await names(warm)


async def test_retention_is_skipped_while_a_due_partition_is_not_archived(
    warm: SqliteWarm, archive: ObjectArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = archive.commit

    async def fail_one(manifest: object) -> None:
        name = getattr(manifest, "name", "")
        if name == "m1_202606":
            raise ArchiveError("injected: the bucket refused the manifest")
        await original(manifest)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "commit", fail_one)
    outcomes, dropped = await archive_then_expire(warm, archive, ALL_DUE, NOW)
    assert dropped is None
    assert {o.partition.name: o.status for o in outcomes}["m1_202606"] is Status.FAILED
    assert await names(warm) == ["m1_202606"]
    monkeypatch.undo()
    outcomes, dropped = await archive_then_expire(warm, archive, ALL_DUE, NOW)
    assert [o.status for o in outcomes] == [Status.ARCHIVED]
    assert dropped == {Tier.RAW: 0, Tier.M1: 0, Tier.H1: 0}
    assert await names(warm) == []
    assert len(await archive.manifests()) == 4


async def test_nothing_due_archives_nothing(warm: SqliteWarm, archive: ObjectArchive) -> None:
    assert await Archiver(warm, archive, RAW_ONLY).run(T0 + DAY) == []
    assert await archive.manifests() == []
