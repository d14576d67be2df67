"""Archive conformance: every object store in ``STORES`` must pass all of these, both at the
object level (atomic writes, listing, ranged reads, missing keys) and through ``Archive``
(commit marker, verification, catalog, pruned reads)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import pytest

from sysmonstm.store.archive import (
    ArchiveCorruptError,
    Manifest,
    ObjectMissingError,
    ObjectStore,
    manifest_key,
)
from sysmonstm.store.archive_read import ArchiveReader
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import Archiver, Status
from sysmonstm.store.model import Tier
from tests.conformance.archive_backends import (  # noqa: F401  (fixtures the S3 factory asks for)
    STORES,
    moto_s3_endpoint,
    s3_bucket,
    s3_credentials,
)
from tests.store.archive_support import (
    ALL_DUE,
    DAY,
    HOUR,
    SERIES,
    SOURCES,
    T0,
    Clock,
    bits,
    fill,
    history,
    sqlite_warm,
)


@pytest.fixture(params=sorted(STORES), ids=lambda name: f"archive={name}")
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    async with STORES[request.param](request, tmp_path) as s:
        yield s


@pytest.fixture
async def archived(store: ObjectStore, tmp_path: Path) -> ObjectArchive:
    """Two days of two hosts, archived (raw days, the month of 1-minute and year of 1-hour
    rollups), through an archive whose listing is never cached."""
    archive = ObjectArchive(store, listing_ttl_s=0)
    async with sqlite_warm(tmp_path / "warm.db") as warm:
        await fill(warm)
        outcomes = await Archiver(warm, archive, ALL_DUE).run(now_ms=T0 + 1000 * DAY)
        assert [o.status for o in outcomes] == [Status.ARCHIVED] * 4
        assert await warm.partitions() == []
    return archive


async def test_objects_round_trip_and_an_overwrite_replaces_them_whole(
    store: ObjectStore, tmp_path: Path
) -> None:
    await store.put_bytes("a/b.json", b'{"x": 1}')
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 1000)
    await store.put_file("a/c/d.bin", src)
    assert await store.get_bytes("a/b.json") == b'{"x": 1}'
    dest = tmp_path / "dest.bin"
    await store.get_file("a/c/d.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    await store.put_bytes("a/b.json", b"{}")
    assert await store.get_bytes("a/b.json") == b"{}"


async def test_listing_is_sorted_flat_or_recursive_and_tags_follow_content(
    store: ObjectStore,
) -> None:
    for key in ("raw/z.json", "raw/a.json", "raw/a/1.parquet", "m1/x.json"):
        await store.put_bytes(key, key.encode())
    flat = await store.list("raw/", recursive=False)
    assert [o.key for o in flat] == ["raw/a.json", "raw/z.json"]
    deep = await store.list("raw/")
    assert [o.key for o in deep] == ["raw/a.json", "raw/a/1.parquet", "raw/z.json"]
    assert [o.size for o in deep] == [10, 15, 10]
    assert [o.key for o in await store.list("raw/a")] == ["raw/a.json", "raw/a/1.parquet"]
    before = {o.key: o.tag for o in flat}
    await store.put_bytes("raw/a.json", b"changed content")
    after = {o.key: o.tag for o in await store.list("raw/", recursive=False)}
    assert after["raw/a.json"] != before["raw/a.json"]
    assert after["raw/z.json"] == before["raw/z.json"]
    assert await store.list("h1/") == []


async def test_missing_objects_raise_and_deleting_them_is_harmless(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(ObjectMissingError):
        await store.get_bytes("raw/nope.json")
    with pytest.raises(ObjectMissingError):
        await store.get_file("raw/nope.json", tmp_path / "x")
    await store.put_bytes("raw/a.json", b"1")
    await store.delete(["raw/a.json", "raw/nope.json"])
    assert await store.list("") == []


async def test_ranged_reads_return_exactly_the_bytes_asked_for(store: ObjectStore) -> None:
    data = bytes(range(256)) * 64
    await store.put_bytes("p/x.bin", data)
    with store.open_range("p/x.bin", len(data)) as f:
        f.seek(1000)
        assert f.read(10) == data[1000:1010]
        assert f.tell() == 1010
        f.seek(-5, 2)
        assert f.read(100) == data[-5:]
        assert f.read(1) == b""


async def test_a_partition_counts_only_once_its_manifest_is_committed(
    archived: ObjectArchive,
) -> None:
    m = await archived.manifest("raw_20260601")
    assert m is not None
    await archived.store.delete([manifest_key("raw_20260601")])
    assert await archived.manifest("raw_20260601") is None
    assert "raw_20260601" not in [x.name for x in await archived.manifests()]
    assert await archived.store.list("raw/raw_20260601/")  # the parts alone do not count


async def test_manifests_state_what_each_partition_holds(archived: ObjectArchive) -> None:
    found = {m.name: m for m in await archived.manifests()}
    assert list(found) == ["h1_2026", "m1_202606", "raw_20260601", "raw_20260602"]
    raw = found["raw_20260601"]
    assert (raw.tier, raw.start_ms, raw.end_ms) == (Tier.RAW, T0, T0 + DAY)
    assert raw.rows == len(SOURCES) * len(SERIES) * DAY // 10_000
    assert (raw.min_t, raw.max_t) == (T0, T0 + DAY - 10_000)
    assert raw.sources == tuple(("metrics", s) for s in SOURCES)
    stored = {o.key: o.size for o in await archived.store.list("raw/raw_20260601/")}
    assert stored == {p.key: p.bytes for p in raw.parts}
    assert raw.bytes == sum(stored.values())
    # every minute, the newest too: the sources have been silent far longer than the grace
    assert found["m1_202606"].rows == len(SOURCES) * len(SERIES) * 2 * 1440
    assert raw.encodings == {"value": "BYTE_STREAM_SPLIT"}  # random walks
    assert Manifest.from_json(raw.to_json()) == raw


async def test_verify_reads_every_part_back_and_catches_a_changed_byte(
    archived: ObjectArchive, tmp_path: Path
) -> None:
    m = await archived.manifest("raw_20260602")
    assert m is not None
    await archived.verify(m)
    part = m.parts[0]
    local = tmp_path / "part.parquet"
    await archived.fetch_part(part, local)
    data = bytearray(local.read_bytes())
    data[len(data) // 2] ^= 0x01
    await archived.store.put_bytes(part.key, bytes(data))
    with pytest.raises(ArchiveCorruptError):
        await archived.verify(m)
    await archived.store.delete([part.key])
    with pytest.raises(ObjectMissingError):
        await archived.verify(m)


async def test_a_commit_removes_parts_no_manifest_names(archived: ObjectArchive) -> None:
    m = await archived.manifest("raw_20260601")
    assert m is not None
    await archived.store.put_bytes("raw/raw_20260601/00000-000000000000.parquet", b"orphan")
    await archived.commit(m)
    keys = [o.key for o in await archived.store.list("raw/raw_20260601/")]
    assert keys == [p.key for p in m.parts]


async def test_delete_forgets_the_manifest_and_the_parts(archived: ObjectArchive) -> None:
    await archived.delete("m1_202606")
    assert await archived.manifest("m1_202606") is None
    assert await archived.store.list("m1/") == []


async def test_another_process_sees_commits_once_its_listing_expires(
    archived: ObjectArchive,
) -> None:
    clock = Clock(0)
    other = ObjectArchive(archived.store, listing_ttl_s=5.0, clock=lambda: clock.now / 1000)
    assert len(await other.manifests()) == 4
    await archived.delete("h1_2026")
    assert len(await other.manifests()) == 4  # cached
    clock.now += 5000
    assert [m.name for m in await other.manifests()] == [
        "m1_202606",
        "raw_20260601",
        "raw_20260602",
    ]


async def test_a_range_read_fetches_a_small_share_of_the_part(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day of one host sampled every second (20 series, 14 row groups): an hour of one
    series reads the footer and the row groups holding it, not the part."""
    archive = ObjectArchive(store, listing_ttl_s=0)
    many = tuple(f"s.{i:02d}" for i in range(20))
    async with sqlite_warm(tmp_path / "warm.db") as warm:
        await warm.write([history("big", T0, 86_400, 1000, series=many)])
        expected = await warm.read("metrics", "big", "s.07", T0 + HOUR, T0 + 2 * HOUR, Tier.RAW)
        [outcome] = await Archiver(warm, archive, ALL_DUE).run(now_ms=T0 + 3 * DAY)
    assert outcome.status is Status.ARCHIVED
    read = [0]
    opened = archive.open_part

    class Counting(io.RawIOBase):
        def __init__(self, inner: IO[bytes]) -> None:
            super().__init__()
            self.inner = inner

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.inner.seek(offset, whence)

        def tell(self) -> int:
            return self.inner.tell()

        def readinto(self, buffer: Any) -> int:
            data = self.inner.read(len(buffer))
            buffer[: len(data)] = data
            read[0] += len(data)
            return len(data)

        def close(self) -> None:
            self.inner.close()
            super().close()

    monkeypatch.setattr(archive, "open_part", lambda part: Counting(opened(part)))
    reader = ArchiveReader(archive)
    [m] = await reader.partitions(Tier.RAW, T0, T0 + DAY, "metrics", "big")
    got = await reader.read([m], "metrics", "big", "s.07", T0 + HOUR, T0 + 2 * HOUR, Tier.RAW)
    assert bits(got)[:2] == bits(expected)[:2]
    assert 0 < read[0] < m.bytes // 5


async def test_an_unreadable_manifest_is_left_out_and_the_rest_still_count(
    archived: ObjectArchive,
) -> None:
    await archived.store.put_bytes(manifest_key("raw_20260601"), b"{not json")
    names = [m.name for m in await archived.manifests()]
    assert names == ["h1_2026", "m1_202606", "raw_20260602"]
    with pytest.raises(ArchiveCorruptError):
        await archived.manifest("raw_20260601")
