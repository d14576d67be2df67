"""GuardedHot: a hot-tier outage is a degraded state (skipped writes, empty reads, one log
line each way, recovery by itself), never an error for ingest or readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from structlog.testing import capture_logs

from sysmonstm.errors import BackendError
from sysmonstm.store.hot import HotDocument, HotTier, LatestPoint
from sysmonstm.store.hot_guard import GuardedHot
from sysmonstm.store.hot_memory import MemoryHot
from sysmonstm.store.model import LatestValue, SeriesBatch, SeriesPoints, SourceState
from tests.conformance.helpers import T0, ticks


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


class FlakyHot:
    """A memory hot tier below the seam that can be taken down, made to hang or to raise
    something unexpected; counts the calls that reach it."""

    def __init__(self, clock: Clock) -> None:
        self.mem = MemoryHot(window_ms=300_000, now_ms=clock)
        self.url = "flaky://user:pw@somewhere"
        self.window_ms = self.mem.window_ms
        self.down = False
        self.hang = False
        self.bug: Exception | None = None
        self.calls = 0
        self.opens = 0

    async def _gate(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.bug is not None:
            raise self.bug
        if self.down:
            raise BackendError("flaky: connection refused")

    async def open(self) -> None:
        self.opens += 1
        await self._gate()

    async def close(self) -> None:
        await self.mem.close()

    async def write(self, batches: Sequence[SeriesBatch]) -> None:
        await self._gate()
        await self.mem.write(batches)

    async def sources(self, domain: str) -> list[SourceState]:
        await self._gate()
        return await self.mem.sources(domain)

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        await self._gate()
        return await self.mem.latest(domain, source_id)

    async def latest_values(
        self, domain: str, source_ids: Sequence[str]
    ) -> dict[str, dict[str, LatestPoint]]:
        await self._gate()
        return await self.mem.latest_values(domain, source_ids)

    async def recent(self, domain: str, source_id: str, series: str, since_ms: int) -> SeriesPoints:
        await self._gate()
        return await self.mem.recent(domain, source_id, series, since_ms)

    async def put_states(self, domain: str, docs: Sequence[HotDocument]) -> None:
        await self._gate()
        await self.mem.put_states(domain, docs)

    async def states(self, domain: str) -> list[HotDocument]:
        await self._gate()
        return await self.mem.states(domain)

    async def add_recent(self, domain: str, docs: Sequence[HotDocument]) -> None:
        await self._gate()
        await self.mem.add_recent(domain, docs)

    async def recent_docs(self, domain: str, since_ms: int) -> list[HotDocument]:
        await self._gate()
        return await self.mem.recent_docs(domain, since_ms)

    async def remember(self, domain: str, keys: Sequence[str], ttl_ms: int) -> None:
        await self._gate()
        await self.mem.remember(domain, keys, ttl_ms)

    async def known(self, domain: str, keys: Sequence[str]) -> set[str]:
        await self._gate()
        return await self.mem.known(domain, keys)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 60_000)


@pytest.fixture
def inner(clock: Clock) -> FlakyHot:
    return FlakyHot(clock)


@pytest.fixture
async def guard(inner: FlakyHot, clock: Clock) -> AsyncIterator[GuardedHot]:
    g = GuardedHot(inner, timeout_s=0.2, probe_min_s=0.01, probe_max_s=0.05, now_ms=clock)
    await g.open()
    try:
        yield g
    finally:
        await g.close()


async def recovered(guard: GuardedHot) -> None:
    """Wait until the probe has brought the guard back (it probes every 50 ms at most)."""
    for _ in range(3000):
        if not guard.degraded:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the guard did not recover within 30 s")


def test_it_is_a_hot_tier(guard: GuardedHot) -> None:
    assert isinstance(guard, HotTier)
    assert guard.window_ms == 300_000


async def test_healthy_calls_pass_through(guard: GuardedHot) -> None:
    await guard.write(ticks(1, T0, 3))
    assert not guard.degraded
    assert guard.since_ms is None
    assert [s.source.id for s in await guard.sources("metrics")] == ["m1"]
    assert len(await guard.latest("metrics", "m1")) == 2
    assert len((await guard.latest_values("metrics", ["m1"]))["m1"]) == 2
    assert len(await guard.recent("metrics", "m1", "cpu.used", T0)) == 3


async def test_an_outage_skips_writes_and_reads_empty_without_asking(
    guard: GuardedHot, inner: FlakyHot, clock: Clock
) -> None:
    """The first failing write flips to degraded; later calls never reach the backend."""
    await guard.write(ticks(1, T0, 2))
    inner.down = True
    inner.calls = 0
    guard.probe_min_s = guard.probe_max_s = 3600.0  # keep the probe out of this count
    await guard.write(ticks(3, T0 + 2000, 2))
    assert guard.degraded
    assert guard.since_ms == clock.now
    assert "connection refused" in guard.reason
    assert inner.calls == 1
    for i in range(10):
        await guard.write(ticks(5 + i, T0 + 4000 + i * 1000, 1))
    assert await guard.sources("metrics") == []
    assert await guard.latest("metrics", "m1") == []
    assert await guard.latest_values("metrics", ["m1"]) == {}
    assert len(await guard.recent("metrics", "m1", "cpu.used", 0)) == 0
    assert inner.calls == 1
    assert guard.skipped_batches == 12
    assert guard.outages == 1


async def test_it_recovers_by_itself_and_logs_once_each_way(
    guard: GuardedHot, inner: FlakyHot
) -> None:
    """One warning when the outage starts, one info line when it ends, whatever happened
    in between."""
    with capture_logs() as logs:
        inner.down = True
        for i in range(20):
            await guard.write(ticks(1 + i, T0 + i * 1000, 1))
        await asyncio.sleep(0.1)  # several probes fail meanwhile
        inner.down = False
        await recovered(guard)
    events = [(e["log_level"], e["event"]) for e in logs]
    assert [lvl for lvl, _ in events] == ["warning", "info"]
    assert events[1][1] == "hot tier recovered"
    assert logs[1]["skipped_batches"] == 20
    assert "pw@" not in str(logs)
    await guard.write(ticks(30, T0 + 30_000, 1))
    assert [s.source.id for s in await guard.sources("metrics")] == ["m1"]


async def test_a_backend_down_at_start_is_degraded_from_the_start(
    inner: FlakyHot, clock: Clock
) -> None:
    """open() does not raise; the probe opens the backend once it answers."""
    inner.down = True
    guard = GuardedHot(inner, timeout_s=0.2, probe_min_s=0.01, probe_max_s=0.05, now_ms=clock)
    try:
        await guard.open()
        assert guard.degraded
        await guard.write(ticks(1, T0, 1))
        assert guard.skipped_batches == 1
        opens = inner.opens
        inner.down = False
        await recovered(guard)
        assert inner.opens > opens
    finally:
        await guard.close()


async def test_a_hanging_backend_is_cut_off_by_the_timeout(
    guard: GuardedHot, inner: FlakyHot
) -> None:
    """A write that does not return in time counts as an outage; the caller goes on."""
    inner.hang = True
    await guard.write(ticks(1, T0, 1))
    assert guard.degraded
    assert "TimeoutError" in guard.reason


async def test_an_unexpected_write_error_degrades_instead_of_failing_ingest(
    guard: GuardedHot, inner: FlakyHot
) -> None:
    inner.bug = ValueError("a bug below the seam")
    with capture_logs() as logs:
        await guard.write(ticks(1, T0, 1))
    assert guard.degraded
    assert logs[0]["exc_info"] is True


async def test_a_failing_read_degrades_too(guard: GuardedHot, inner: FlakyHot) -> None:
    inner.down = True
    assert await guard.latest("metrics", "m1") == []
    assert guard.degraded


async def test_after_recovery_recent_sends_older_ranges_to_the_warm_tier(
    guard: GuardedHot, inner: FlakyHot, clock: Clock
) -> None:
    """The outage left a hole in the window: ranges starting before the recovery read as
    empty (so the query router reads the warm tier); later ranges come from the backend."""
    await guard.write(ticks(1, T0, 10))
    inner.down = True
    await guard.write(ticks(11, T0 + 10_000, 5))
    clock.now = T0 + 75_000
    inner.down = False
    await recovered(guard)
    await guard.write(ticks(16, T0 + 75_000, 5))
    assert len(await guard.recent("metrics", "m1", "cpu.used", T0)) == 0
    after = await guard.recent("metrics", "m1", "cpu.used", T0 + 75_000)
    assert after.times_ms.tolist() == [T0 + 75_000 + i * 1000 for i in range(5)]


async def test_close_stops_the_probe(inner: FlakyHot, clock: Clock) -> None:
    """Closing while degraded leaves no task behind and closes the backend quietly."""
    inner.down = True
    guard = GuardedHot(inner, probe_min_s=0.01, now_ms=clock)
    await guard.open()
    assert guard.degraded
    probes = [t for t in asyncio.all_tasks() if t.get_name() == "hot-probe"]
    assert len(probes) == 1
    await guard.close()
    assert probes[0].done()
    assert guard.degraded  # a closed guard is not "recovered"


def doc(key: str, t: int, **body: object) -> HotDocument:
    return HotDocument(key, t, body)


async def test_documents_pass_through_while_healthy(guard: GuardedHot) -> None:
    await guard.put_states("deskmeter", [doc("m1", T0, task="a")])
    await guard.add_recent("deskmeter", [doc("m1", T0, kind="switch")])
    assert await guard.states("deskmeter") == [doc("m1", T0, task="a")]
    assert await guard.recent_docs("deskmeter", T0) == [doc("m1", T0, kind="switch")]


async def test_document_writes_are_skipped_and_reads_empty_while_degraded(
    guard: GuardedHot, inner: FlakyHot
) -> None:
    """A failing document write degrades like a failing batch write, and raises nothing."""
    await guard.put_states("deskmeter", [doc("m1", T0, task="a")])
    inner.down = True
    guard.probe_min_s = guard.probe_max_s = 3600.0
    await guard.put_states("deskmeter", [doc("m1", T0 + 1000, task="b")])
    assert guard.degraded
    inner.calls = 0
    await guard.add_recent("deskmeter", [doc("m1", T0 + 1000), doc("m2", T0 + 1000)])
    assert await guard.states("deskmeter") == []
    assert await guard.recent_docs("deskmeter", 0) == []
    await guard.remember("payments", ["stripe:evt_1"], ttl_ms=60_000)
    assert await guard.known("payments", ["stripe:evt_1"]) == set()  # a miss, never an error
    assert inner.calls == 0
    assert guard.skipped_batches == 4


async def test_after_recovery_recent_docs_before_it_read_as_empty(
    guard: GuardedHot, inner: FlakyHot, clock: Clock
) -> None:
    """The outage left a hole in the recent documents: ranges starting before the recovery
    answer empty, so the domain reads its warm tier instead; states heal with new writes."""
    await guard.add_recent("deskmeter", [doc("m1", T0 + 1000)])
    inner.down = True
    await guard.add_recent("deskmeter", [doc("m1", T0 + 2000)])
    clock.now = T0 + 75_000
    inner.down = False
    await recovered(guard)
    await guard.add_recent("deskmeter", [doc("m1", T0 + 75_000)])
    await guard.put_states("deskmeter", [doc("m1", T0 + 75_000, task="c")])
    assert await guard.recent_docs("deskmeter", T0) == []
    assert await guard.recent_docs("deskmeter", T0 + 75_000) == [doc("m1", T0 + 75_000)]
    assert await guard.states("deskmeter") == [doc("m1", T0 + 75_000, task="c")]
