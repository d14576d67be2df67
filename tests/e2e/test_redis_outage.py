"""The Redis hot tier goes away and comes back under a running system.

``sysmonstm up`` runs on a throwaway ``redis-server`` (never the machine's own) with a real
collector streaming to it. While Redis is stopped the dashboard keeps its hosts and values
from the warm tier and says so, ``/healthz`` says degraded (200), and ingest carries on
without losing a sample; once Redis is started again on the same port everything is live
again by itself, without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser

from sysmonstm.config import load_settings
from sysmonstm.domains.metrics.api import LIVE_HEADER
from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests import servers
from tests.conftest import free_port
from tests.e2e.processes import SYSMONSTM, Proc, base_env, spawn, stop
from tests.e2e.warm_rows import stored
from tests.gateway.support import ramp, seed

pytestmark = pytest.mark.e2e

T = TypeVar("T")
MACHINE = "e2e-redis"
PREFIX = "e2e:"
WAIT_S = 30.0
BANNER = "live tier degraded — showing stored data"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = WAIT_S) -> T:
    """Await ``probe`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = await probe()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            last = exc
        else:
            if found:
                return found
            last = found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


async def hot_keys(port: int) -> dict[str, int]:
    """What the hot tier holds for the collector's host: frames (one per layout), recent
    batches, sources."""
    client = aioredis.Redis(host=servers.LOCAL_HOST, port=port)
    try:
        base = f"{PREFIX}hot:metrics:{MACHINE}"
        return {
            "latest": int(await client.hlen(f"{base}:latest")),
            "recent": int(await client.zcard(f"{base}:recent")),
            "sources": int(await client.zcard(f"{PREFIX}hot:metrics:sources")),
        }
    finally:
        await client.aclose()


def log_events(proc: Proc, prefix: str) -> list[dict[str, Any]]:
    return [line for line in proc.lines() if str(line.get("event", "")).startswith(prefix)]


async def test_the_system_rides_out_a_redis_outage(browser: Browser, tmp_path: Path) -> None:
    redis_server = servers.redis_server(tmp_path / "redis")
    redis_server.start()
    http, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    data = tmp_path / "up"
    hot_url = f"redis://{servers.LOCAL_HOST}:{redis_server.port}/0?prefix={PREFIX}"
    env = base_env(data, gateway__listen=http, aggregator__listen=grpc, hot__url=hot_url)
    up = spawn([SYSMONSTM, "up", "--no-collect"], env, tmp_path / "up.log")
    collector: Proc | None = None
    base = f"http://{http}"
    try:
        await asyncio.to_thread(up.wait_log, "sysmonstm is up", 60)
        collector = spawn(
            [
                SYSMONSTM,
                "collector",
                "--aggregator",
                grpc,
                "--machine-id",
                MACHINE,
                "--hostname",
                "redis-box",
                "--interval",
                "0.5",
                "--spool-dir",
                str(tmp_path / "spool"),
            ],
            base_env(tmp_path / "collector"),
            tmp_path / "collector.log",
        )
        async with httpx.AsyncClient(base_url=base, timeout=5) as api:

            async def host(live: str, after_ms: int = 0) -> dict[str, Any] | None:
                """The collector's host as /api/v1/hosts lists it, if its state is ``live``
                and it has a cpu.used value newer than ``after_ms``."""
                res = await api.get("/api/v1/hosts")
                found = [h for h in res.json() if h["id"] == MACHINE]
                if (
                    res.headers[LIVE_HEADER] == live
                    and found
                    and found[0]["live"] == live
                    and found[0]["values"]["cpu.used"]["t"] > after_ms
                ):
                    return dict(found[0])
                return None

            async def health(live: str) -> httpx.Response | None:
                res = await api.get("/healthz")
                return res if res.json()["live"] == live else None

            # 1. live, from Redis
            live = await until(lambda: host("ok"), "the collector's host, live")
            assert len(live["values"]) > 10
            assert (await hot_keys(redis_server.port))["latest"] >= 1
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{base}/")
            card = page.locator(f'[data-host="{MACHINE}"]')
            await card.wait_for(timeout=WAIT_S * 1000)
            banner = page.locator("#degraded")
            assert await banner.is_hidden()

            # 2. Redis stops: degraded, not down
            redis_server.stop()
            down_ms = now_ms()
            res = await until(lambda: health("degraded"), "/healthz saying degraded")
            assert res.status_code == 200
            body = res.json()
            assert body["status"] == "degraded"
            assert body["checks"] == {"bus": "ok", "hot": "degraded", "warm": "ok"}
            assert body["hot"]["since_ms"] >= down_ms - 1000
            await banner.wait_for(state="visible", timeout=WAIT_S * 1000)
            assert (await banner.text_content() or "").strip() == BANNER

            # ingest goes on into the warm tier, and the API serves it from there
            await until(lambda: host("degraded", down_ms + 1500), "stored values after the stop")
            detail = await api.get(f"/api/v1/hosts/{MACHINE}")
            assert detail.status_code == 200
            assert detail.headers[LIVE_HEADER] == "degraded"
            assert detail.json()["live"] == "degraded"
            assert "cpu.used" in detail.json()["series"]
            recent = (
                await api.get(
                    "/api/v1/series", params={"host": MACHINE, "series": "cpu.used", "from": "-1m"}
                )
            ).json()
            assert recent["tier"] == "raw"
            assert max(recent["t"]) > down_ms

            # a page loaded now shows the host and its values from stored data
            await page.reload()
            await card.wait_for(timeout=WAIT_S * 1000)
            reading = card.locator('[data-metric="cpu.used"]')
            await reading.wait_for(timeout=WAIT_S * 1000)
            float(await reading.text_content() or "")
            await banner.wait_for(state="visible", timeout=WAIT_S * 1000)

            # 3. Redis is back on the same port (empty): live again by itself
            redis_server.start()
            up_ms = now_ms()
            res = await until(lambda: health("ok"), "/healthz back to ok")
            assert res.status_code == 200
            assert res.json()["status"] == "ok"
            assert res.json()["hot"]["skipped_batches"] > 0
            await banner.wait_for(state="hidden", timeout=WAIT_S * 1000)
            back = await until(lambda: host("ok", up_ms), "live values from Redis again")
            assert len(back["values"]) > 10
            refilled = await hot_keys(redis_server.port)
            assert refilled["latest"] >= 1
            assert refilled["recent"] > 0
            assert refilled["sources"] == 1
            # the hole the outage left in Redis is read from the warm tier instead
            span = (
                await api.get(
                    "/api/v1/series",
                    params={"host": MACHINE, "series": "cpu.used", "from": str(down_ms - 5000)},
                )
            ).json()
            assert span["tier"] == "raw"
            assert any(down_ms < t < up_ms for t in span["t"])
            assert errors == []
            await page.close()

        # 4. no sample lost, none doubled; the outage was logged once each way
        assert stop(collector) == 0, collector.text()[-2000:]
        (done,) = [line for line in collector.lines() if line.get("event") == "collector stopped"]
        assert done["pending"] == 0
        assert done["dropped"] == 0
        rows = stored(data / "warm.db", MACHINE)
        seqs = [seq for seq, _ in rows]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a batch is missing or doubled"
        assert seqs[-1] == done["acked"]
        assert sum(1 for _, t in rows if down_ms < t < up_ms) >= 2
        assert len(log_events(up, "hot tier unavailable")) == 1
        assert len(log_events(up, "hot tier recovered")) == 1
    finally:
        if collector is not None:
            stop(collector)
        code = stop(up)
        redis_server.stop()
    assert code == 0, up.text()[-3000:]
    assert "aggregator stopped" in up.text()


async def test_a_gateway_started_while_redis_is_down_serves_stored_data(data_dir: Path) -> None:
    """Core.open succeeds with Redis unreachable; hosts, details and health come from the
    warm tier and say degraded."""
    port = free_port()  # nothing listens there
    settings = load_settings(
        {"data_dir": str(data_dir), "hot": {"url": f"redis://127.0.0.1:{port}/0?prefix=x:"}}
    )
    core = await Core.open(settings)
    try:
        assert core.hot.degraded
        t = now_ms()
        await seed(core, [ramp("m-1", t - 10_000, 5)])  # the hot write is skipped
        assert core.hot.skipped_batches == 1
        app = create_app(core)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c,
        ):
            hosts = await c.get("/api/v1/hosts")
            assert hosts.headers[LIVE_HEADER] == "degraded"
            (only,) = hosts.json()
            assert only["id"] == "m-1"
            assert only["live"] == "degraded"
            assert only["values"]["cpu.used"] == {"t": t - 6_000, "v": 4.0}
            detail = (await c.get("/api/v1/hosts/m-1")).json()
            assert detail["live"] == "degraded"
            assert detail["values"]["cpu.used"]["v"] == 4.0
            health = await c.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["checks"]["hot"] == "degraded"
            assert health.json()["hot"]["outages"] == 1
            series = (
                await c.get(
                    "/api/v1/series", params={"host": "m-1", "series": "cpu.used", "from": "-1m"}
                )
            ).json()
            assert series["tier"] == "raw"  # inside the hot window, yet from the warm tier
            assert len(series["t"]) == 5
    finally:
        await core.close()
