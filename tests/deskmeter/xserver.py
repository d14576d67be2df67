"""A real X server for Deskmeter tests: Xvfb on a free display plus openbox with named desktops.

``x_server(workdir, names)`` starts Xvfb with ``-displayfd`` (the server picks a free display
and tells us which), then openbox with an rc.xml that declares the desktops and their names,
and returns once ``wmctrl -d`` lists them all. Teardown stops openbox, then Xvfb, and waits
for both. Nothing of the developer's session is touched: openbox gets its own HOME.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

DEFAULT_NAMES = ("Code", "Mail", "Web", "Chat")
_START_TIMEOUT_S = 20.0

_RC_XML = """<?xml version="1.0" encoding="UTF-8"?>
<openbox_config xmlns="http://openbox.org/3.4/rc">
  <desktops>
    <number>{number}</number>
    <firstdesk>1</firstdesk>
    <names>{names}</names>
    <popupTime>0</popupTime>
  </desktops>
</openbox_config>
"""


@dataclass
class XServer:
    """A running X server with a window manager; helpers drive it as a person would."""

    display: str  # ":N"
    names: tuple[str, ...]
    env: dict[str, str]
    xvfb: subprocess.Popen[bytes]
    wm: subprocess.Popen[bytes]

    def run(self, *args: str) -> str:
        """Run an X client (wmctrl, xdotool, xprop) on this display; its stdout."""
        done = subprocess.run(args, env=self.env, capture_output=True, check=True, timeout=10)
        return done.stdout.decode("utf-8", "replace")

    def switch(self, index: int) -> None:
        """Make desktop ``index`` current, the way a user's key binding would (``wmctrl -s``)."""
        self.run("wmctrl", "-s", str(index))

    def current(self) -> int:
        """The current desktop as ``wmctrl -d`` reports it."""
        for line in self.run("wmctrl", "-u", "-d").splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1] == "*":
                return int(fields[0])
        raise AssertionError("wmctrl -d marks no desktop current")

    def set_names(self, names: tuple[str, ...]) -> None:
        """Rename the desktops as a pager would: rewrite ``_NET_DESKTOP_NAMES`` (UTF-8)."""
        from Xlib import X
        from Xlib.display import Display

        d = Display(self.display)
        try:
            root = d.screen().root
            value = b"".join(n.encode("utf-8") + b"\0" for n in names)
            root.change_property(
                d.intern_atom("_NET_DESKTOP_NAMES"),
                d.intern_atom("UTF8_STRING"),
                8,
                value,
                X.PropModeReplace,
            )
            d.sync()
        finally:
            d.close()

    def stop_window_manager(self) -> None:
        """End openbox and drop the property it kept, as a crashed window manager leaves the
        session: the X server stays, nobody says which desktop is current."""
        _stop(self.wm)
        self.run("xprop", "-root", "-remove", "_NET_CURRENT_DESKTOP")

    def touch(self) -> None:
        """Generate input (a key press), which resets the XScreenSaver idle time."""
        self.run("xdotool", "key", "shift")


def _read_display(fd: int, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + _START_TIMEOUT_S
    got = b""
    while not got.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"Xvfb did not report its display:\n{log.read_text()}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                raise AssertionError(f"Xvfb closed -displayfd:\n{log.read_text()}")
            got += chunk
    return f":{int(got.strip())}"


def _wait_for_desktops(server: XServer, ob: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if ob.poll() is not None:
            xlog = log.with_name("xvfb.log").read_text(errors="replace")
            raise AssertionError(f"openbox ended ({ob.returncode}):\n{log.read_text()}\n{xlog}")
        try:
            last = server.run("wmctrl", "-u", "-d")
        except subprocess.CalledProcessError as exc:
            last = exc.stderr.decode("utf-8", "replace")
        else:
            lines = last.splitlines()
            if len(lines) == len(server.names) and all(
                line.endswith(f"  {name}") for line, name in zip(lines, server.names, strict=True)
            ):
                return
        time.sleep(0.05)
    raise AssertionError(f"openbox did not publish the desktops:\n{last}\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def x_server(workdir: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> Iterator[XServer]:
    """Xvfb + openbox with ``names`` as desktops, the first one current."""
    workdir.mkdir(parents=True, exist_ok=True)
    xlog, oblog = workdir / "xvfb.log", workdir / "openbox.log"
    read_fd, write_fd = os.pipe()
    with xlog.open("wb") as out:
        xvfb = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
                # a server resets when its last client leaves, refusing whoever connects
                # meanwhile (openbox at start, when a stray client came and went first)
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    os.close(write_fd)
    ob: subprocess.Popen[bytes] | None = None
    try:
        display = _read_display(read_fd, xvfb, xlog)
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "DISPLAY": display,
            "LANG": "C.UTF-8",
        }
        rc = workdir / "rc.xml"
        rc.write_text(
            _RC_XML.format(
                number=len(names),
                names="".join(f"<name>{escape(n)}</name>" for n in names),
            ),
            encoding="utf-8",
        )
        with oblog.open("wb") as out:
            ob = subprocess.Popen(
                ["openbox", "--sm-disable", "--config-file", str(rc)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = XServer(display, tuple(names), env, xvfb, ob)
        _wait_for_desktops(server, ob, oblog)
        yield server
    finally:
        os.close(read_fd)
        if ob is not None:
            _stop(ob)
        _stop(xvfb)
