"""Focus alerts reach the desktop: rules → gateway → notify.py → session bus → a notification
service, all real (a dbus-daemon started by the test, dbus-fast on both ends, uvicorn).

First the D-Bus client and the notifier's policy against the test's notification service,
then the whole flow: a scripted session published on the bus of in-process rules and gateway
services, ``run_notifications`` following the gateway, and the bus and the gateway each
going away and coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from sysmonstm.config import Settings, load_settings
from sysmonstm.domain import Domain
from sysmonstm.domains.deskmeter.domain import DOMAIN
from sysmonstm.domains.deskmeter.freedesktop import (
    Notifications,
    NotificationsUnavailableError,
)
from sysmonstm.domains.deskmeter.machine import resolve_machine
from sysmonstm.domains.deskmeter.notify import AlertNotifier, machine_id, run_notifications
from sysmonstm.events.envelope import Envelope
from sysmonstm.gateway.server import serve_gateway
from sysmonstm.runtime import Core
from sysmonstm.services.rules import serve_rules
from sysmonstm.services.up import UpOptions, run_up
from tests.conftest import free_port
from tests.deskmeter import dbus_session
from tests.deskmeter.dbus_session import (
    NotificationServer,
    SessionBus,
    serve_notifications,
    stop_serving,
)
from tests.deskmeter.scripted import Session, send
from tests.deskmeter.wire import HEARTBEAT, SWITCH, desk_batch, event
from tests.e2e import conftest as e2e_fixtures

MACHINE = "m-1a2b"

# fixtures made visible to this module's tests
session_bus = dbus_session.session_bus
notification_server = dbus_session.notification_server
chromium, bundle, browser = e2e_fixtures.chromium, e2e_fixtures.bundle, e2e_fixtures.browser

# -- the D-Bus client -----------------------------------------------------------------------


async def test_notify_shows_replaces_and_closes_on_the_session_bus(
    notification_server: NotificationServer,
) -> None:
    client = Notifications()  # DBUS_SESSION_BUS_ADDRESS names the test's bus
    first = await client.notify("Deep work", "91 min on X", urgency=1, icon="emblem-default")
    again = await client.notify(
        "Deep work", "95 min on X", urgency=1, icon="emblem-default", replaces_id=first
    )
    await client.close(again)
    await client.close(again)  # already gone: no error
    await client.aclose()
    got = [
        (r.app_name, r.replaces_id, r.summary, r.body, r.urgency, r.icon, r.id)
        for r in notification_server.received
    ]
    assert got == [
        ("Deskmeter", 0, "Deep work", "91 min on X", 1, "emblem-default", first),
        ("Deskmeter", first, "Deep work", "95 min on X", 1, "emblem-default", first),
    ]
    assert notification_server.closed == [first]
    assert client.generation == 1


async def test_notify_without_a_bus_or_a_service_raises_a_clear_error(
    session_bus: SessionBus, tmp_path: Path
) -> None:
    nowhere = Notifications(f"unix:path={tmp_path / 'no-bus'}")
    with pytest.raises(NotificationsUnavailableError, match="no session bus"):
        await nowhere.notify("s", "b")
    no_service = Notifications(session_bus.address)
    with pytest.raises(NotificationsUnavailableError, match=r"Notify refused: .*ServiceUnknown"):
        await no_service.notify("s", "b")
    await no_service.aclose()


async def test_the_client_reconnects_after_the_session_bus_restarts(
    session_bus: SessionBus,
) -> None:
    server = await serve_notifications(session_bus.address)
    client = Notifications()
    await client.notify("one", "")
    await stop_serving(server)
    session_bus.stop()
    with pytest.raises(NotificationsUnavailableError):
        await client.notify("lost", "")
    session_bus.start()
    server = await serve_notifications(session_bus.address)
    await client.notify("two", "")
    assert [r.summary for r in server.received] == ["two"]
    assert client.generation == 2
    await client.aclose()
    await stop_serving(server)


# -- the notifier's policy ------------------------------------------------------------------


def alert(
    rule: str,
    state: str,
    t: int,
    *,
    instance: str = "",
    machine: str = MACHINE,
    severity: str = "warning",
    domain: str = "deskmeter",
    message: str = "",
) -> dict[str, Any]:
    """An alert payload as the rules service publishes it."""
    return {
        "id": instance or f"{rule}-1",
        "rule": rule,
        "state": state,
        "severity": severity,
        "key": machine,
        "group": {"machine": machine},
        "value": 1.0,
        "threshold": 0.0,
        "message": message or f"{rule} at {t}",
        "labels": {"domain": domain, "title": rule.replace("_", " ").title()},
        "started_ms": t,
        "fired_ms": t,
        "resolved_ms": t if state == "resolved" else None,
        "time_ms": t,
    }


@pytest.fixture
async def notifier(notification_server: NotificationServer) -> AsyncIterator[AlertNotifier]:
    n = AlertNotifier(MACHINE, Notifications())
    yield n
    await n.desktop.aclose()


async def test_a_refire_replaces_the_rules_notification_and_a_resolve_closes_it(
    notifier: AlertNotifier, notification_server: NotificationServer
) -> None:
    notifier.take(alert("context_switching", "firing", 10, instance="a"))
    await notifier.reconcile()
    notifier.take(alert("context_switching", "resolved", 20, instance="a"))
    notifier.take(alert("context_switching", "firing", 30, instance="b"))
    await notifier.reconcile()  # the second instance updates the same notification
    notifier.take(alert("context_switching", "resolved", 40, instance="b"))
    await notifier.reconcile()
    got = [(r.replaces_id, r.summary, r.body, r.id) for r in notification_server.received]
    assert got == [
        (0, "Context Switching", "context_switching at 10", 1),
        (1, "Context Switching", "context_switching at 30", 1),
    ]
    assert notification_server.closed == [1]
    assert notifier.shown == {}


async def test_urgency_follows_severity(
    notifier: AlertNotifier, notification_server: NotificationServer
) -> None:
    for rule, severity in [("a", "info"), ("b", "success"), ("c", "warning"), ("d", "critical")]:
        notifier.take(alert(rule, "firing", 1, severity=severity))
    await notifier.reconcile()
    assert [(r.summary, r.urgency, r.icon) for r in notification_server.received] == [
        ("A", 0, "dialog-information"),
        ("B", 1, "emblem-default"),
        ("C", 1, "dialog-warning"),
        ("D", 2, "dialog-error"),
    ]


async def test_only_this_machines_deskmeter_alerts_that_fire_are_shown(
    notifier: AlertNotifier, notification_server: NotificationServer
) -> None:
    notifier.take(alert("deep_work", "firing", 1, machine="m-other"))
    notifier.take(alert("cpu_high", "firing", 1, domain="metrics"))
    notifier.take(alert("idle_long", "pending", 1))
    notifier.take({"id": 7, "rule": "nonsense"})
    notifier.take("not an alert")
    notifier.take(alert("idle_long", "firing", 5, severity="info"))
    notifier.take(alert("idle_long", "firing", 3, severity="info"))  # a straggler
    notifier.take(alert("idle_long", "firing", 4, instance="older", severity="info"))
    await notifier.reconcile()
    assert [(r.summary, r.body) for r in notification_server.received] == [
        ("Idle Long", "idle_long at 5")
    ]


async def test_a_reset_from_the_board_closes_what_ended_and_shows_what_fires(
    notifier: AlertNotifier, notification_server: NotificationServer
) -> None:
    notifier.take(alert("deep_work", "firing", 1, severity="success"))
    await notifier.reconcile()
    notifier.reset([alert("idle_long", "firing", 9, severity="info"), alert("x", "firing", 2)])
    await notifier.reconcile()
    assert [r.summary for r in notification_server.received] == ["Deep Work", "Idle Long", "X"]
    assert notification_server.closed == [1]
    assert sorted(notifier.shown) == ["idle_long", "x"]


# -- the whole flow: rules → gateway → run_notifications → D-Bus ----------------------------


class Stack:
    """The rules service and the gateway of one core, in this event loop; the gateway can be
    stopped and started again on the same port."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.url = ""
        self._rules_stop = asyncio.Event()
        self._rules: asyncio.Task[Any] | None = None
        self._gw_stop = asyncio.Event()
        self._gw: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started = asyncio.Event()
        self._rules = asyncio.create_task(serve_rules(self.core, self._rules_stop, started))
        await asyncio.wait_for(started.wait(), 30)
        await self.start_gateway()

    async def start_gateway(self) -> None:
        ready = asyncio.Event()

        def on_ready(url: str) -> None:
            self.url = url
            ready.set()

        self._gw_stop = asyncio.Event()
        self._gw = asyncio.create_task(serve_gateway(self.core, self._gw_stop, on_ready=on_ready))
        await asyncio.wait_for(ready.wait(), 30)

    async def stop_gateway(self) -> None:
        self._gw_stop.set()
        if self._gw is not None:
            await self._gw

    async def stop(self) -> None:
        await self.stop_gateway()
        self._rules_stop.set()
        if self._rules is not None:
            await self._rules

    async def publish(self, *envelopes: Envelope) -> None:
        """Publish as the aggregator does (same ids, so a repeat is harmless)."""
        for env in envelopes:
            await self.core.bus.publish(
                env.topic, env.payload, source="aggregator", event_id=env.id, time_ms=env.time_ms
            )

    async def active(self) -> list[dict[str, Any]]:
        """The gateway's alert board."""
        async with httpx.AsyncClient(base_url=self.url) as http:
            return list((await http.get("/api/v1/alerts")).json()["active"])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "gateway": {"listen": f"127.0.0.1:{free_port()}"},
            "deskmeter": {"machine_id": MACHINE},
        }
    )


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    # The domain's rules and extractors as the core sees them; its ingest and REST routes are
    # not needed for this flow.
    deskmeter = Domain(
        name="deskmeter", extractors=DOMAIN.extractors, default_rules=DOMAIN.default_rules
    )
    core = await Core.open(settings, domains=[deskmeter])
    running = Stack(core)
    await running.start()
    yield running
    await running.stop()
    await core.close()


