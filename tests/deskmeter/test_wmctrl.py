"""The wmctrl fallback: parsing ``wmctrl -d`` and polling it on a real X server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from sysmonstm.domains.deskmeter.desktop import UNKNOWN, Desktop
from sysmonstm.domains.deskmeter.wmctrl import WmctrlDesktop, parse_current
from tests.deskmeter.xserver import XServer, x_server

GEOMETRY = "DG: 1024x768  VP: 0,0  WA: 0,0 1024x768"


@pytest.fixture
def xserver(tmp_path: Path) -> Iterator[XServer]:
    with x_server(tmp_path / "x") as server:
        yield server


@pytest.mark.parametrize(
    ("text", "desktop"),
    [
        (f"0  - {GEOMETRY}  Code\n1  * {GEOMETRY}  Mail\n", Desktop(1, "Mail")),
        (f"0  * {GEOMETRY}  Deep work: the plan\n", Desktop(0, "Deep work: the plan")),
        (f"0  * {GEOMETRY}  Mail ✉\n", Desktop(0, "Mail ✉")),
        (
            "0  - DG: 1024x768  VP: N/A  WA: N/A           Code\n"
            "1  * DG: 1024x768  VP: N/A  WA: N/A           Web\n",
            Desktop(1, "Web"),
        ),
        (f"12 * {GEOMETRY}  \n", Desktop(12, "")),
        (f"0  - {GEOMETRY}  Code\n", UNKNOWN),
        ("Cannot get current desktop properties.\n", UNKNOWN),
        ("", UNKNOWN),
    ],
    ids=[
        "second",
        "spaces",
        "non-ascii",
        "no-workarea",
        "unnamed",
        "none-current",
        "error",
        "empty",
    ],
)
def test_the_current_desktop_is_the_line_marked_with_a_star(text: str, desktop: Desktop) -> None:
    assert parse_current(text) == desktop


async def test_polling_follows_switches(xserver: XServer) -> None:
    source = WmctrlDesktop(xserver.display, poll_s=0.1)
    changes: asyncio.Queue[Desktop] = asyncio.Queue()
    task = asyncio.create_task(source.run(lambda: changes.put_nowait(source.desktop)))
    try:
        async with asyncio.timeout(5):
            assert await changes.get() == Desktop(0, "Code")
        await asyncio.to_thread(xserver.switch, 3)
        async with asyncio.timeout(1 + source.poll_s):  # the 1 s, plus one poll
            assert await changes.get() == Desktop(3, "Chat")
        assert changes.empty()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failing_wmctrl_keeps_the_last_desktop_and_warns_once(
    xserver: XServer,
) -> None:
    source = WmctrlDesktop(xserver.display, poll_s=0.1)
    changes: asyncio.Queue[Desktop] = asyncio.Queue()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(source.run(lambda: changes.put_nowait(source.desktop)))
        try:
            async with asyncio.timeout(5):
                assert await changes.get() == Desktop(0, "Code")
            await asyncio.to_thread(xserver.stop_window_manager)
            await asyncio.sleep(0.6)  # a few polls, all failing
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    warnings = [e for e in logs if e["event"] == "wmctrl -d reports no current desktop"]
    assert len(warnings) == 1
    assert changes.empty()
    assert source.desktop == Desktop(0, "Code")
