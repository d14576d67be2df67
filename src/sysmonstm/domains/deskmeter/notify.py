"""Focus alerts of this machine as desktop notifications (freedesktop, over D-Bus).

``run_notifications(settings)`` follows the gateway's ``/ws`` for ``alerts.>`` and shows the
alerts of this machine's Deskmeter rules — those labelled ``domain = "deskmeter"`` whose
group's ``machine`` (or, ungrouped, whose key) is this machine's id — until cancelled:

- one notification per rule: a firing alert shows it (summary ``labels.title``, else the
  rule name; body the alert's message; urgency and icon from the severity), a new firing of
  the same rule replaces it in place (``replaces_id``) instead of piling up, and a resolved
  or cancelled alert closes it; ``pending`` shows nothing;
- after every (re)connect to the gateway the active alerts are read from
  ``GET /api/v1/alerts``, so what was resolved while away is closed and what fired is shown;
- the desktop follows what is wanted: when the session bus or the notification service is
  away, showing is retried with backoff, and after a reconnect to a new bus every wanted
  notification is shown again. The gateway and the bus may each come and go.

Transitions older than one already applied for the same alert are ignored, so a replay or
a straggler never re-opens a closed notification.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import structlog

from sysmonstm.config import Settings
from sysmonstm.domains.deskmeter.freedesktop import (
    URGENCY_CRITICAL,
    URGENCY_LOW,
    URGENCY_NORMAL,
    Notifications,
    NotificationsUnavailableError,
)
from sysmonstm.domains.deskmeter.model import DOMAIN
from sysmonstm.gateway.follow import follow
from sysmonstm.transport.source import resolve_machine_id

log = structlog.get_logger(__name__)

URGENCY = {"critical": URGENCY_CRITICAL, "warning": URGENCY_NORMAL, "success": URGENCY_NORMAL}
ICON = {
    "critical": "dialog-error",
    "warning": "dialog-warning",
    "info": "dialog-information",
    "success": "emblem-default",
}
_ENDED = frozenset({"resolved", "cancelled"})
_REMEMBERED = 10_000  # alert ids whose newest transition is kept (stragglers refused)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A notification the desktop should show for one firing alert."""

    alert_id: str
    time_ms: int  # of the firing transition
    summary: str
    body: str
    urgency: int
    icon: str


@dataclass(frozen=True, slots=True)
class Shown:
    """What the desktop shows for a rule, and which bus connection issued its id."""

    wanted: Wanted
    notification_id: int
    generation: int


def wanted_of(alert: dict[str, Any]) -> Wanted:
    """The notification for a firing alert payload (see ``AlertEvent.to_payload``)."""
    labels = alert.get("labels") or {}
    severity = str(alert.get("severity"))
    t = alert.get("time_ms")
    return Wanted(
        alert_id=str(alert["id"]),
        time_ms=t if isinstance(t, int) else 0,
        summary=str(labels.get("title") or alert.get("rule")),
        body=str(alert.get("message") or ""),
        urgency=URGENCY.get(severity, URGENCY_LOW),
        icon=ICON.get(severity, ""),
    )