@contextlib.asynccontextmanager
async def notifications(settings: Settings, gateway: str) -> AsyncIterator[asyncio.Task[None]]:
    """``run_notifications`` following ``gateway``, cancelled on exit."""
    follows = settings.model_copy(
        update={"deskmeter": settings.deskmeter.model_copy(update={"gateway": gateway})}
    )
    task = asyncio.create_task(run_notifications(follows))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def context_switches(session: Session, start_s: int) -> list[Envelope]:
    """A start and 11 workspace changes within 11 minutes: context switching fires."""
    names = ["Code", "Mail", "Web", "Chat"]
    out = [session.switch(start_s, workspace="Code", task="Project X")]
    out += [
        session.switch(start_s + 60 * n, workspace=names[n % 4], index=n % 4) for n in range(1, 12)
    ]
    return out


async def test_a_focus_alert_reaches_the_desktop_and_its_resolve_closes_it(
    stack: Stack, settings: Settings, notification_server: NotificationServer
) -> None:
    """Done-when 4: a scripted session fires the rules; the alert is on the gateway's board
    and reaches the test's notification service with summary, body and urgency."""
    me, other = Session(MACHINE, "laptop"), Session("m-other", "desk")
    async with notifications(settings, stack.url):
        await stack.publish(*context_switches(other, 0))  # another machine: not shown here
        await stack.publish(*context_switches(me, 0))
        await notification_server.wait_until(lambda s: len(s.received) == 1)
        (shown,) = notification_server.received
        assert (shown.app_name, shown.summary, shown.urgency, shown.replaces_id) == (
            "Deskmeter",
            "Context switching",
            1,
            0,
        )
        assert shown.body == "Context switching on laptop: 11 switches in the last hour"
        board = {(a["rule"], a["group"]["machine"], a["state"]) for a in await stack.active()}
        assert board == {
            ("context_switching", MACHINE, "firing"),
            ("context_switching", "m-other", "firing"),
        }

        # 91 minutes on the last workspace: deep work; then idle ends it
        await stack.publish(me.heartbeat(660 + 91 * 60, idle_ms=2000))
        await notification_server.wait_until(lambda s: len(s.received) == 2)
        deep = notification_server.received[1]
        assert (deep.summary, deep.body, deep.urgency) == (
            "Deep work",
            "Deep work on laptop: 91 min on Project X",
            1,
        )
        await stack.publish(me.switch(660 + 92 * 60, idle=True, idle_ms=300_000))
        await notification_server.wait_until(lambda s: s.closed == [deep.id])
        assert notification_server.open == {shown.id}
        await asyncio.sleep(0.5)  # nothing else arrives (the other machine's alert above)
        assert len(notification_server.received) == 2


