"""The ActivityWatch store's contract (``aw_store.AwStore``) on every backend: SQLite in a
temp file, PostgreSQL in a throwaway database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.domains.deskmeter.aw_store import (
    AwBucket,
    AwBucketExport,
    AwEvent,
    AwRange,
    AwStore,
    NoSuchBucketError,
    open_aw_store,
)
from sysmonstm.errors import InvalidInputError, UnknownBackendError

S = 1_000_000  # microseconds in a second
T0_MS = 1_710_072_000_000  # 2024-03-10 12:00 UTC


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warm.db'}"
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AwStore]:
    opened = open_aw_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def bucket(bid: str = "b", kind: str = "currentwindow") -> AwBucket:
    return AwBucket(bid, kind, "client", "host", T0_MS * 1000 + 123_456, None, {"k": [1, 2]})


def ev(seconds: float, duration_s: float = 0, **data: object) -> AwEvent:
    return AwEvent(T0_MS + int(seconds * 1000), int(duration_s * S), data)


async def test_buckets_are_created_once_listed_and_deleted(store: AwStore) -> None:
    """A second create of an id changes nothing; listings carry the end of the latest event;
    deleting takes the events along."""
    assert await store.create_bucket(bucket("b"))
    assert not await store.create_bucket(AwBucket("b", "other", "c2", "h2", 0))
    assert await store.create_bucket(bucket("a", "afkstatus"))
    await store.insert("b", [ev(0, 5, app="x"), ev(10, 2.5, app="y")])
    listed = await store.buckets()
    assert [b.id for b in listed] == ["a", "b"]
    assert listed[0].last_updated_us is None
    assert listed[1] == AwBucket(
        "b", "currentwindow", "client", "host", T0_MS * 1000 + 123_456, None, {"k": [1, 2]},
        (T0_MS + 12_500) * 1000,
    )  # fmt: skip
    assert await store.bucket("b") == bucket("b")
    assert await store.delete_bucket("b")
    assert not await store.delete_bucket("b")
    assert await store.bucket("b") is None
    with pytest.raises(NoSuchBucketError):
        await store.events("b", AwRange())
    assert await store.create_bucket(bucket("b"))
    assert await store.events("b", AwRange()) == []


async def test_heartbeats_merge_or_add_and_keep_the_latest_event(store: AwStore) -> None:
    """Heartbeats merge into the latest event by timestamp within the pulse window (the end
    inclusive) and otherwise add an event; ids stay with merged events."""
    await store.create_bucket(bucket())
    first = await store.heartbeat("b", ev(0, app="x"), 10 * S)
    assert first.id is not None
    assert await store.heartbeat("b", ev(10, app="x"), 10 * S) == ev(0, 10, app="x").with_id(
        first.id
    )
    assert (await store.heartbeat("b", ev(20, app="x"), 10 * S)).id == first.id
    late = await store.heartbeat("b", ev(30.001, app="x"), 10 * S)
    assert late.id != first.id
    other = await store.heartbeat("b", ev(31, app="y"), 10 * S)
    older = await store.heartbeat("b", ev(5, app="y"), 100 * S)  # before the latest: new
    assert len({first.id, late.id, other.id, older.id}) == 4
    got = await store.events("b", AwRange())
    assert got == [
        ev(31, app="y").with_id(other.id),
        ev(30.001, app="x").with_id(late.id),
        ev(5, app="y").with_id(older.id),
        ev(0, 20, app="x").with_id(first.id),
    ]
    with pytest.raises(NoSuchBucketError):
        await store.heartbeat("nope", ev(0), S)


async def test_concurrent_heartbeats_to_one_bucket_merge_into_one_event(
    store: AwStore,
) -> None:
    """Heartbeats of equal data sent at once all land in one event (applied one at a time)."""
    await store.create_bucket(bucket())
    await store.heartbeat("b", ev(0, app="x"), 60 * S)
    await asyncio.gather(*(store.heartbeat("b", ev(i, app="x"), 60 * S) for i in range(1, 21)))
    got = await store.events("b", AwRange())
    assert [(e.timestamp_ms, e.duration_us) for e in got] == [(T0_MS, 20 * S)]


async def test_range_reads_overlap_trim_limit_and_count(store: AwStore) -> None:
    """Events overlapping [start, end] come newest first, trimmed to it, at most ``limit``;
    count ignores the limit; events starting over a day before start are not seen."""
    await store.create_bucket(bucket())
    day = 24 * 3600
    await store.insert(
        "b",
        [ev(-day - 1, day + 100, n=0), ev(0, 10, n=1), ev(20, 10, n=2), ev(40, 10, n=3)],
    )
    start, end = (T0_MS + 5_000) * 1000, (T0_MS + 25_000) * 1000
    got = await store.events("b", AwRange(-1, start, end))
    assert [(e.data["n"], e.timestamp_ms - T0_MS, e.duration_us) for e in got] == [
        (2, 20_000, 5 * S),
        (1, 5_000, 5 * S),
    ]
    assert [e.data["n"] for e in await store.events("b", AwRange(1, start, end))] == [2]
    assert await store.events("b", AwRange(0)) == []
    untrimmed = await store.events("b", AwRange(-1, start, end, trim=False))
    assert [(e.timestamp_ms - T0_MS, e.duration_us) for e in untrimmed] == [
        (20_000, 10 * S),
        (0, 10 * S),
    ]
    assert await store.count("b", AwRange(-1, start, end)) == 2
    assert await store.count("b", AwRange()) == 4
    assert [e.data["n"] for e in await store.events("b", AwRange(2))] == [3, 2]


async def test_insert_replaces_by_id_and_deletes_one(store: AwStore) -> None:
    """An event with the id of one of the bucket's events replaces it; an unknown id is
    added as new; delete answers how many it removed."""
    await store.create_bucket(bucket())
    await store.create_bucket(bucket("other"))
    a, b = await store.insert("b", [ev(0, 1, n=1), ev(5, 1, n=2)])
    assert a.id is not None
    assert b.id is not None
    (replaced,) = await store.insert("b", [ev(7, 3, n=9).with_id(a.id)])
    assert replaced.id == a.id
    assert await store.event("b", a.id) == ev(7, 3, n=9).with_id(a.id)
    assert await store.event("other", a.id) is None  # another bucket's id is not found
    (foreign,) = await store.insert("other", [ev(1, n=3).with_id(b.id)])
    assert foreign.id not in (a.id, b.id)
    assert await store.event("b", b.id) == ev(5, 1, n=2).with_id(b.id)
    assert await store.delete_event("b", b.id) == 1
    assert await store.delete_event("b", b.id) == 0
    assert await store.count("b", AwRange()) == 1


async def test_import_is_all_or_nothing(store: AwStore) -> None:
    """Importing buckets creates them with their events; if any exists already, none is."""
    await store.create_bucket(bucket("taken"))
    fresh = AwBucketExport(bucket("new"), (ev(10, 1, n=2), ev(0, 1, n=1)))
    clash = AwBucketExport(bucket("taken"), (ev(0),))
    with pytest.raises(InvalidInputError, match="taken"):
        await store.import_buckets([fresh, clash])
    assert await store.bucket("new") is None
    await store.import_buckets([fresh])
    got = await store.events("new", AwRange())
    assert [(e.timestamp_ms, e.data) for e in got] == [
        (T0_MS + 10_000, {"n": 2}),
        (T0_MS, {"n": 1}),
    ]
    assert got[0].id is not None
    assert got[1].id is not None
    assert got[0].id < got[1].id  # ids follow the export's order, as aw-server's do


async def test_device_id_survives_reopening(store_url: str) -> None:
    """The device id is made once and kept in the database."""
    first = open_aw_store(store_url)
    await first.open()
    device = await first.device_id()
    await first.close()
    again = open_aw_store(store_url)
    await again.open()
    try:
        assert await again.device_id() == device
        assert len(device) == 36
    finally:
        await again.close()


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(UnknownBackendError, match="sqlite://"):
        open_aw_store("mongodb://x")
