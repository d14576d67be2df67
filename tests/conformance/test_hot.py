"""Hot tier conformance: every backend in ``HOTS`` must pass all of these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.store.hot import HotDocument, HotTier, LatestPoint
from sysmonstm.store.model import Tier
from tests.conformance.backends import HOTS
from tests.conformance.helpers import T0, batch, source, ticks


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 60_000)


@pytest.fixture(params=sorted(HOTS), ids=lambda name: f"hot={name}")
async def hot(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[HotTier]:
    async with HOTS[request.param](request, tmp_path, clock) as h:
        yield h


async def test_latest_holds_the_newest_value_of_each_series(hot: HotTier) -> None:
    await hot.write(ticks(1, T0, 10))
    latest = {lv.series: (lv.time_ms, lv.value) for lv in await hot.latest("metrics", "m1")}
    assert latest == {"cpu.used": (T0 + 9000, 9.0), 'disk.used_pct{mount="/"}': (T0 + 9000, 109.0)}


async def test_latest_values_reads_many_sources_at_once(hot: HotTier) -> None:
    """The bulk read holds each known source's newest (time, value) per series, as
    ``latest`` does; unknown sources are left out."""
    await hot.write(ticks(1, T0, 10))
    await hot.write(ticks(1, T0 + 5000, 3, src=source("m2", name="host-2")))
    await hot.write([batch(4, [T0 + 9000], [[7.0]], series=("temp.celsius",), src=source("m2"))])

    found = await hot.latest_values("metrics", ["m1", "nope", "m2"])

    assert set(found) == {"m1", "m2"}
    for sid, values in found.items():
        want = await hot.latest("metrics", sid)
        assert values == {lv.series: LatestPoint(lv.time_ms, lv.value) for lv in want}
    assert found["m2"] == {
        "cpu.used": LatestPoint(T0 + 7000, 2.0),
        'disk.used_pct{mount="/"}': LatestPoint(T0 + 7000, 102.0),
        "temp.celsius": LatestPoint(T0 + 9000, 7.0),
    }
    assert await hot.latest_values("metrics", []) == {}


async def test_a_late_batch_never_replaces_a_newer_latest(hot: HotTier) -> None:
    await hot.write([batch(2, [T0 + 5000], [[5.0, 50.0]])])
    await hot.write([batch(3, [T0 + 1000], [[1.0, 10.0]])])
    latest = {lv.series: lv.value for lv in await hot.latest("metrics", "m1")}
    assert latest == {"cpu.used": 5.0, 'disk.used_pct{mount="/"}': 50.0}


async def test_series_that_appear_later_join_the_latest_values(hot: HotTier) -> None:
    await hot.write([batch(1, [T0], [[1.0, 2.0]])])
    await hot.write([batch(2, [T0 + 1000], [[3.0]], series=("temp.celsius",))])
    latest = {lv.series: lv.value for lv in await hot.latest("metrics", "m1")}
    assert latest == {"cpu.used": 1.0, 'disk.used_pct{mount="/"}': 2.0, "temp.celsius": 3.0}


async def test_sources_are_listed_per_domain_most_recent_first(hot: HotTier) -> None:
    await hot.write(ticks(1, T0, 3, src=source("a", name="alpha")))
    await hot.write(ticks(1, T0 + 10_000, 3, src=source("b", name="beta")))
    await hot.write(ticks(1, T0, 3, src=source("c", domain="deskmeter")))
    states = await hot.sources("metrics")
    assert [s.source.id for s in states] == ["b", "a"]
    assert states[0].source.name == "beta"
    assert states[0].source.labels == (("role", "web"),)
    assert states[0].last_seen_ms == T0 + 12_000
    assert states[0].first_seen_ms == T0 + 10_000
    assert states[0].series_count == 2
    assert [s.source.id for s in await hot.sources("deskmeter")] == ["c"]


async def test_recent_returns_points_since_a_time_in_order(hot: HotTier) -> None:
    await hot.write(ticks(1, T0, 30))
    pts = await hot.recent("metrics", "m1", "cpu.used", T0 + 20_000)
    assert pts.tier is Tier.HOT
    assert pts.times_ms.tolist() == [T0 + i * 1000 for i in range(20, 30)]
    assert pts.avg.tolist() == [float(i) for i in range(20, 30)]


async def test_recent_forgets_what_falls_out_of_the_window(hot: HotTier, clock: Clock) -> None:
    await hot.write(ticks(1, T0, 10))
    clock.now = T0 + hot.window_ms + 20_000
    await hot.write(ticks(11, T0 + hot.window_ms + 10_000, 5))
    pts = await hot.recent("metrics", "m1", "cpu.used", 0)
    assert pts.times_ms.min() >= clock.now - hot.window_ms


async def test_unknown_sources_and_series_read_as_empty(hot: HotTier) -> None:
    await hot.write(ticks(1, T0, 3))
    assert await hot.latest("metrics", "nope") == []
    assert len(await hot.recent("metrics", "nope", "cpu.used", 0)) == 0
    assert len(await hot.recent("metrics", "m1", "no.such", 0)) == 0


def doc(key: str, t: int, **body: object) -> HotDocument:
    return HotDocument(key, t, body)


async def test_a_state_is_the_newest_document_per_key(hot: HotTier) -> None:
    await hot.put_states("deskmeter", [doc("a", T0, task="x"), doc("b", T0 + 5000, task="y")])
    await hot.put_states("deskmeter", [doc("a", T0 + 9000, task="z", n=[1, 2])])
    assert await hot.states("deskmeter") == [
        doc("a", T0 + 9000, task="z", n=[1, 2]),
        doc("b", T0 + 5000, task="y"),
    ]


async def test_a_late_state_never_replaces_a_newer_one(hot: HotTier) -> None:
    await hot.put_states("deskmeter", [doc("a", T0 + 5000, task="new")])
    await hot.put_states("deskmeter", [doc("a", T0 + 1000, task="old")])
    assert await hot.states("deskmeter") == [doc("a", T0 + 5000, task="new")]
    await hot.put_states("deskmeter", [doc("a", T0 + 5000, task="same time")])
    assert await hot.states("deskmeter") == [doc("a", T0 + 5000, task="same time")]


async def test_states_are_kept_per_domain_and_read_back_as_json(hot: HotTier) -> None:
    """Bodies come back as JSON decodes them (tuples become lists, nesting is kept)."""
    await hot.put_states("deskmeter", [doc("m", T0, pair=(1, 2), inner={"a": None, "b": 1.5})])
    await hot.put_states("payments", [doc("m", T0, other=True)])
    assert await hot.states("deskmeter") == [doc("m", T0, pair=[1, 2], inner={"a": None, "b": 1.5})]
    assert await hot.states("payments") == [doc("m", T0, other=True)]
    assert await hot.states("nothing") == []


async def test_recent_documents_come_back_in_time_order_since_a_time(hot: HotTier) -> None:
    await hot.add_recent("deskmeter", [doc("a", T0 + 3000, i=3), doc("b", T0 + 1000, i=1)])
    await hot.add_recent("deskmeter", [doc("a", T0 + 2000, i=2)])
    got = await hot.recent_docs("deskmeter", T0)
    assert got == [doc("b", T0 + 1000, i=1), doc("a", T0 + 2000, i=2), doc("a", T0 + 3000, i=3)]
    assert await hot.recent_docs("deskmeter", T0 + 2000) == got[1:]
    assert await hot.recent_docs("payments", 0) == []


async def test_adding_the_same_recent_document_again_changes_nothing(hot: HotTier) -> None:
    """A replayed document is the same member; an equal body at another time is another."""
    await hot.add_recent("deskmeter", [doc("a", T0 + 1000, i=1)])
    await hot.add_recent("deskmeter", [doc("a", T0 + 1000, i=1), doc("a", T0 + 2000, i=1)])
    assert await hot.recent_docs("deskmeter", 0) == [
        doc("a", T0 + 1000, i=1),
        doc("a", T0 + 2000, i=1),
    ]


async def test_recent_documents_at_one_time_have_one_order_everywhere(hot: HotTier) -> None:
    """Ties are ordered by the documents' canonical JSON, as Redis orders equal scores."""
    await hot.add_recent("deskmeter", [doc("b", T0, i=1), doc("a", T0, i=2), doc("a", T0, i=1)])
    got = await hot.recent_docs("deskmeter", 0)
    assert got == [doc("a", T0, i=1), doc("a", T0, i=2), doc("b", T0, i=1)]