async def test_notifications_survive_the_bus_and_the_gateway_going_away(
    stack: Stack,
    settings: Settings,
    session_bus: SessionBus,
    notification_server: NotificationServer,
) -> None:
    me = Session(MACHINE, "laptop")
    async with notifications(settings, stack.url) as task:
        await stack.publish(*context_switches(me, 0))
        await notification_server.wait_until(lambda s: len(s.received) == 1)

        # the session bus goes away; an alert fires meanwhile; a new bus comes up
        await stop_serving(notification_server)
        session_bus.stop()
        await stack.publish(me.switch(700, idle=True, idle_ms=300_000))
        await stack.publish(me.heartbeat(700 + 26 * 60, idle_ms=(300 + 26 * 60) * 1000))
        await asyncio.sleep(0.5)
        assert not task.done()
        session_bus.start()
        server = await serve_notifications(session_bus.address)
        try:
            await server.wait_until(lambda s: len(s.received) == 2)
            assert sorted((r.summary, r.replaces_id) for r in server.received) == [
                ("Away", 0),
                ("Context switching", 0),
            ]
            away = next(r for r in server.received if r.summary == "Away")
            assert away.urgency == 0
            assert away.body == "Idle on laptop: no input for 31 min"

            # the gateway goes away; the person comes back meanwhile; the gateway returns
            await stack.stop_gateway()
            await stack.publish(me.switch(700 + 27 * 60, idle=False, idle_ms=0))
            await asyncio.sleep(0.5)
            assert not task.done()
            await stack.start_gateway()
            await server.wait_until(lambda s: s.closed == [away.id])
            assert server.open == {r.id for r in server.received if r.summary != "Away"}
        finally:
            await stop_serving(server)


