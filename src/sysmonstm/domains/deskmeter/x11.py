"""The desktop as an X11 window manager publishes it (EWMH), read through python-xlib.

The current workspace is ``_NET_CURRENT_DESKTOP`` on the root window, its name the entry of
``_NET_DESKTOP_NAMES`` (UTF8_STRING, NUL-separated) at that index, within
``_NET_NUMBER_OF_DESKTOPS``. The window manager rewrites those properties on every switch
or rename; we select PropertyNotify on the root window and put the display's socket on the
asyncio loop (``add_reader``), so a switch wakes us within the X server's round trip and
nothing polls. Idle time is the XScreenSaver extension's ``idle`` (ms since the last input);
while the person is idle, XInput 2.1 raw input events on the root wake us at the first key,
button or motion, and are deselected again once seen (no event stream while active).
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable

import structlog
from Xlib import X, Xatom
from Xlib import error as xerror
from Xlib.display import Display
from Xlib.ext import xinput
from Xlib.ext.ge import GenericEventCode

from sysmonstm.domains.deskmeter.desktop import UNKNOWN, Desktop, DesktopUnavailableError

log = structlog.get_logger(__name__)

_RAW_INPUT = xinput.RawKeyPressMask | xinput.RawButtonPressMask | xinput.RawMotionMask
_X_FAILURES = (xerror.DisplayError, xerror.ConnectionClosedError, xerror.XError, OSError)


def split_names(raw: bytes | str | None, count: int | None = None) -> tuple[str, ...]:
    """Workspace names from a ``_NET_DESKTOP_NAMES`` value (NUL-separated UTF-8, the last
    one NUL-terminated or not); padded with "" or cut to ``count`` when it is known."""
    if raw is None:
        names: list[str] = []
    else:
        data = raw.encode("latin-1") if isinstance(raw, str) else bytes(raw)
        if data.endswith(b"\0"):
            data = data[:-1]
        names = [part.decode("utf-8", "replace") for part in data.split(b"\0")] if data else []
    if count is not None:
        names = (names + [""] * count)[:count]
    return tuple(names)


class X11Session:
    """One connection to an X server: the EWMH workspace, idle time and input wake-ups.

    ``ewmh=False`` opens it for idle time only (beside the wmctrl fallback). Raises
    ``DesktopUnavailableError`` when the display cannot be opened. A window manager that has
    not (yet) published ``_NET_CURRENT_DESKTOP`` leaves ``desktop`` at ``UNKNOWN`` until it
    does: the property's creation is a PropertyNotify like any change.
    """

    kind = "x11"

    def __init__(self, display: str | None = None, *, ewmh: bool = True) -> None:
        with warnings.catch_warnings():
            # python-xlib leaves the socket of a failed attempt (its TCP fallback after a
            # missing unix socket) unclosed; it is freed with the error, quietly
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                self._d = Display(display)
                failure = ""
            except _X_FAILURES as exc:
                failure = str(exc) or type(exc).__name__
        if failure:
            raise DesktopUnavailableError(f"cannot open X display {display!r}: {failure}")
        try:
            self._root = self._d.screen().root
            self._current = self._d.intern_atom("_NET_CURRENT_DESKTOP")
            self._names = self._d.intern_atom("_NET_DESKTOP_NAMES")
            self._number = self._d.intern_atom("_NET_NUMBER_OF_DESKTOPS")
            self._ewmh = ewmh
            if ewmh:
                self._root.change_attributes(event_mask=X.PropertyChangeMask)
            self.idle_available = self._d.has_extension("MIT-SCREEN-SAVER")
            self._xi2 = self._xi2_version_ok()
            self._desktop = self._read_desktop() if ewmh else UNKNOWN
            self._d.flush()
        except _X_FAILURES as exc:
            self.close()
            raise DesktopUnavailableError(f"X display {display!r} failed: {exc}") from exc
        self._changed: Callable[[], None] | None = None
        self._failed: asyncio.Future[None] | None = None
        self._fd: int | None = None
        self._watching_input = False

    # -- reading ---------------------------------------------------------------------------

    @property
    def desktop(self) -> Desktop:
        return self._desktop

    def names(self) -> tuple[str, ...]:
        """Every workspace's name, one per desktop the window manager counts."""
        number = self._card(self._number)
        prop = self._root.get_full_property(self._names, X.AnyPropertyType)
        return split_names(None if prop is None else prop.value, number)

    def idle_ms(self) -> int:
        """Milliseconds since the last input (0 when the server lacks XScreenSaver)."""
        if not self.idle_available:
            return 0
        try:
            return int(self._root.screensaver_query_info().idle)
        except _X_FAILURES as exc:
            raise DesktopUnavailableError(f"X server connection lost: {exc}") from exc

    def watch_input(self, on: bool) -> None:
        """Select (or deselect) raw input on the root, so the next input calls ``changed``.

        Without XInput 2.1 nothing is selected; the watcher then notices the return from
        idle at its next heartbeat."""
        if not self._xi2 or on == self._watching_input:
            return
        self._watching_input = on
        try:
            self._root.xinput_select_events([(xinput.AllMasterDevices, _RAW_INPUT if on else 0)])
            self._d.flush()
        except _X_FAILURES as exc:
            raise DesktopUnavailableError(f"X server connection lost: {exc}") from exc

    # -- following -------------------------------------------------------------------------

    async def run(self, changed: Callable[[], None]) -> None:
        """Dispatch X events on the loop until cancelled; see ``DesktopSource.run``."""
        loop = asyncio.get_running_loop()
        self._changed = changed
        self._failed = loop.create_future()
        self._fd = fd = self._d.fileno()
        loop.add_reader(fd, self._on_readable)
        try:
            self._on_readable()  # anything queued by the requests made before we listened
            await self._failed
        finally:
            loop.remove_reader(fd)
            self._changed = None
            self._fd = None

    def close(self) -> None:
        with contextlib.suppress(*_X_FAILURES):
            self._d.close()
        # after a lost connection python-xlib's close() raises before closing the socket
        with contextlib.suppress(OSError, AttributeError):
            self._d.display.socket.close()

    # -- internals -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            self._dispatch()
        except (*_X_FAILURES, DesktopUnavailableError) as exc:
            log.error("X server connection lost", error=str(exc))
            if self._failed is not None and not self._failed.done():
                self._failed.set_exception(
                    exc
                    if isinstance(exc, DesktopUnavailableError)
                    else DesktopUnavailableError(f"X server connection lost: {exc}")
                )
                if self._fd is not None:  # a closed socket stays readable: stop the spin
                    asyncio.get_running_loop().remove_reader(self._fd)

    def _dispatch(self) -> None:
        # reading properties is a round trip that may queue further events without the
        # socket turning readable again, so drain until nothing is pending
        while True:
            dirty, touched = False, False
            while self._d.pending_events():
                event = self._d.next_event()
                if event.type == X.PropertyNotify and self._ewmh:
                    dirty |= event.atom in (self._current, self._names, self._number)
                elif event.type == GenericEventCode:
                    touched = True
            if not (dirty or touched):
                return
            notify = False
            if dirty and (desktop := self._read_desktop()) != self._desktop:
                self._desktop = desktop
                notify = True
            if touched and self._watching_input:
                self.watch_input(False)  # one wake-up is all the watcher needs
                notify = True
            if notify and self._changed is not None:
                self._changed()

    def _read_desktop(self) -> Desktop:
        index = self._card(self._current)
        if index is None:
            return UNKNOWN
        names = self.names()
        return Desktop(index, names[index] if index < len(names) else "")

    def _card(self, atom: int) -> int | None:
        prop = self._root.get_full_property(atom, Xatom.CARDINAL)
        if prop is None or not len(prop.value):
            return None
        return int(prop.value[0])

    def _xi2_version_ok(self) -> bool:
        if not self._d.has_extension(xinput.extname):
            return False
        # python-xlib's query_version asks for 2.0; raw events on the root need 2.1
        reply = xinput.XIQueryVersion(
            display=self._d.display,
            opcode=self._d.display.get_extension_major(xinput.extname),
            major_version=2,
            minor_version=2,
        )
        return (int(reply.major_version), int(reply.minor_version)) >= (2, 1)
