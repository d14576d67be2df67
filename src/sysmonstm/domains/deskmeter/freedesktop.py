"""The freedesktop notification service (org.freedesktop.Notifications) on the session bus.

``Notifications`` is a small client: ``notify`` shows or replaces a notification, ``close``
takes one down. It connects on first use to the session bus named by
``DBUS_SESSION_BUS_ADDRESS`` (or the address given) and reconnects on the next call after
the bus went away. Every failure — no bus, the connection lost, no notification service,
an error reply, no reply within ``timeout_s`` — is raised as ``NotificationsUnavailableError``
and leaves the client ready to reconnect. ``generation`` grows with each new connection:
notification ids belong to the connection (the daemon) that issued them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from sysmonstm.errors import SysmonstmError

log = structlog.get_logger(__name__)

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"

URGENCY_LOW, URGENCY_NORMAL, URGENCY_CRITICAL = 0, 1, 2


class NotificationsUnavailableError(SysmonstmError):
    """The notification service could not be reached or refused the call."""


class Notifications:
    """A reconnecting client of the session's notification service (see the module doc)."""

    def __init__(
        self, address: str | None = None, *, app_name: str = "Deskmeter", timeout_s: float = 5.0
    ) -> None:
        self.address = address
        self.app_name = app_name
        self.timeout_s = timeout_s
        self.generation = 0
        self._bus: MessageBus | None = None

    async def notify(
        self,
        summary: str,
        body: str,
        *,
        urgency: int = URGENCY_NORMAL,
        icon: str = "",
        replaces_id: int = 0,
        expire_ms: int = -1,
    ) -> int:
        """Show a notification (replacing ``replaces_id`` when not 0); its id."""
        hints = {"urgency": Variant("y", urgency)}
        reply = await self._call(
            "Notify",
            "susssasa{sv}i",
            [self.app_name, replaces_id, icon, summary, body, [], hints, expire_ms],
        )
        notification_id = reply[0]
        if not isinstance(notification_id, int):
            raise NotificationsUnavailableError(f"Notify answered {reply!r}, not an id")
        return notification_id

    async def close(self, notification_id: int) -> None:
        """Take notification ``notification_id`` down (one already gone is no error)."""
        with contextlib.suppress(_AlreadyGoneError):
            await self._call("CloseNotification", "u", [notification_id])

    async def ready(self) -> int:
        """Connect unless connected; the connection's ``generation``."""
        await self._connect()
        return self.generation

    async def aclose(self) -> None:
        """Disconnect (the next call connects again)."""
        await self._drop()

    async def _connect(self) -> MessageBus:
        if self._bus is not None and self._bus.connected:
            return self._bus
        await self._drop()
        try:
            async with asyncio.timeout(self.timeout_s):
                bus = await MessageBus(bus_address=self.address, bus_type=BusType.SESSION).connect()
        except Exception as exc:
            raise NotificationsUnavailableError(f"no session bus: {_describe(exc)}") from exc
        self._bus = bus
        self.generation += 1
        log.info("session bus connected", generation=self.generation)
        return bus

    async def _call(self, member: str, signature: str, body: list[Any]) -> list[Any]:
        bus = await self._connect()
        message = Message(
            destination=SERVICE,
            path=PATH,
            interface=INTERFACE,
            member=member,
            signature=signature,
            body=body,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await bus.call(message)
        except Exception as exc:
            await self._drop()
            raise NotificationsUnavailableError(f"{member} failed: {_describe(exc)}") from exc
        if reply.message_type is MessageType.ERROR:
            text = f"{reply.error_name}: {reply.body[0] if reply.body else ''}"
            if member == "CloseNotification":
                raise _AlreadyGoneError(text)  # the spec answers an unknown id with an error
            raise NotificationsUnavailableError(f"{member} refused: {text}")
        return list(reply.body)

    async def _drop(self) -> None:
        bus, self._bus = self._bus, None
        if bus is None:
            return
        bus.disconnect()
        # Awaited so the library's disconnect future never holds an unretrieved error.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout_s):
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


class _AlreadyGoneError(NotificationsUnavailableError):
    """CloseNotification of an id the service no longer knows."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
