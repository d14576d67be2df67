"""The Redis hot tier beyond the conformance suite: keys and TTLs left behind, one round trip
per write, several aggregators on one server, lost layouts, restarts and outages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from sysmonstm.errors import BackendError, ConfigError
from sysmonstm.store.hot_guard import GuardedHot
from sysmonstm.store.hot_redis import CALL_BATCHES, RedisHot
from sysmonstm.store.registry import open_hot
from tests import servers
from tests.conformance.helpers import T0, batch, source, ticks
from tests.server_fixtures import keys_under

WINDOW = 300_000
NOW = T0 + 60_000


def clock() -> int:
    return NOW


@pytest.fixture
def url(redis_server_url: str, redis_prefix: str) -> str:
    return f"{redis_server_url}?prefix={redis_prefix}"


@pytest.fixture
async def hot(url: str) -> AsyncIterator[RedisHot]:
    h = RedisHot(url, window_ms=WINDOW, now_ms=clock)
    await h.open()
    try:
        yield h
    finally:
        await h.close()


async def test_a_source_leaves_exactly_its_documented_keys_each_with_a_ttl(
    hot: RedisHot, rc: aioredis.Redis, redis_prefix: str
) -> None:
    """latest, recent, info, one layout and the domain's sources set; nothing lives forever."""
    await hot.write(ticks(1, T0, 5))
    layout = next(k for k in await keys_under(rc, redis_prefix) if ":layout:" in k)
    ttls = await keys_under(rc, redis_prefix)
    assert set(ttls) == {
        "hot:metrics:sources",
        "hot:metrics:m1:latest",
        "hot:metrics:m1:recent",
        "hot:metrics:m1:info",
        layout,
    }
    day = 86_400_000
    assert 0 < ttls["hot:metrics:m1:recent"] <= 2 * WINDOW
    for name in ("hot:metrics:sources", "hot:metrics:m1:latest", "hot:metrics:m1:info", layout):
        assert day - 60_000 < ttls[name] <= day
    assert await rc.zcard(f"{redis_prefix}hot:metrics:m1:recent") == 5


