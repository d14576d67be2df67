"""Where the watcher reads the desktop: the X11 event path, else the wmctrl poll, and idle
time from XScreenSaver on whichever X connection there is."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from sysmonstm.domains.deskmeter.desktop import DesktopSource, DesktopUnavailableError, IdleSource

log = structlog.get_logger(__name__)

SourceKind = Literal["auto", "x11", "wmctrl"]


@dataclass(frozen=True)
class Sources:
    """Where the watcher reads the desktop and the idle time; ``idle`` may be ``desktop``
    itself (one X connection) or a connection of its own beside the wmctrl poll."""

    desktop: DesktopSource
    idle: IdleSource | None = None
    separate_idle: bool = False

    def runs(self, changed: Callable[[], None]) -> list[Awaitable[None]]:
        out: list[Awaitable[None]] = [self.desktop.run(changed)]
        if self.idle is not None and self.separate_idle:
            out.append(self.idle.run(changed))
        return out

    def close(self) -> None:
        self.desktop.close()
        if self.idle is not None and self.separate_idle:
            self.idle.close()


def open_sources(source: SourceKind, display: str | None, poll_s: float) -> Sources:
    """The workspace and idle sources of ``display`` (default ``$DISPLAY``) for ``source``.

    ``auto`` takes the X11 event path and falls back to polling ``wmctrl -d`` when the
    display cannot be opened through python-xlib. Raises ``DesktopUnavailableError`` when
    nothing works.
    """
    from sysmonstm.domains.deskmeter.wmctrl import WmctrlDesktop
    from sysmonstm.domains.deskmeter.x11 import X11Session

    if not (display or os.environ.get("DISPLAY")):
        raise DesktopUnavailableError(
            "no X display: set $DISPLAY or pass --display (on GNOME/Wayland, the shell "
            "extension under integrations/ reports workspaces instead)"
        )
    if source != "wmctrl":
        try:
            x11 = X11Session(display)
        except DesktopUnavailableError as exc:
            if source == "x11":
                raise
            log.warning("X11 events unavailable; polling wmctrl", error=str(exc))
        else:
            return Sources(x11, x11 if x11.idle_available else None)
    desktop = WmctrlDesktop(display, poll_s)
    try:
        idle = X11Session(display, ewmh=False)
    except DesktopUnavailableError:
        return Sources(desktop)
    if not idle.idle_available:
        idle.close()
        return Sources(desktop)
    return Sources(desktop, idle, separate_idle=True)
