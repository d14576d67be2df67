"""The dashboard in a real headless Chromium against a real gateway fed over the bus.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; Playwright cannot download
browsers here) and the built bundle (``make web``). Missing either FAILS, never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
from playwright.async_api import Browser, Page

from sysmonstm.runtime import Core
from tests.gateway.support import (
    SERIES,
    alert,
    alert_record,
    batch,
    gateway_settings,
    now_ms,
    publish_metrics,
    seed,
    served,
)

pytestmark = pytest.mark.e2e

WAIT_MS = 20_000
HISTORY_POINTS = 540  # one a minute, from 10 h to 1 h ago: outside 15 min, inside 24 h


async def publish_forever(core: Core) -> None:
    """Live metrics for m-1 (also stored) and m-live (bus only), five times a second."""
    seq = 0
    while True:
        seq += 1
        cpu = (seq * 7.3) % 100
        await publish_metrics(core, "m-1", now_ms(), [cpu, 40.0, 61.5, 2048.0], seq=seq)
        await publish_metrics(core, "m-live", now_ms(), [cpu / 2, 20.0, 30.0, 1024.0], seq=seq)
        await asyncio.sleep(0.2)


class Dashboard(NamedTuple):
    url: str
    core: Core


@pytest.fixture
async def dashboard(data_dir: Path, bundle: Path) -> AsyncIterator[Dashboard]:
    """A served gateway: m-1 has 9 h of stored history and live events; m-live only events."""
    core = await Core.open(gateway_settings(data_dir))
    t = now_ms() - 3_600_000
    t -= t % 60_000
    times = [t - i * 60_000 for i in reversed(range(HISTORY_POINTS))]
    await seed(
        core,
        [
            batch(
                "m-1",
                1,
                times,
                [[float(i % 100), 40.0, 61.5, 2048.0] for i in range(HISTORY_POINTS)],
            )
        ],
        hot=False,
    )
    await core.warm.append_records([alert_record(alert("stored", "firing", now_ms() - 90_000))])
    publisher = asyncio.create_task(publish_forever(core))
    try:
        async with served(core) as url:
            yield Dashboard(url, core)
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await core.close()


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    return page, errors


async def wait_text_change(page: Page, selector: str) -> tuple[str, str]:
    """The element's text now, then once it differs (the live update)."""
    element = page.locator(selector)
    await element.wait_for(timeout=WAIT_MS)
    before = await element.text_content() or ""
    await page.wait_for_function(
        "([sel, before]) => { const el = document.querySelector(sel);"
        " return el !== null && el.textContent !== before; }",
        arg=[selector, before],
        timeout=WAIT_MS,
    )
    return before, await element.text_content() or ""


async def test_host_cards_show_and_cpu_updates_live(browser: Browser, dashboard: Dashboard) -> None:
    """A card appears for the stored host and for the host only seen on the bus; the CPU
    reading of a card changes as events arrive."""
    page, errors = await open_page(browser, dashboard.url)

    for host in ("m-1", "m-live"):
        await page.locator(f'[data-host="{host}"]').wait_for(timeout=WAIT_MS)
    selector = '[data-host="m-1"] [data-metric="cpu.used"]'
    before, after = await wait_text_change(page, selector)

    assert before != after
    assert float(after) >= 0
    assert await page.locator('[data-host="m-1"] .host-name').text_content() == "m-1.example"
    mem = page.locator('[data-host="m-1"] [data-metric="mem.used_pct"]')
    assert await mem.text_content() == "40.0"
    assert errors == []


async def test_active_alerts_show_on_top_and_follow_the_bus(
    browser: Browser, dashboard: Dashboard
) -> None:
    """A stored firing alert shows at load; a live one appears, then leaves when resolved."""
    page, errors = await open_page(browser, dashboard.url)
    stored = page.locator('#alerts [data-alert="stored"]')
    await stored.wait_for(timeout=WAIT_MS)
    assert "sev-warning" in (await stored.get_attribute("class") or "")
    assert "CPU high on m-1" in (await stored.text_content() or "")
    assert "for " in (await stored.locator("time").text_content() or "")

    bus = dashboard.core.bus
    await bus.publish("alerts.disk_full", alert("live", "firing", now_ms(), severity="critical"))
    live = page.locator('#alerts [data-alert="live"]')
    await live.wait_for(timeout=WAIT_MS)
    assert "sev-critical" in (await live.get_attribute("class") or "")
    first = await page.locator("#alerts [data-alert]").first.get_attribute("data-alert")
    assert first == "live"  # critical before warning
    await bus.publish("alerts.disk_full", alert("live", "resolved", now_ms() + 1))
    await live.wait_for(state="detached", timeout=WAIT_MS)
    assert await page.locator("#alerts .count").text_content() == "1"
    assert errors == []


async def test_range_button_loads_history_into_the_charts(
    browser: Browser, dashboard: Dashboard
) -> None:
    """Pressing 24 h fetches that range from /api/v1/series and draws the stored points."""
    page, errors = await open_page(browser, dashboard.url)
    plot = '[data-host="m-1"] [data-panel="cpu"] .plot'
    await page.locator(plot).wait_for(timeout=WAIT_MS)

    async with page.expect_response(
        lambda r: "/api/v1/series" in r.url and "cpu.used" in r.url and "-86400s" in r.url,
        timeout=WAIT_MS,
    ) as response:
        await page.click('[data-range="24h"]')
    assert (await response.value).status == 200

    await page.wait_for_function(
        "([sel, n]) => Number(document.querySelector(sel)?.dataset.points || 0) >= n",
        arg=[plot, HISTORY_POINTS],
        timeout=WAIT_MS,
    )
    assert await page.get_attribute('[data-range="24h"]', "aria-pressed") == "true"
    assert errors == []


async def test_host_page_has_a_live_chart_for_every_series(
    browser: Browser, dashboard: Dashboard
) -> None:
    """/host/m-1 draws one chart per series, grouped by family, with live readings, and
    shows the host's alerts."""
    page, errors = await open_page(browser, dashboard.url + "/host/m-1")

    for key in SERIES:
        await page.locator(
            f'figure[data-series="{key.replace(chr(34), chr(92) + chr(34))}"]'
        ).wait_for(timeout=WAIT_MS)
    assert await page.locator("figure.series-card").count() == len(SERIES)
    families = await page.locator("section.family").evaluate_all(
        "els => els.map(e => e.dataset.family)"
    )
    assert families == ["cpu", "mem", "disk", "net"]
    await page.locator('.host-page #alerts [data-alert="stored"]').wait_for(timeout=WAIT_MS)
    assert await page.locator(".host-page h1").text_content() == "m-1.example"
    await wait_text_change(page, '.host-page [data-metric="cpu.used"]')
    assert errors == []
