"""The watcher: its decisions (``Tracker``) and whole runs on a real X server into a real gRPC
peer (switches at once, heartbeats, idle, tasks from the gateway, spool and replay)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog

from sysmonstm.config import load_settings
from sysmonstm.domains.deskmeter import x11
from sysmonstm.domains.deskmeter.desktop import Desktop, DesktopUnavailableError
from sysmonstm.domains.deskmeter.machine import local_time_zone, resolve_machine, valid_zone
from sysmonstm.domains.deskmeter.model import EventKind
from sysmonstm.domains.deskmeter.sources import open_sources
from sysmonstm.domains.deskmeter.taskfeed import CurrentTask, task_topic
from sysmonstm.domains.deskmeter.tracker import Tracker
from sysmonstm.domains.deskmeter.watcher import WatchOptions, run_watcher
from sysmonstm.errors import ConfigError
from sysmonstm.runtime import Core
from sysmonstm.v1.deskmeter_pb2 import DeskEvent
from tests.deskmeter.desk_peer import DeskPeer, eventually
from tests.deskmeter.xserver import XServer, x_server
from tests.gateway.support import served

SWITCH_DEADLINE_S = 1.0  # issue 4: a switch is visible within 1 s
T0 = 1_796_400_000_000
CODE, WEB = Desktop(0, "Code"), Desktop(2, "Web")


# -- the decisions ---------------------------------------------------------------------------


def tracker() -> Tracker:
    return Tracker(heartbeat_ms=10_000, idle_after_ms=300_000, time_zone="Europe/Berlin")


def test_the_first_observation_is_a_switch_and_nothing_follows_until_a_heartbeat() -> None:
    t = tracker()
    first = t.observe(CODE, "", 0, T0)
    assert first is not None
    assert (first.kind, first.time_ms, first.workspace, first.workspace_index) == (
        EventKind.SWITCH,
        T0,
        "Code",
        0,
    )
    assert first.time_zone == "Europe/Berlin"
    assert t.observe(CODE, "", 10, T0 + 9_999) is None
    beat = t.observe(CODE, "", 20, T0 + 10_000)
    assert beat is not None
    assert (beat.kind, beat.time_ms, beat.idle_ms) == (EventKind.HEARTBEAT, T0 + 10_000, 20)


@pytest.mark.parametrize(
    ("desktop", "task", "idle_ms"),
    [(WEB, "", 0), (Desktop(0, "Renamed"), "", 0), (CODE, "Project X", 0), (CODE, "", 300_000)],
    ids=["workspace", "rename", "task", "idle"],
)
def test_any_change_of_workspace_task_or_idle_is_a_switch_at_once(
    desktop: Desktop, task: str, idle_ms: int
) -> None:
    t = tracker()
    t.observe(CODE, "", 0, T0)
    event = t.observe(desktop, task, idle_ms, T0 + 5)
    assert event is not None
    assert event.kind is EventKind.SWITCH
    assert (event.time_ms, event.workspace, event.task) == (T0 + 5, desktop.name, task)
    assert event.idle is (idle_ms >= 300_000)


def test_an_unknown_desktop_sends_nothing() -> None:
    t = tracker()
    assert t.observe(Desktop(-1, ""), "", 0, T0) is None
    assert t.wait_ms(0, T0) is None


def test_names_are_made_acceptable_to_the_aggregator() -> None:
    t = tracker()
    event = t.observe(Desktop(1, "Mail\tinbox\n"), "x" * 300, 0, T0)
    assert event is not None
    assert event.workspace == "Mail inbox "
    assert event.task == "x" * 256
    assert t.observe(Desktop(70_000, "Too far"), "", 0, T0 + 1) is None


def test_machine_identity_is_explicit_or_from_the_os_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    machine = resolve_machine("m-1", None, None, tmp_path)
    assert (machine.id, machine.host, machine.time_zone) == (
        "m-1",
        socket.gethostname(),
        "America/Sao_Paulo",
    )
    monkeypatch.setenv("TZ", "Nowhere/Special")
    assert resolve_machine("m-1", "desk", "UTC", tmp_path).time_zone == "UTC"
    assert valid_zone(local_time_zone())
    with pytest.raises(ConfigError, match="machine id"):
        resolve_machine("has space", None, None, tmp_path)


def test_event_times_never_go_back_when_the_clock_does() -> None:
    t = tracker()
    t.observe(CODE, "", 0, T0)
    event = t.observe(WEB, "", 0, T0 - 60_000)
    assert event is not None
    assert event.time_ms == T0


def test_the_wait_ends_at_the_next_heartbeat_or_at_the_idle_threshold() -> None:
    t = Tracker(heartbeat_ms=10_000, idle_after_ms=8_000, time_zone="UTC")
    t.observe(CODE, "", 0, T0)
    assert t.wait_ms(1_000, T0 + 1_000) == 7_000  # idle threshold first
    assert t.wait_ms(None, T0 + 1_000) == 9_000  # no idle source: the heartbeat
    t.observe(CODE, "", 8_000, T0 + 8_000)  # now idle
    assert t.idle
    assert t.wait_ms(9_000, T0 + 9_000) == 9_000  # idle: only the heartbeat is due


def test_a_clean_stop_closes_with_a_heartbeat_at_the_stop_time() -> None:
    t = tracker()
    assert t.closing(T0) is None  # nothing sent: nothing to close
    t.observe(WEB, "Project X", 0, T0)
    last = t.closing(T0 + 3_000)
    assert last is not None
    assert (last.kind, last.time_ms, last.workspace, last.task) == (
        EventKind.HEARTBEAT,
        T0 + 3_000,
        "Web",
        "Project X",
    )


def test_the_task_is_kept_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "task"
    current = CurrentTask(path)
    assert current.task == ""
    assert current.set("Project X")
    assert not current.set("Project X")
    assert CurrentTask(path).task == "Project X"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aggregators": ()}, "aggregator"),
        ({"heartbeat_s": 0.01}, "heartbeat_s"),
        ({"heartbeat_s": 7200}, "at most 3600"),
        ({"idle_after_s": float("nan")}, "idle_after_s"),
        ({"poll_s": 0}, "poll_s"),
        ({"source": "wayland"}, "source"),
        ({"spool_max_bytes": 0}, "spool_max_bytes"),
    ],
    ids=["no-aggregator", "heartbeat", "heartbeat-long", "idle-nan", "poll", "source", "spool"],
)
def test_options_that_cannot_work_are_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {"aggregators": ("127.0.0.1:1",), "spool_dir": tmp_path}
    with pytest.raises(ConfigError, match=message):
        WatchOptions(**{**base, **change})


async def test_an_unknown_time_zone_is_refused_before_anything_runs(tmp_path: Path) -> None:
    opts = WatchOptions(("127.0.0.1:1",), tmp_path / "spool", time_zone="Mars/Olympus")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        await run_watcher(opts, asyncio.Event())


# -- whole runs ------------------------------------------------------------------------------


@pytest.fixture
def xserver(tmp_path: Path) -> Iterator[XServer]:
    with x_server(tmp_path / "x") as server:
        yield server


@pytest.fixture
async def peer() -> AsyncIterator[DeskPeer]:
    p = await DeskPeer().start()
    yield p
    await p.stop()


def options(tmp_path: Path, xserver: XServer, peer: DeskPeer, **kw: Any) -> WatchOptions:
    base = WatchOptions(
        aggregators=(peer.address,),
        spool_dir=tmp_path / "spool",
        heartbeat_s=30.0,
        idle_after_s=300.0,
        display=xserver.display,
        machine_id="m-test",
        hostname="desk-test",
        time_zone="Europe/Berlin",
        stop_grace_s=2.0,
    )
    return replace(base, **kw)


@contextlib.asynccontextmanager
async def watching(opts: WatchOptions) -> AsyncIterator[asyncio.Task[None]]:
    """Run the watcher in the background; stop it and wait for it on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_watcher(opts, stop))
    try:
        yield task
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