@pytest.mark.e2e
async def test_focus_alerts_show_on_the_dashboards_alert_board(
    stack: Stack, browser: Browser
) -> None:
    """The dashboard (headless Chromium) lists a focus alert live with its severity and
    message, and drops it when it resolves, as it does for metrics alerts."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{stack.url}/")
    await page.locator("#alerts").wait_for(timeout=20_000)
    me = Session(MACHINE, "laptop")
    await stack.publish(me.switch(0, workspace="Code", task="Project X"), me.heartbeat(5460))
    item = page.locator('#alerts [data-state="firing"].sev-success')
    await item.wait_for(timeout=20_000)
    assert "Deep work on laptop: 91 min on Project X" in (await item.text_content() or "")
    await stack.publish(me.switch(5470, workspace="Mail", index=1))
    await item.wait_for(state="detached", timeout=20_000)
    assert errors == []


# -- through the real aggregator: DeskBatches over gRPC, as the watcher sends them ----------


@pytest.fixture
async def up(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """``sysmonstm up`` (aggregator, rules, gateway) in this process: (gateway URL, gRPC)."""
    grpc_addr = f"127.0.0.1:{free_port()}"
    full = settings.model_copy(
        update={"aggregator": settings.aggregator.model_copy(update={"listen": grpc_addr})}
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    urls: list[str] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    task = asyncio.create_task(run_up(full, stop, UpOptions(collect=False), on_ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    yield urls[0], grpc_addr
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_a_watchers_batches_through_the_aggregator_reach_the_desktop(
    up: tuple[str, str], settings: Settings, notification_server: NotificationServer
) -> None:
    """Done-when 4 over the real flow: DeskBatches → aggregator → bus → rules → gateway →
    run_notifications → session bus. Deep work shows and closes, context switching shows,
    idle shows and closes; the board lists what is active."""
    gateway, grpc_addr = up
    t0 = (time.time_ns() // 1_000_000 - 3 * 3_600_000) // 1000 * 1000  # three hours ago

    def at(s: int, kind: Any = SWITCH, **state: Any) -> Any:
        return event(t0 + s * 1000, kind, **state)

    code = {"workspace": "Code", "index": 0, "task": "Project X"}
    deep = [at(0, **code)] + [at(s, HEARTBEAT, **code, idle_ms=500) for s in range(10, 5411, 10)]
    names = ["Code", "Mail", "Web", "Chat"]
    # 12 changes: the first may find the interval already closed by the aggregator's silence
    # sweep (these events are hours old), which makes it a start rather than a change
    hops = [
        at(5410 + 10 * n, workspace=names[n % 4], index=n % 4, task="Project X")
        for n in range(1, 13)
    ]
    last = {"workspace": names[12 % 4], "index": 0, "task": "Project X"}
    idle = [at(5600, **last, idle=True, idle_ms=300_000)]
    idle += [
        at(s, HEARTBEAT, **last, idle=True, idle_ms=(s - 5300) * 1000)
        for s in range(5610, 7111, 10)
    ]
    back = [at(7120, **last)]
    async with notifications(settings, gateway):
        await send(grpc_addr, desk_batch(MACHINE, 1, deep, host="laptop"))
        await notification_server.wait_until(lambda s: len(s.received) == 1)
        await send(grpc_addr, desk_batch(MACHINE, 2, hops, host="laptop"))
        await notification_server.wait_until(lambda s: len(s.received) == 2 and s.closed)
        await send(grpc_addr, desk_batch(MACHINE, 3, idle, host="laptop"))
        await notification_server.wait_until(lambda s: len(s.received) == 3)
        await send(grpc_addr, desk_batch(MACHINE, 4, back, host="laptop"))
        await notification_server.wait_until(lambda s: len(s.closed) == 2)
        async with httpx.AsyncClient(base_url=gateway) as http:
            board = (await http.get("/api/v1/alerts")).json()["active"]

    deep_n, switching, away = notification_server.received
    assert (deep_n.summary, deep_n.body, deep_n.urgency) == (
        "Deep work",
        "Deep work on laptop: 90 min on Project X",
        1,
    )
    assert (switching.summary, switching.urgency) == ("Context switching", 1)
    assert switching.body == "Context switching on laptop: 11 switches in the last hour"
    assert (away.summary, away.body, away.urgency) == (
        "Away",
        "Idle on laptop: no input for 30 min",
        0,
    )
    assert notification_server.closed == [deep_n.id, away.id]
    assert notification_server.open == {switching.id}
    assert [(a["rule"], a["group"], a["severity"]) for a in board] == [
        ("context_switching", {"machine": MACHINE}, "warning")
    ]


def test_the_notifier_takes_the_machine_id_the_watcher_resolves(tmp_path: Path) -> None:
    explicit = load_settings({"data_dir": str(tmp_path), "deskmeter": {"machine_id": "m-9"}})
    assert machine_id(explicit) == "m-9"
    derived = load_settings({"data_dir": str(tmp_path)})
    spool = tmp_path / "spool" / "deskmeter"
    assert machine_id(derived) == resolve_machine(None, None, "UTC", spool).id
