"""Deskmeter's calendar pages in headless Chromium against a real ``sysmonstm up``.

Watchers are played by the test: DeskBatches over gRPC to the aggregator, exactly what
``sysmonstm deskmeter watch`` sends. The pages are checked against the REST API's own
answers (summary totals, day bounds), and live updates against the 1 s of issue 4's
Done-when 3. Needs Debian's ``chromium`` and the built bundle (``make web``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
import websockets
from playwright.async_api import Browser, Page

from sysmonstm.domains.deskmeter.localdays import day_start_ms
from sysmonstm.gateway.follow import ws_url
from sysmonstm.v1.deskmeter_pb2 import DeskBatch, DeskEvent
from sysmonstm.v1.deskmeter_pb2_grpc import DeskmeterIngestStub
from tests.conftest import free_port
from tests.deskmeter.wire import HEARTBEAT, SWITCH, desk_batch, event
from tests.e2e.processes import ROOT, SYSMONSTM, Proc, base_env, get_json, spawn, stop

pytestmark = pytest.mark.e2e

A, A_TZ = "desk-a", "Europe/Berlin"
B, B_TZ = "desk-b", "America/New_York"
BROWSER_TZ = "Asia/Tokyo"  # the combined view draws in the browser's zone
HEARTBEAT_MS = 600_000  # the scripted watchers beat every 10 minutes
MINUTE = 60_000
HOUR = 3_600_000
WAIT_MS = 15_000
TASKS = ("Project X", "Mail", "Review", "")
WORKSPACES = ("Code", "Mail", "Web", "Chat")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Session:
    """A scripted stretch of work: from ``start_ms``, one switch every ``step_min`` minutes
    (rotating tasks and workspaces, every fifth block idle) with heartbeats in between."""

    start_ms: int
    end_ms: int
    step_min: int
    offset: int = 0

    def events(self, tz: str) -> list[DeskEvent]:
        out = []
        t, i = self.start_ms, self.offset
        while t < self.end_ms:
            task, ws = TASKS[i % len(TASKS)], WORKSPACES[i % len(WORKSPACES)]
            idle = i % 5 == 4
            block_end = min(t + self.step_min * MINUTE, self.end_ms)
            out.append(event(t, SWITCH, ws, i % 4, task, idle, 0, tz))
            beat = t + HEARTBEAT_MS
            while beat < block_end:
                out.append(event(beat, HEARTBEAT, ws, i % 4, task, idle, 0, tz))
                beat += HEARTBEAT_MS
            if block_end > out[-1].time_unix_ms:
                out.append(event(block_end, HEARTBEAT, ws, i % 4, task, idle, 0, tz))
            t, i = block_end, i + 1
        return out


def last_dst_change(tz: str, before: date) -> date:
    """The most recent local day before ``before`` that is not 24 hours long in ``tz``."""
    day = before - timedelta(days=1)
    while day_start_ms(day + timedelta(days=1), tz) - day_start_ms(day, tz) == 24 * HOUR:
        day -= timedelta(days=1)
    return day


def local_day(t_ms: int, tz: str) -> date:
    return datetime.fromtimestamp(t_ms / 1000, ZoneInfo(tz)).date()


@dataclass
class Watcher:
    """One scripted machine: its batches go over gRPC with growing sequences."""

    machine: str
    tz: str
    host: str
    seq: int = 0

    def batch(self, events: Sequence[DeskEvent]) -> DeskBatch:
        self.seq += 1
        return desk_batch(
            self.machine, self.seq, list(events), host=self.host, heartbeat_ms=HEARTBEAT_MS
        )


async def send(grpc_target: str, batches: Sequence[DeskBatch]) -> None:
    """Stream ``batches`` to the aggregator and wait until it acknowledges them stored."""
    last = batches[-1].sequence
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        call = DeskmeterIngestStub(channel).Stream(iter(batches))
        async for ack in call:
            if ack.stored_through >= last:
                call.cancel()
                return
    raise AssertionError(f"the aggregator never acknowledged sequence {last}")


@dataclass
class System:
    proc: Proc
    base: str
    grpc: str
    a: Watcher
    b: Watcher
    dst_day: date  # the last DST change in A's zone; A has a session across it

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return get_json(f"{self.base}/api/v1/deskmeter/{path}?{query}")


def seed_history(system: System, now: int) -> None:
    """Twelve days of work on both machines (7.5 h a day, shifted so some sessions cross
    local midnight), and for A a night across its zone's last DST change; both fell silent
    an hour ago. Each machine's batches go in time order, as a watcher's do."""
    a, b = system.a, system.b
    start = now - 12 * 86_400_000
    days = [start + day * 86_400_000 for day in range(12)]
    dst = day_start_ms(system.dst_day, a.tz)
    night = Session(dst - 2 * HOUR, dst + 5 * HOUR, 50)
    sessions_a = [Session(t, t + 450 * MINUTE, 47) for t in days]
    # the DST night replaces any daily session it would overlap
    sessions_a = [s for s in sessions_a if s.end_ms <= night.start_ms or s.start_ms >= night.end_ms]
    sessions_a = sorted([*sessions_a, night], key=lambda s: s.start_ms)
    sessions_b = [Session(t + 3 * HOUR, t + 3 * HOUR + 450 * MINUTE, 61, 1) for t in days]
    end = now - HOUR
    sessions_a.append(Session(end - 40 * MINUTE, end, 25, 2))
    sessions_b.append(Session(end - 30 * MINUTE, end, 20, 3))
    for watcher, sessions in ((a, sessions_a), (b, sessions_b)):
        asyncio.run(send(system.grpc, [watcher.batch(s.events(watcher.tz)) for s in sessions]))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data = tmp_path_factory.mktemp("deskcal")
    http, grpc_listen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = base_env(data, aggregator__max_past_s=str(400 * 86400))
    proc = spawn(
        [SYSMONSTM, "up", "--no-collect", "--http", http, "--grpc", grpc_listen],
        env,
        data / "up.log",
    )
    base = f"http://{http}"
    try:
        proc.wait_log("sysmonstm is up")
        now = now_ms()
        found = System(
            proc,
            base,
            grpc_listen,
            Watcher(A, A_TZ, "laptop"),
            Watcher(B, B_TZ, "desk"),
            last_dst_change(A_TZ, local_day(now, A_TZ)),
        )
        seed_history(found, now)
        yield found
    finally:
        stop(proc)
    assert "aggregator stopped" in proc.text(), "SIGTERM must end in a clean flush"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        timezone_id=BROWSER_TZ, viewport={"width": 1400, "height": 900}
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    await context.close()
    assert errors == [], errors


async def open_calendar(page: Page, system: System, **query: str) -> None:
    await page.goto(f"{system.base}/deskmeter?{urllib.parse.urlencode(query)}")
    await page.locator("#dm-calendar[data-from]").wait_for(timeout=WAIT_MS)
    await page.locator(".dm-status").wait_for(state="hidden", timeout=WAIT_MS)


async def shown_range(page: Page) -> tuple[int, int, str]:
    cal = page.locator("#dm-calendar")
    return (
        int(await cal.get_attribute("data-from") or 0),
        int(await cal.get_attribute("data-to") or 0),
        await cal.get_attribute("data-zone") or "",
    )


async def totals(page: Page, attr: str) -> dict[str, tuple[float, float]]:
    """``{key: (active_s, idle_s)}`` of the page's rows carrying ``data-<attr>``."""
    rows: list[list[Any]] = await page.locator(f"[data-{attr}]").evaluate_all(
        f"""els => els.map(e => [e.getAttribute("data-{attr}"), Number(e.dataset.activeS),
                                 Number(e.dataset.idleS)])"""
    )
    return {key: (round(active, 3), round(idle, 3)) for key, active, idle in rows}