async def switch_seen(xserver: XServer, peer: DeskPeer, index: int) -> DeskEvent:
    """Switch with ``wmctrl -s`` and wait (1 s at most) for the peer to store the switch."""
    before = len(peer.switches())
    await asyncio.to_thread(xserver.switch, index)
    await eventually(
        lambda: len(peer.switches()) > before and peer.switches()[-1].workspace_index == index,
        SWITCH_DEADLINE_S,
        f"switch to desktop {index} at the aggregator",
    )
    return peer.switches()[-1]


async def test_each_switch_reaches_the_aggregator_within_a_second(
    tmp_path: Path, xserver: XServer, peer: DeskPeer
) -> None:
    async with watching(options(tmp_path, xserver, peer)):
        await eventually(peer.switches, 10, "the first switch")
        for index in (2, 1, 3, 0):
            event = await switch_seen(xserver, peer, index)
            assert (event.workspace, event.task, event.idle) == (xserver.names[index], "", False)
    batches = [peer.stored[s] for s in sorted(peer.stored)]
    assert [b.events[0].workspace for b in batches if b.events[0].kind == DeskEvent.SWITCH] == [
        "Code",
        "Web",
        "Mail",
        "Chat",
        "Code",
    ]
    assert batches[-1].events[0].kind == DeskEvent.HEARTBEAT  # the clean stop's last word
    seqs = [b.sequence for b in batches]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for b in batches:
        assert (b.source.machine_id, b.source.hostname, b.heartbeat_ms) == (
            "m-test",
            "desk-test",
            30_000,
        )
        assert len(b.events) == 1
        assert b.events[0].time_zone == "Europe/Berlin"
    times = [b.events[0].time_unix_ms for b in batches]
    assert times == sorted(times)


