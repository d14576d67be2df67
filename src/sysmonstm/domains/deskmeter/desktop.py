"""What the watcher reads from a desktop session, whichever way it is read (X11 or wmctrl).

A ``DesktopSource`` knows the current workspace and wakes the watcher when it changes; an
``IdleSource`` knows how long the person has not touched keyboard or mouse and, on request,
wakes the watcher at the first input (so coming back from idle needs no polling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sysmonstm.errors import SysmonstmError


@dataclass(frozen=True, slots=True)
class Desktop:
    """The current workspace: its 0-based index and its name ("" when it has none)."""

    index: int
    name: str


#: no window manager has said which workspace is current (yet)
UNKNOWN = Desktop(-1, "")


class DesktopUnavailableError(SysmonstmError):
    """The desktop session cannot be read this way (no display, no window manager support,
    a missing tool) or stopped being readable (the X server went away)."""


class DesktopSource(Protocol):
    """The current workspace of one desktop session."""

    kind: str  # "x11" or "wmctrl", for logs

    @property
    def desktop(self) -> Desktop:
        """The workspace as last read; ``UNKNOWN`` until a window manager tells."""
        ...

    async def run(self, changed: Callable[[], None]) -> None:
        """Follow the session until cancelled, calling ``changed()`` after every change of
        ``desktop`` (and, for an ``IdleSource`` too, at input while watched). Raises
        ``DesktopUnavailableError`` when the session goes away."""
        ...

    def close(self) -> None: ...


class IdleSource(Protocol):
    """Input idleness of one desktop session."""

    def idle_ms(self) -> int:
        """Milliseconds since the last keyboard or mouse input."""
        ...

    def watch_input(self, on: bool) -> None:
        """While on, the next input calls the ``changed`` callback given to ``run``."""
        ...

    async def run(self, changed: Callable[[], None]) -> None: ...

    def close(self) -> None: ...