def summary_totals(body: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {
        t["key"]: (round(t["active_s"], 3), round(t["idle_s"], 3))
        for t in body["totals"]
        if t["active_s"] or t["idle_s"]
    }


async def assert_totals_match_the_api(page: Page, system: System, machine: str | None) -> None:
    """Per task, per day (one machine's zone) or per machine (combined), and the range's
    total: the page says exactly what /summary says for the range it shows."""
    start, end, _ = await shown_range(page)
    by_task = system.api("summary", **{"from": start, "to": end, "machine": machine, "by": "task"})
    assert await totals(page, "total-task") == summary_totals(by_task)
    whole = page.locator("[data-range-total]")
    assert float(await whole.get_attribute("data-active-s") or -1) == pytest.approx(
        by_task["active_s"], abs=1e-3
    )
    assert float(await whole.get_attribute("data-idle-s") or -1) == pytest.approx(
        by_task["idle_s"], abs=1e-3
    )
    if machine:
        by_day = system.api(
            "summary", **{"from": start, "to": end, "machine": machine, "by": "day"}
        )
        shown = {k: v for k, v in (await totals(page, "day-total")).items() if v != (0, 0)}
        assert shown == summary_totals(by_day)
    else:
        by_machine = system.api("summary", **{"from": start, "to": end, "by": "machine"})
        assert await totals(page, "total-machine") == summary_totals(by_machine)
    assert by_task["active_s"] > 0


async def test_a_switch_shows_as_a_new_block_within_1_s_without_a_reload(
    system: System, page: Page
) -> None:
    """Day view of A: a switch sent as a watcher would appears as a new block and as A's
    current task within 1 s; heartbeats then grow it; the page never navigates."""
    navigations: list[str] = []
    await open_calendar(page, system, view="day", machine=A)
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    await page.evaluate("window.__sameDocument = true")
    task = f"Live switch {now_ms()}"
    block = page.locator(f'.dm-block[data-machine="{A}"][data-task="{task}"]')
    assert await block.count() == 0

    sent = time.monotonic()
    switch_at = now_ms()
    await send(
        system.grpc, [system.a.batch([event(switch_at, SWITCH, "Code", 0, task, False, 0, A_TZ)])]
    )
    remaining_ms = 1000 - (time.monotonic() - sent) * 1000
    await block.wait_for(timeout=max(remaining_ms, 1))
    await page.locator(f'[data-machine="{A}"] [data-current-task="{task}"]').wait_for(
        timeout=max(1000 - (time.monotonic() - sent) * 1000, 1)
    )

    assert await block.get_attribute("data-start") == str(switch_at)
    assert await block.get_attribute("data-open") == "1"
    beat_at = switch_at + 2000
    await asyncio.sleep(2.1)
    await send(
        system.grpc, [system.a.batch([event(beat_at, HEARTBEAT, "Code", 0, task, False, 0, A_TZ)])]
    )
    await page.wait_for_function(
        "([sel, end]) => document.querySelector(sel)?.dataset.end === end",
        arg=[f'.dm-block[data-machine="{A}"][data-task="{task}"]', str(beat_at)],
        timeout=WAIT_MS,
    )
    assert await page.evaluate("window.__sameDocument") is True
    assert navigations == []


async def test_week_and_month_totals_equal_the_api_summary(system: System, page: Page) -> None:
    """For one machine and combined, the week and month views' totals per task, per day or
    machine, and for the whole range equal /summary for the range shown."""
    shown_day = local_day(now_ms() - 4 * 86_400_000, A_TZ).isoformat()
    for view in ("week", "month"):
        for machine in (A, None):
            query = {"view": view, "date": shown_day} | ({"machine": machine} if machine else {})
            await open_calendar(page, system, **query)
            start, end, zone = await shown_range(page)
            tz = A_TZ if machine else BROWSER_TZ
            assert zone == tz
            first = date.fromisoformat(shown_day)
            if view == "week":
                first -= timedelta(days=first.weekday())
                after = first + timedelta(days=7)
            else:
                first = first.replace(day=1)
                after = (first + timedelta(days=32)).replace(day=1)
            assert (start, end) == (day_start_ms(first, tz), day_start_ms(after, tz))
            await assert_totals_match_the_api(page, system, machine)
            assert await page.locator(".dm-block").count() > 0


async def test_the_machine_filter_shows_one_machine_and_combined_shows_both(
    system: System, page: Page
) -> None:
    """Combined week: blocks of both machines in the browser's zone; choosing B in the
    filter redraws in B's zone with only B's blocks and B's totals, without a reload."""
    shown_day = local_day(now_ms() - 4 * 86_400_000, A_TZ).isoformat()
    await open_calendar(page, system, view="week", date=shown_day)
    await page.evaluate("window.__sameDocument = true")
    machines = set(
        await page.locator(".dm-block").evaluate_all("els => els.map(e => e.dataset.machine)")
    )
    assert machines == {A, B}
    assert set(await totals(page, "total-machine")) == {A, B}

    await page.select_option("#dm-machine", B)
    await page.wait_for_function(
        "z => document.querySelector('#dm-calendar')?.dataset.zone === z", arg=B_TZ, timeout=WAIT_MS
    )
    await page.locator(".dm-status").wait_for(state="hidden", timeout=WAIT_MS)
    machines = set(
        await page.locator(".dm-block").evaluate_all("els => els.map(e => e.dataset.machine)")
    )
    assert machines == {B}
    assert "machine=desk-b" in page.url
    assert await page.locator("[data-total-machine]").count() == 0
    await assert_totals_match_the_api(page, system, B)

    await page.select_option("#dm-machine", "")
    await page.wait_for_function(
        "z => document.querySelector('#dm-calendar')?.dataset.zone === z",
        arg=BROWSER_TZ,
        timeout=WAIT_MS,
    )
    assert await page.evaluate("window.__sameDocument") is True


async def test_days_follow_the_machines_zone_across_midnight_and_dst(
    system: System, page: Page
) -> None:
    """The day of A's last DST change lasts 23 or 25 hours on the page as in the API; the
    night's session is cut at local midnight, the two days' totals equal /summary by day."""
    day = system.dst_day
    await open_calendar(page, system, view="day", date=day.isoformat(), machine=A)
    start, end, _ = await shown_range(page)
    assert (start, end) == (day_start_ms(day, A_TZ), day_start_ms(day + timedelta(days=1), A_TZ))
    assert end - start in (23 * HOUR, 25 * HOUR)
    await assert_totals_match_the_api(page, system, A)
    first = page.locator(".dm-block").first
    assert await first.get_attribute("data-start") == str(start)  # the night goes on from before

    await page.click("[data-step='-1']")
    await page.wait_for_function(
        "s => document.querySelector('#dm-calendar')?.dataset.to === s",
        arg=str(start),
        timeout=WAIT_MS,
    )
    await page.locator(".dm-status").wait_for(state="hidden", timeout=WAIT_MS)
    last = page.locator(".dm-block").last
    assert await last.get_attribute("data-end") == str(start)  # ... and began the day before
    await assert_totals_match_the_api(page, system, A)


async def test_setting_the_task_on_the_page_reaches_the_machines_watcher(
    system: System, page: Page
) -> None:
    """The card's form PUTs the task; the gateway publishes it for B's watcher; when the
    watcher switches, the card shows the task."""
    await open_calendar(page, system, view="week", machine=B)
    async with websockets.connect(ws_url(system.base)) as ws:
        # subscribed (acknowledged) before the task is set, so its publication is seen
        await ws.send(json.dumps({"subscribe": ["deskmeter.task.*"]}))
        assert "ok" in json.loads(await ws.recv())
        card = page.locator(f'.dm-now-card[data-machine="{B}"]')
        await card.locator("input[name=task]").fill("Deep focus")
        async with page.expect_response(lambda r: r.url.endswith("/deskmeter/task")) as answer:
            await card.locator("button[type=submit]").click()
        assert (await answer.value).status == 202
        published = json.loads(await asyncio.wait_for(ws.recv(), WAIT_MS / 1000))["payload"]
        assert (published["machine"], published["task"]) == (B, "Deep focus")
        await card.locator(".dm-now-status").filter(has_text="Deep focus").wait_for(timeout=WAIT_MS)

        at = now_ms()
        await send(
            system.grpc,
            [system.b.batch([event(at, SWITCH, "Code", 0, "Deep focus", False, 0, B_TZ)])],
        )
        await card.locator('[data-current-task="Deep focus"]').wait_for(timeout=WAIT_MS)
        await (
            card.locator(".dm-now-status")
            .filter(has_text="Deep focus")
            .wait_for(state="detached", timeout=WAIT_MS)
        )


async def test_export_links_download_the_visible_range(system: System, page: Page) -> None:
    """CSV and JSON links name the range and machine on screen and download its intervals."""
    shown_day = local_day(now_ms() - 4 * 86_400_000, A_TZ).isoformat()
    await open_calendar(page, system, view="week", date=shown_day, machine=A)
    start, end, _ = await shown_range(page)
    intervals = system.api("intervals", **{"from": start, "to": end, "machine": A})["intervals"]
    for fmt in ("csv", "json"):
        href = await page.locator(f"[data-export={fmt}]").get_attribute("href") or ""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
        assert query == {"from": [str(start)], "to": [str(end)], "machine": [A], "format": [fmt]}
        response = await page.request.get(system.base + href)
        assert response.status == 200
        assert "attachment" in response.headers["content-disposition"]
        if fmt == "csv":
            lines = (await response.text()).strip().splitlines()
            assert len(lines) == 1 + len(intervals)  # a header, then one row per interval
    # the blocks on screen are those intervals, cut at local midnights
    drawn_ms = await page.locator(".dm-block").evaluate_all(
        "els => els.reduce((sum, e) => sum + Number(e.dataset.end) - Number(e.dataset.start), 0)"
    )
    assert drawn_ms == sum(iv["end_ms"] - iv["start_ms"] for iv in intervals)


async def test_an_unknown_view_or_date_in_the_url_shows_this_week(
    system: System, page: Page
) -> None:
    """A hand-edited URL with a bad view and an impossible date falls back to the week view
    of today instead of failing."""
    await open_calendar(page, system, view="year", date="2026-02-30", machine=A)
    start, end, _ = await shown_range(page)
    today = local_day(now_ms(), A_TZ)
    monday = today - timedelta(days=today.weekday())
    assert (start, end) == (
        day_start_ms(monday, A_TZ),
        day_start_ms(monday + timedelta(days=7), A_TZ),
    )
    assert await page.get_attribute("[data-view=week]", "aria-pressed") == "true"


ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",  # DST changes at midnight: a repeated hour before it, a gap after it
    "Australia/Lord_Howe",  # half-hour DST
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
)
DAY_STARTS_JS = """
import { dayBounds, dayKeyOf } from "./web/src/tz.js";
const cases = JSON.parse(process.argv[1]);
const out = cases.map(([key, tz]) => {
  const [start, end] = dayBounds(key, tz);
  return [start, end, dayKeyOf(start, tz), dayKeyOf(start - 1, tz)];
});
console.log(JSON.stringify(out));
"""


def test_the_calendar_cuts_days_where_the_server_does() -> None:
    """tz.js (the page's day arithmetic, run under Node) puts every day of 2026 in seven
    zones, DST days included, exactly where the server's localdays does."""
    node = Path(sys.executable).with_name("node")
    if not node.is_file():
        node = Path(shutil.which("node") or "node")
    first = date(2026, 1, 1)
    days = [first + timedelta(days=i) for i in range(365)]
    cases = [(d.isoformat(), tz) for tz in ZONES for d in days]
    done = subprocess.run(
        [str(node), "--input-type=module", "-e", DAY_STARTS_JS, json.dumps(cases)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    got = json.loads(done.stdout)
    for (key, tz), (start, end, key_at_start, key_before) in zip(cases, got, strict=True):
        day = date.fromisoformat(key)
        expected = (day_start_ms(day, tz), day_start_ms(day + timedelta(days=1), tz))
        assert (start, end) == expected, (key, tz)
        assert key_at_start == key, (key, tz)
        assert key_before < key, (key, tz)