async def test_heartbeats_follow_while_nothing_changes(
    tmp_path: Path, xserver: XServer, peer: DeskPeer
) -> None:
    async with watching(options(tmp_path, xserver, peer, heartbeat_s=0.2)):
        await eventually(lambda: len(peer.events()) >= 4, 10, "a switch and heartbeats")
    events = peer.events()
    assert events[0].kind == DeskEvent.SWITCH
    assert {e.kind for e in events[1:]} == {DeskEvent.HEARTBEAT}
    assert {(e.workspace_index, e.workspace) for e in events} == {(0, "Code")}
    # the last one is the clean stop's, sent whenever the stop came
    gaps = [b.time_unix_ms - a.time_unix_ms for a, b in itertools.pairwise(events[:-1])]
    assert all(gap >= 200 for gap in gaps)  # never more often than the period


async def test_idleness_is_a_switch_and_input_ends_it_within_a_second(
    tmp_path: Path, xserver: XServer, peer: DeskPeer
) -> None:
    async with watching(options(tmp_path, xserver, peer, idle_after_s=0.5)):
        await eventually(lambda: any(e.idle for e in peer.switches()), 10, "the idle switch")
        went_idle = peer.switches()[-1]
        assert went_idle.idle_ms >= 500
        await asyncio.to_thread(xserver.touch)
        await eventually(
            lambda: not peer.switches()[-1].idle, SWITCH_DEADLINE_S, "the switch back from idle"
        )
    assert [e.idle for e in peer.switches()][:3] == [False, True, False]