class AlertNotifier:
    """Keeps the desktop's notifications equal to this machine's firing Deskmeter alerts.

    ``take`` and ``reset`` change what is wanted (cheap, no I/O); ``reconcile`` makes the
    desktop show it; ``show_forever`` reconciles on every change, retrying with backoff.
    """

    def __init__(self, machine: str, desktop: Notifications) -> None:
        self.machine = machine
        self.desktop = desktop
        self.wanted: dict[str, Wanted] = {}  # by rule
        self.shown: dict[str, Shown] = {}  # by rule
        self.changed = asyncio.Event()
        self._newest: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def mine(self, alert: Any) -> bool:
        """Whether ``alert`` is a transition of one of this machine's Deskmeter rules."""
        if not isinstance(alert, dict) or not isinstance(alert.get("id"), str):
            return False
        labels, group = alert.get("labels"), alert.get("group")
        if not isinstance(labels, dict) or labels.get("domain") != DOMAIN:
            return False
        if isinstance(group, dict) and "machine" in group:
            return bool(group["machine"] == self.machine)
        return bool(alert.get("key") == self.machine)

    def _fresh(self, alert: dict[str, Any]) -> bool:
        """Whether ``alert`` is newer than every transition of its instance seen so far
        (at equal times an end beats a start)."""
        t = alert.get("time_ms")
        stamp = (t if isinstance(t, int) else 0, 1 if alert.get("state") in _ENDED else 0)
        aid = alert["id"]
        if aid in self._newest and stamp < self._newest[aid]:
            return False
        self._newest[aid] = stamp
        self._newest.move_to_end(aid)
        while len(self._newest) > _REMEMBERED:
            self._newest.popitem(last=False)
        return True

    def take(self, alert: Any) -> None:
        """Apply one pushed transition (others' alerts and stale ones are ignored)."""
        if not self.mine(alert) or not self._fresh(alert):
            return
        rule = str(alert.get("rule"))
        state = alert.get("state")
        if state == "firing":
            wanted, current = wanted_of(alert), self.wanted.get(rule)
            if current is None or current.time_ms <= wanted.time_ms:  # else an older instance
                self._want(rule, wanted)
        elif state in _ENDED:
            current = self.wanted.get(rule)
            if current is not None and current.alert_id == alert["id"]:
                del self.wanted[rule]
                self.changed.set()

    def reset(self, active: list[Any]) -> None:
        """Replace what is wanted by the board's active alerts (after a reconnect)."""
        firing = {}
        for alert in active:
            if self.mine(alert) and alert.get("state") == "firing" and self._fresh(alert):
                firing[str(alert.get("rule"))] = wanted_of(alert)
        for rule in set(self.wanted) - set(firing):
            del self.wanted[rule]
            self.changed.set()
        for rule, wanted in firing.items():
            self._want(rule, wanted)

    def _want(self, rule: str, wanted: Wanted) -> None:
        if self.wanted.get(rule) != wanted:
            self.wanted[rule] = wanted
            self.changed.set()

    async def reconcile(self) -> None:
        """Show what is wanted and close what is not; ``NotificationsUnavailableError`` when the
        desktop cannot be reached (what was done so far is kept)."""
        generation = await self.desktop.ready()
        for rule, wanted in list(self.wanted.items()):
            shown = self.shown.get(rule)
            if shown is not None and shown.generation != generation:
                shown = None  # issued by a bus that is gone: nothing to replace
            if shown is not None and shown.wanted == wanted:
                continue
            replaces = shown.notification_id if shown is not None else 0
            notification_id = await self.desktop.notify(
                wanted.summary,
                wanted.body,
                urgency=wanted.urgency,
                icon=wanted.icon,
                replaces_id=replaces,
            )
            self.shown[rule] = Shown(wanted, notification_id, generation)
            log.info("notification shown", rule=rule, alert=wanted.alert_id, id=notification_id)
        for rule in [r for r in self.shown if r not in self.wanted]:
            shown = self.shown[rule]
            if shown.generation == generation:  # an older bus took its notifications along
                await self.desktop.close(shown.notification_id)
                log.info("notification closed", rule=rule, id=shown.notification_id)
            del self.shown[rule]

    async def show_forever(
        self, backoff_initial_s: float = 0.2, backoff_max_s: float = 10.0
    ) -> None:
        """Reconcile after every change, retrying with backoff while the desktop is away."""
        delay = backoff_initial_s
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                await self.reconcile()
            except NotificationsUnavailableError as exc:
                log.info("desktop notifications unavailable, retrying", error=str(exc))
                self.changed.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff_max_s)
            else:
                delay = backoff_initial_s

    async def follow_gateway(self, gateway: str) -> None:
        """Take alerts pushed by ``gateway``; re-read the active ones on every connect."""
        async for message in follow(gateway, ["alerts.>"]):
            if message.get("connected"):
                try:
                    self.reset(await active_alerts(gateway))
                except (OSError, ValueError) as exc:
                    log.warning("could not read the active alerts", error=str(exc))
            else:
                self.take(message.get("payload"))


def _http_base(gateway: str) -> str:
    return (gateway if "://" in gateway else f"http://{gateway}").rstrip("/")


async def active_alerts(gateway: str, timeout_s: float = 5.0) -> list[Any]:
    """The gateway's active alerts (``GET /api/v1/alerts``); ``OSError``/``ValueError``."""
    url = f"{_http_base(gateway)}/api/v1/alerts?history_limit=0"

    def get() -> Any:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
            return json.load(response)

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"gateway {gateway!r}: expected an http(s) URL")
    body = await asyncio.to_thread(get)
    active = body.get("active") if isinstance(body, dict) else None
    if not isinstance(active, list):
        raise ValueError("GET /api/v1/alerts answered without an 'active' list")  # noqa: TRY004
    return active


def machine_id(settings: Settings) -> str:
    """This machine's id, as the watcher resolves it."""
    d = settings.deskmeter
    spool_dir = d.spool_dir or settings.data_dir / "spool" / "deskmeter"
    return resolve_machine_id(d.machine_id, spool_dir)


async def run_notifications(settings: Settings) -> None:
    """Show this machine's focus alerts as desktop notifications until cancelled."""
    notifier = AlertNotifier(machine_id(settings), Notifications())
    log.info(
        "desktop notifications on", machine=notifier.machine, gateway=settings.deskmeter.gateway
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(notifier.follow_gateway(settings.deskmeter.gateway))
            tasks.create_task(notifier.show_forever())
    finally:
        await notifier.desktop.aclose()
