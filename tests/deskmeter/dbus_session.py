"""A private D-Bus session bus started by the test, and a notification service on it.

``SessionBus`` runs ``dbus-daemon --session --print-address`` on a socket of its own (a fixed
path, so a test can stop the bus and start it again at the same address, as a desktop
session restarting its bus would). ``NotificationServer`` implements
org.freedesktop.Notifications with dbus-fast's ``ServiceInterface`` and records what it
receives. Fixtures: ``session_bus`` (also exported as ``DBUS_SESSION_BUS_ADDRESS``) and
``notification_server`` (a server on it).
"""

# No ``from __future__ import annotations``: dbus-fast reads the method annotations, and a
# postponed ``-> None`` would reach it as the string "None".
import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
from dbus_fast import DBusError, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusDict, DBusInt32, DBusSignature, DBusStr, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

StrList = Annotated[list[str], DBusSignature("as")]
ServerInfo = Annotated[tuple[str, str, str, str], DBusSignature("ssss")]
NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class SessionBus:
    """One ``dbus-daemon --session`` process listening on ``socket``."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.address = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start the daemon; its address once it listens."""
        self.socket.unlink(missing_ok=True)
        self._proc = subprocess.Popen(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--print-address",
                f"--address=unix:path={self.socket}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()  # printed once it listens
        if not line:
            raise RuntimeError(f"dbus-daemon did not start ({self._proc.wait(5)})")
        self.address = line
        return line

    def stop(self) -> None:
        """Stop the daemon (every connection to it breaks)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None


@dataclass(frozen=True)
class Received:
    """One Notify call as the service received it, and the id it answered."""

    app_name: str
    replaces_id: int
    icon: str
    summary: str
    body: str
    hints: dict[str, Any]
    expire_timeout: int
    id: int

    @property
    def urgency(self) -> int | None:
        return self.hints.get("urgency")


class NotificationServer(ServiceInterface):
    """org.freedesktop.Notifications, recording every call (ids count from 1). Methods are
    named as the spec names them; ``CloseNotification`` of an unknown id answers an error,
    as the spec asks."""

    def __init__(self) -> None:
        super().__init__(NAME)
        self.received: list[Received] = []
        self.closed: list[int] = []
        self.open: set[int] = set()
        self._next = 1
        self._changed = asyncio.Event()
        self.bus: MessageBus | None = None

    @dbus_method()
    def Notify(
        self,
        app_name: DBusStr,
        replaces_id: DBusUInt32,
        app_icon: DBusStr,
        summary: DBusStr,
        body: DBusStr,
        actions: StrList,
        hints: DBusDict,
        expire_timeout: DBusInt32,
    ) -> DBusUInt32:
        if replaces_id in self.open:
            nid = replaces_id
        else:
            nid, self._next = self._next, self._next + 1
        self.open.add(nid)
        plain = {k: v.value if isinstance(v, Variant) else v for k, v in hints.items()}
        self.received.append(
            Received(app_name, replaces_id, app_icon, summary, body, plain, expire_timeout, nid)
        )
        self._changed.set()
        return nid

    @dbus_method()
    def CloseNotification(self, id: DBusUInt32) -> None:
        if id not in self.open:
            raise DBusError(f"{NAME}.Error.NotFound", f"no notification {id}")
        self.open.discard(id)
        self.closed.append(id)
        self._changed.set()

    @dbus_method()
    def GetCapabilities(self) -> StrList:
        return ["body"]

    @dbus_method()
    def GetServerInformation(self) -> ServerInfo:
        return ("test-notifications", "sysmonstm", "1", "1.2")

    async def wait_until(
        self,
        predicate: Callable[["NotificationServer"], bool],
        timeout: float = 10.0,
    ) -> None:
        """Wait until ``predicate(self)`` holds."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


async def serve_notifications(address: str) -> NotificationServer:
    """A ``NotificationServer`` owning the well-known name on the bus at ``address``."""
    server = NotificationServer()
    bus = await MessageBus(bus_address=address).connect()
    bus.export(PATH, server)
    await bus.request_name(NAME)
    server.bus = bus
    return server


async def stop_serving(server: NotificationServer) -> None:
    if server.bus is not None and server.bus.connected:
        server.bus.disconnect()
        await server.bus.wait_for_disconnect()


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionBus]:
    """A session bus of this test, named by ``DBUS_SESSION_BUS_ADDRESS``."""
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is missing: run `make system`")
    folder = Path(tempfile.mkdtemp(prefix="dbus-", dir="/tmp"))  # socket paths are short
    bus = SessionBus(folder / "bus")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.start())
    yield bus
    bus.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def notification_server(session_bus: SessionBus) -> AsyncIterator[NotificationServer]:
    """The test's notification service on ``session_bus``."""
    server = await serve_notifications(session_bus.address)
    yield server
    await stop_serving(server)