async def test_a_task_set_through_the_gateway_is_applied_with_a_switch_and_kept(
    tmp_path: Path, xserver: XServer, peer: DeskPeer
) -> None:
    settings = load_settings(
        {"data_dir": str(tmp_path / "gw"), "gateway": {"listen": "127.0.0.1:0"}}
    )
    core = await Core.open(settings)
    try:
        async with served(core) as url:
            opts = options(tmp_path, xserver, peer, gateway=url)
            with structlog.testing.capture_logs() as logs:
                async with watching(opts):
                    await eventually(peer.switches, 10, "the first switch")
                    await eventually(
                        lambda: any(e["event"] == "following task changes" for e in logs),
                        10,
                        "the watcher follows the gateway",
                    )
                    await core.bus.publish(
                        task_topic("m-other"),
                        {"machine": "m-other", "task": "Not mine"},
                        source="test",
                    )
                    await core.bus.publish(
                        task_topic("m-test"),
                        {"machine": "m-test", "task": "Project X", "time_ms": 0},
                        source="test",
                    )
                    await eventually(
                        lambda: peer.switches()[-1].task == "Project X",
                        SWITCH_DEADLINE_S,
                        "the task switch",
                    )
    finally:
        await core.close()
    assert [e.task for e in peer.switches()] == ["", "Project X"]
    restarted = DeskPeer()
    await restarted.start()
    try:
        async with watching(replace(opts, aggregators=(restarted.address,), gateway=None)):
            await eventually(restarted.switches, 10, "the first switch after restart")
        assert restarted.switches()[0].task == "Project X"
    finally:
        await restarted.stop()


async def test_switches_made_while_the_aggregator_is_away_arrive_in_order_once(
    tmp_path: Path, xserver: XServer
) -> None:
    away = DeskPeer()  # not started yet
    async with watching(options(tmp_path, xserver, away)):
        for index in (1, 2, 3):
            await asyncio.sleep(0.05)
            await asyncio.to_thread(xserver.switch, index)
        await eventually(
            lambda: any((tmp_path / "spool").glob("*.seg")) and _desk(xserver) == 3, 5, "spooled"
        )
        await asyncio.sleep(0.2)
        await away.start()
        await eventually(lambda: len(away.switches()) >= 4, 15, "the backlog delivered")
    try:
        assert [e.workspace for e in away.switches()] == ["Code", "Mail", "Web", "Chat"]
        assert len(away.stored) == len({b.sequence for b in away.received})
        assert len(away.received) < len(away.events())  # the backlog came merged
    finally:
        await away.stop()


def _desk(xserver: XServer) -> int:
    return xserver.current()


async def test_the_wmctrl_fallback_streams_switches_too(
    tmp_path: Path, xserver: XServer, peer: DeskPeer
) -> None:
    opts = options(tmp_path, xserver, peer, source="wmctrl", poll_s=0.1)
    async with watching(opts):
        await eventually(peer.switches, 10, "the first switch")
        before = len(peer.switches())
        await asyncio.to_thread(xserver.switch, 2)
        await eventually(
            lambda: len(peer.switches()) > before, SWITCH_DEADLINE_S + opts.poll_s, "the switch"
        )
    assert [(e.workspace_index, e.workspace) for e in peer.switches()] == [(0, "Code"), (2, "Web")]


def test_the_wmctrl_source_still_reads_idle_time_through_its_own_x_connection(
    xserver: XServer,
) -> None:
    sources = open_sources("wmctrl", xserver.display, 2.0)
    try:
        assert sources.desktop.kind == "wmctrl"
        assert sources.separate_idle
        assert sources.idle is not None
        assert sources.idle.idle_ms() >= 0
    finally:
        sources.close()


def test_auto_falls_back_to_wmctrl_when_python_xlib_cannot_connect(
    xserver: XServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise DesktopUnavailableError("python-xlib cannot connect")

    monkeypatch.setattr(x11, "X11Session", refuse)
    sources = open_sources("auto", xserver.display, 2.0)
    try:
        assert (sources.desktop.kind, sources.idle) == ("wmctrl", None)
    finally:
        sources.close()
    with pytest.raises(DesktopUnavailableError):
        open_sources("x11", xserver.display, 2.0)


async def test_losing_the_x_server_ends_the_watcher_with_an_error_after_a_last_heartbeat(
    tmp_path: Path, xserver: XServer, peer: DeskPeer
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_watcher(options(tmp_path, xserver, peer), stop))
    await eventually(peer.switches, 10, "the first switch")
    xserver.xvfb.kill()
    with pytest.raises(DesktopUnavailableError):
        async with asyncio.timeout(15):
            await task
    assert peer.events()[-1].kind == DeskEvent.HEARTBEAT