async def test_recent_documents_are_kept_for_the_window_only(hot: HotTier, clock: Clock) -> None:
    await hot.add_recent("deskmeter", [doc("a", T0 + 1000), doc("a", T0 + 50_000)])
    clock.now = T0 + hot.window_ms + 10_000
    await hot.add_recent("deskmeter", [doc("a", T0 + 2000), doc("a", clock.now)])
    assert await hot.recent_docs("deskmeter", 0) == [doc("a", T0 + 50_000), doc("a", clock.now)]


async def test_marked_keys_are_known_per_domain_until_they_expire(
    hot: HotTier, clock: Clock
) -> None:
    """The fast duplicate check: what one process marks, any process sharing the tier
    knows, for the time given (the backend's clock: Redis expires by its own)."""
    await hot.remember("payments", ["stripe:evt_1", "stripe:evt_2"], ttl_ms=3_600_000)
    await hot.remember("payments", ["paypal:WH-9"], ttl_ms=1)
    assert await hot.known("payments", []) == set()
    assert await hot.known("deskmeter", ["stripe:evt_1"]) == set()
    clock.now += 1_000  # the memory backend's clock; Redis's own passes below
    await asyncio.sleep(0.05)
    found = await hot.known("payments", ["stripe:evt_1", "stripe:evt_2", "paypal:WH-9", "x"])
    assert found == {"stripe:evt_1", "stripe:evt_2"}
