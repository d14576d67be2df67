"""The X11 source on a real X server (Xvfb + openbox): EWMH desktops, events, idle time."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sysmonstm.domains.deskmeter.desktop import Desktop, DesktopUnavailableError
from sysmonstm.domains.deskmeter.x11 import X11Session, split_names
from tests.deskmeter.xserver import XServer, x_server

SWITCH_DEADLINE_S = 1.0  # issue 4: a switch is visible within 1 s


@pytest.fixture
def xserver(tmp_path: Path) -> Iterator[XServer]:
    with x_server(tmp_path / "x") as server:
        yield server


@contextlib.asynccontextmanager
async def following(session: X11Session) -> AsyncIterator[asyncio.Queue[float]]:
    """Run ``session`` on this loop; the queue gets the monotonic time of each ``changed()``."""
    changes: asyncio.Queue[float] = asyncio.Queue()
    task = asyncio.create_task(session.run(lambda: changes.put_nowait(time.monotonic())))
    try:
        await asyncio.sleep(0)
        yield changes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        session.close()


@pytest.mark.parametrize(
    ("raw", "count", "names"),
    [
        (b"Code\0Mail\0", None, ("Code", "Mail")),
        (b"Code\0Mail", None, ("Code", "Mail")),
        (b"Code\0", 3, ("Code", "", "")),
        (b"A\0B\0C\0", 2, ("A", "B")),
        (b"", 2, ("", "")),
        (None, None, ()),
        ("Caf\xc3\xa9\0".encode("latin-1"), None, ("Café",)),
        (b"\xff\0ok\0", None, ("\ufffd", "ok")),
    ],
    ids=["terminated", "unterminated", "padded", "cut", "empty", "absent", "utf8", "bad-utf8"],
)
def test_desktop_names_split_on_nul_as_utf8(
    raw: bytes | None, count: int | None, names: tuple[str, ...]
) -> None:
    assert split_names(raw, count) == names


def test_the_session_reads_the_current_desktop_and_every_name(xserver: XServer) -> None:
    session = X11Session(xserver.display)
    try:
        assert session.desktop == Desktop(0, "Code")
        assert session.names() == ("Code", "Mail", "Web", "Chat")
        assert session.idle_available
    finally:
        session.close()


async def test_a_wmctrl_switch_is_detected_through_property_notify(xserver: XServer) -> None:
    """Each ``wmctrl -s`` wakes the session by an X event; the latency is printed."""
    session = X11Session(xserver.display)
    latencies = []
    async with following(session) as changes:
        for index in (2, 1, 3, 0):
            started = time.monotonic()
            await asyncio.to_thread(xserver.switch, index)
            async with asyncio.timeout(SWITCH_DEADLINE_S):
                seen = await changes.get()
            while session.desktop.index != index:  # openbox may publish in two steps
                async with asyncio.timeout(SWITCH_DEADLINE_S):
                    seen = await changes.get()
            assert session.desktop == Desktop(index, xserver.names[index])
            latencies.append((seen - started) * 1000)
    print(
        "x11 switch detection latency (wmctrl -s start → PropertyNotify handled), ms: "
        + ", ".join(f"{ms:.1f}" for ms in latencies)
    )


async def test_non_ascii_desktop_names_come_through(tmp_path: Path) -> None:
    names = ("Código", "Mail ✉", "网页", "Chat 💬")
    with x_server(tmp_path / "x", names) as xserver:
        session = X11Session(xserver.display)
        async with following(session) as changes:
            assert session.names() == names
            await asyncio.to_thread(xserver.switch, 2)
            async with asyncio.timeout(SWITCH_DEADLINE_S):
                while session.desktop.index != 2:
                    await changes.get()
            assert session.desktop == Desktop(2, "网页")


async def test_renaming_the_current_desktop_is_a_change(xserver: XServer) -> None:
    session = X11Session(xserver.display)
    async with following(session) as changes:
        await asyncio.to_thread(xserver.set_names, ("Deep work", "Mail", "Web", "Chat"))
        async with asyncio.timeout(SWITCH_DEADLINE_S):
            while session.desktop.name != "Deep work":
                await changes.get()
        assert session.desktop == Desktop(0, "Deep work")


async def test_idle_time_grows_without_input_and_resets_on_input(xserver: XServer) -> None:
    session = X11Session(xserver.display)
    try:
        first = session.idle_ms()
        await asyncio.sleep(0.3)
        later = session.idle_ms()
        assert later > first
        await asyncio.to_thread(xserver.touch)
        assert session.idle_ms() < later
    finally:
        session.close()


async def test_while_watched_the_first_input_wakes_the_session_once(xserver: XServer) -> None:
    session = X11Session(xserver.display)
    async with following(session) as changes:
        session.watch_input(True)
        await asyncio.to_thread(xserver.touch)
        async with asyncio.timeout(SWITCH_DEADLINE_S):
            await changes.get()
        await asyncio.to_thread(xserver.touch)  # deselected after the first: no more wakes
        await asyncio.to_thread(xserver.switch, 1)  # a later event proves the queue is read
        async with asyncio.timeout(SWITCH_DEADLINE_S):
            await changes.get()
        assert session.desktop.index == 1
        assert changes.empty()


async def test_losing_the_x_server_ends_run_with_a_clear_error(xserver: XServer) -> None:
    session = X11Session(xserver.display)
    task = asyncio.create_task(session.run(lambda: None))
    await asyncio.sleep(0.05)
    xserver.xvfb.send_signal(signal.SIGKILL)
    with pytest.raises(DesktopUnavailableError, match="connection lost"):
        async with asyncio.timeout(10):
            await task
    session.close()


def test_a_display_that_does_not_exist_is_refused() -> None:
    with pytest.raises(DesktopUnavailableError, match="cannot open X display"):
        X11Session(":4095")
