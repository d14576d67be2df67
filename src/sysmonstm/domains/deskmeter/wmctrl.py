"""The fallback: ask ``wmctrl -d`` for the current workspace every ``poll_s`` seconds.

Used where the X11 event path cannot be set up (python-xlib cannot open the display) or on
request. ``wmctrl -d`` prints one line per desktop, the current one marked ``*``::

    0  * DG: 1024x768  VP: 0,0  WA: 0,0 1024x768  Code
    1  - DG: 1024x768  VP: N/A  WA: N/A  Mail

A switch is seen up to ``poll_s`` late. A failing ``wmctrl`` (no display, no window manager)
is logged once per outage and tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable

import structlog

from sysmonstm.domains.deskmeter.desktop import UNKNOWN, Desktop, DesktopUnavailableError

log = structlog.get_logger(__name__)

# index, mark, then the DG/VP/WA fields (WA is "x,y wxh" or "N/A"), then the name
_LINE = re.compile(
    r"^(?P<index>\d+)\s+(?P<mark>[*-])\s+DG:\s+\S+\s+VP:\s+\S+\s+WA:\s+(?:N/A|\S+\s+\S+)"
    r"(?:\s\s(?P<name>.*))?$"
)
_TIMEOUT_S = 5.0


def parse_current(text: str) -> Desktop:
    """The desktop ``wmctrl -d`` marks current, or ``UNKNOWN`` when none is marked."""
    for line in text.splitlines():
        m = _LINE.match(line.rstrip("\n"))
        if m and m["mark"] == "*":
            return Desktop(int(m["index"]), (m["name"] or "").strip())
    return UNKNOWN


class WmctrlDesktop:
    """The current workspace, polled from ``wmctrl -d`` on ``display`` (default $DISPLAY)."""

    kind = "wmctrl"

    def __init__(self, display: str | None = None, poll_s: float = 2.0) -> None:
        exe = shutil.which("wmctrl")
        if exe is None:
            raise DesktopUnavailableError("wmctrl is not installed")
        self._exe = exe
        self._env = dict(os.environ)
        if display:
            self._env["DISPLAY"] = display
        self.poll_s = poll_s
        self._desktop = UNKNOWN
        self._failing = False

    @property
    def desktop(self) -> Desktop:
        return self._desktop

    async def read(self) -> Desktop:
        """Run ``wmctrl -d`` once; the desktop it marks (``UNKNOWN`` when it fails)."""
        proc = await asyncio.create_subprocess_exec(
            self._exe,
            "-u",  # names as UTF-8 whatever the locale
            "-d",
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            out, err = b"", b"wmctrl did not answer"
        desktop = parse_current(out.decode("utf-8", "replace")) if proc.returncode == 0 else UNKNOWN
        if desktop == UNKNOWN and not self._failing:
            self._failing = True
            log.warning(
                "wmctrl -d reports no current desktop",
                code=proc.returncode,
                error=err.decode("utf-8", "replace").strip(),
            )
        elif desktop != UNKNOWN and self._failing:
            self._failing = False
            log.info("wmctrl -d reports desktops again")
        return desktop

    async def run(self, changed: Callable[[], None]) -> None:
        """Poll until cancelled; ``changed()`` after each change (a failed read keeps the
        last desktop known, so a hiccup is not a switch)."""
        while True:
            desktop = await self.read()
            if desktop not in (UNKNOWN, self._desktop):
                self._desktop = desktop
                changed()
            await asyncio.sleep(self.poll_s)

    def close(self) -> None:
        """Nothing is held between polls."""