async def test_a_write_is_one_round_trip_whatever_it_holds(
    hot: RedisHot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many sources, frames and more batches than one script call takes: one send."""
    sent: list[int] = []
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    batches = [b for i in range(CALL_BATCHES + 44) for b in ticks(1, T0, 1, src=source(f"h{i}"))]
    await hot.write(batches)
    assert len(sent) == 1
    sent.clear()
    await hot.write(ticks(10, T0 + 10_000, 3))  # layouts known: still one
    assert len(sent) == 1
    assert len(await hot.sources("metrics")) == CALL_BATCHES + 45  # and m1


async def test_wide_batches_keep_every_series(hot: RedisHot) -> None:
    """More series than one server-side call spreads (5,000) land whole, in order."""
    names = tuple(f"m.s{i:05d}" for i in range(5_000))
    values = [[float(i) for i in range(5_000)], [float(-i) for i in range(5_000)]]
    await hot.write([batch(1, [T0, T0 + 1000], values, series=names)])
    latest = await hot.latest("metrics", "m1")
    assert [lv.series for lv in latest] == list(names)
    assert [lv.value for lv in latest] == values[1]
    await hot.write([batch(2, [T0 - 1000], [[1.5] * 5_000], series=names)])  # late: ignored
    assert [lv.value for lv in await hot.latest("metrics", "m1")] == values[1]
    pts = await hot.recent("metrics", "m1", "m.s04999", 0)
    assert pts.times_ms.tolist() == [T0 - 1000, T0, T0 + 1000]
    assert pts.avg.tolist() == [1.5, 4999.0, -4999.0]


async def test_two_aggregators_share_one_view(url: str) -> None:
    """Writers on one server: the newest value wins whoever wrote it, sources are shared."""
    a = RedisHot(url, window_ms=WINDOW, now_ms=clock)
    b = RedisHot(url, window_ms=WINDOW, now_ms=clock)
    await a.open()
    await b.open()
    try:
        await a.write([batch(5, [T0 + 5000], [[5.0, 50.0]])])
        await b.write([batch(3, [T0 + 3000], [[3.0, 30.0]])])  # older, via the other one
        await b.write(ticks(1, T0, 2, src=source("m2")))
        for reader in (a, b):
            latest = {lv.series: lv.value for lv in await reader.latest("metrics", "m1")}
            assert latest == {"cpu.used": 5.0, 'disk.used_pct{mount="/"}': 50.0}
            assert [s.source.id for s in await reader.sources("metrics")] == ["m1", "m2"]
        pts = await a.recent("metrics", "m1", "cpu.used", 0)
        assert pts.times_ms.tolist() == [T0 + 3000, T0 + 5000]
    finally:
        await a.close()
        await b.close()


async def test_a_lost_layout_is_written_again(
    hot: RedisHot, rc: aioredis.Redis, redis_prefix: str
) -> None:
    """A layout deleted behind the writer's back (flush, eviction) comes back on the next
    write; entries that lost theirs are skipped, never misread."""
    await hot.write(ticks(1, T0, 2))
    layouts = [k for k in await keys_under(rc, redis_prefix) if ":layout:" in k]
    await rc.delete(*[redis_prefix + k for k in layouts])
    fresh = RedisHot(hot.url, window_ms=WINDOW, now_ms=clock)  # no layout cache either
    await fresh.open()
    try:
        assert len(await fresh.recent("metrics", "m1", "cpu.used", 0)) == 0
    finally:
        await fresh.close()
    await hot.write(ticks(3, T0 + 2000, 2))
    assert [k for k in await keys_under(rc, redis_prefix) if ":layout:" in k] == layouts
    pts = await hot.recent("metrics", "m1", "cpu.used", 0)
    assert pts.times_ms.tolist() == [T0 + i * 1000 for i in range(4)]
    latest = {lv.series: lv.time_ms for lv in await hot.latest("metrics", "m1")}
    assert latest["cpu.used"] == T0 + 3000


async def test_old_batches_update_state_but_not_the_window(hot: RedisHot) -> None:
    """A replayed batch older than the window keeps first-seen and latest right and adds no
    entry to the recent window."""
    await hot.write(ticks(1, T0, 2))
    await hot.write([batch(9, [NOW - WINDOW - 30_000], [[7.0, 70.0]])])
    (state,) = await hot.sources("metrics")
    assert state.first_seen_ms == NOW - WINDOW - 30_000
    assert state.last_seen_ms == T0 + 1000
    pts = await hot.recent("metrics", "m1", "cpu.used", 0)
    assert pts.times_ms.tolist() == [T0, T0 + 1000]
    assert pts.step_ms == 1000


async def test_source_info_follows_the_newest_batch(hot: RedisHot) -> None:
    """Name, labels and interval are the last written; the series count is the union."""
    await hot.write(ticks(1, T0, 1, src=source(name="old-name")))
    renamed = batch(2, [T0 + 1000], [[1.0]], series=("temp.celsius",), interval_ms=500)
    await hot.write([renamed])
    (state,) = await hot.sources("metrics")
    assert state.source.name == "host-1"
    assert state.source.labels == (("role", "web"),)
    assert state.interval_ms == 500
    assert state.series_count == 3


def test_urls_name_a_prefix_and_pass_the_rest_to_redis() -> None:
    """The prefix defaults to sysmonstm:; credentials never reach what is shown."""
    h = RedisHot("redis://u:secret@db.example:6380/2?prefix=p1:&socket_keepalive=true")
    assert h.keys.latest("metrics", "x") == "p1:hot:metrics:x:latest"
    assert "secret" not in h.shown
    assert "socket_keepalive=true" in h._target.client_url
    assert "prefix" not in h._target.client_url
    assert RedisHot("rediss://db.example/0").keys.sources("d") == "sysmonstm:hot:d:sources"
    assert isinstance(open_hot("redis://127.0.0.1:6379/0", 60_000), RedisHot)
    with pytest.raises(ConfigError):
        RedisHot("memory://")


async def test_an_unreachable_server_is_a_backend_error_without_credentials() -> None:
    """Every failure is a BackendError naming the server, never its password."""
    port = servers.free_port()
    h = RedisHot(f"redis://user:hunter2@127.0.0.1:{port}/0", connect_timeout_s=0.5)
    with pytest.raises(BackendError) as caught:
        await h.open()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    for call in (
        lambda: h.write(ticks(1, T0, 1)),
        lambda: h.sources("metrics"),
        lambda: h.latest("metrics", "m1"),
        lambda: h.recent("metrics", "m1", "cpu.used", 0),
    ):
        with pytest.raises(BackendError):
            await call()
    await h.close()


async def test_unopened_or_empty_calls_are_cheap_and_clear() -> None:
    """Writing nothing asks nothing; using a closed tier is a BackendError."""
    h = RedisHot(f"redis://127.0.0.1:{servers.free_port()}/0")
    await h.write([])
    with pytest.raises(BackendError, match="not open"):
        await h.sources("metrics")


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    import asyncio

    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within 30 s")


async def test_a_restarted_server_is_written_again_and_the_guard_recovers(tmp_path: Path) -> None:
    """Stop a throwaway Redis under a guarded tier: writes are skipped, reads empty; start it
    on the same port (empty, without the script): the guard comes back by itself and the
    next write lands."""
    server = servers.redis_server(tmp_path / "redis")
    server.start()
    url = f"redis://{servers.LOCAL_HOST}:{server.port}/0?prefix=t:"
    guard = GuardedHot(
        RedisHot(url, window_ms=WINDOW, now_ms=clock), probe_min_s=0.02, probe_max_s=0.2
    )
    try:
        await guard.open()
        await guard.write(ticks(1, T0, 2))
        assert len(await guard.latest("metrics", "m1")) == 2
        server.stop()
        await guard.write(ticks(3, T0 + 2000, 3))
        assert guard.degraded
        assert guard.skipped_batches == 3
        assert await guard.sources("metrics") == []
        server.start()

        async def healthy() -> bool:
            return not guard.degraded

        await wait_for(healthy, "recovery")
        await guard.write(ticks(6, T0 + 5000, 1))
        latest = {lv.series: (lv.time_ms, lv.value) for lv in await guard.latest("metrics", "m1")}
        assert latest["cpu.used"] == (T0 + 5000, 0.0)
        assert [s.source.id for s in await guard.sources("metrics")] == ["m1"]
        assert guard.outages == 1
    finally:
        await guard.close()
        server.stop()


async def test_values_round_trip_exactly(hot: RedisHot) -> None:
    """Doubles come back bit for bit (no text formatting on the way)."""
    rng = np.random.default_rng(7)
    vals = rng.standard_normal((4, 2)) * 1e300
    await hot.write([batch(1, [T0 + i for i in range(4)], vals.tolist())])
    pts = await hot.recent("metrics", "m1", 'disk.used_pct{mount="/"}', 0)
    assert pts.avg.tobytes() == vals[:, 1].tobytes()
    latest = {lv.series: lv.value for lv in await hot.latest("metrics", "m1")}
    assert latest["cpu.used"] == vals[3, 0]
