"""The current task of a machine as one line for a panel (waybar, polybar, a terminal), and
the stream of such lines as the machine switches, pushed by the gateway.

A ``Status`` is read from the gateway's ``/current`` answer or from a
``workspace.switch.<machine>`` payload. ``plain_line`` shows it as text; ``json_line`` as the
JSON object waybar's ``return-type = "json"`` (and polybar scripts) read: ``text`` (the task,
else the workspace), ``tooltip``, ``class`` (``active``, ``idle`` or ``off`` when nothing is
open), ``alt`` (the workspace).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sysmonstm.domains.deskmeter.humantime import local_datetime, zone_of
from sysmonstm.domains.deskmeter.payloads import switch_topic
from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.follow import follow


@dataclass(frozen=True, slots=True)
class Status:
    """What a machine is on now; ``workspace_index < 0`` means nothing is open."""

    machine: str
    host: str
    workspace_index: int
    workspace: str
    task: str
    idle: bool
    since_ms: int
    time_zone: str

    @property
    def off(self) -> bool:
        return self.workspace_index < 0

    @property
    def focus(self) -> str:
        """The task, else the workspace name, else its 1-based number."""
        return self.task or self.workspace or f"workspace {self.workspace_index + 1}"


def off_status(machine: str) -> Status:
    return Status(machine, "", -1, "", "", False, 0, "UTC")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def from_current(machine: str, answer: Mapping[str, Any]) -> Status:
    """The machine's status from a ``GET /current?machine=`` answer."""
    for iv in answer.get("current") or ():
        if isinstance(iv, Mapping) and iv.get("machine") == machine:
            return Status(
                machine,
                _str(iv.get("host")),
                _int(iv.get("workspace_index")),
                _str(iv.get("workspace")),
                _str(iv.get("task")),
                iv.get("idle") is True,
                _int(iv.get("start_ms")),
                _str(iv.get("time_zone")) or "UTC",
            )
    return off_status(machine)


def from_switch(payload: Mapping[str, Any]) -> Status | None:
    """The status a ``workspace.switch.<machine>`` payload announces (None if malformed)."""
    machine = payload.get("machine")
    if not isinstance(machine, str) or not isinstance(payload.get("workspace_index"), int):
        return None
    current = payload.get("current")
    start = current.get("start_ms") if isinstance(current, Mapping) else None
    return Status(
        machine,
        _str(payload.get("host")),
        _int(payload.get("workspace_index")),
        _str(payload.get("workspace")),
        _str(payload.get("task")),
        payload.get("idle") is True,
        _int(start, _int(payload.get("time_ms"))),
        _str(payload.get("time_zone")) or "UTC",
    )


def _since(status: Status) -> str:
    try:
        zone = zone_of(status.time_zone)
    except InvalidInputError:
        zone = zone_of("UTC")
    return local_datetime(status.since_ms, zone).strftime("%H:%M")


def plain_line(status: Status) -> str:
    """``Project X · Code`` (task · workspace), ``… (idle)`` while idle, ``-`` when off."""
    if status.off:
        return "-"
    parts = [p for p in (status.task, status.workspace) if p] or [status.focus]
    return " · ".join(parts) + (" (idle)" if status.idle else "")


def json_line(status: Status) -> str:
    """One waybar/polybar JSON object: ``text``, ``tooltip``, ``class``, ``alt``."""
    if status.off:
        body = {
            "text": "-",
            "tooltip": f"{status.machine}: nothing tracked now",
            "class": "off",
            "alt": "",
        }
    else:
        tooltip = (
            f"{status.task or 'no task'} on {status.workspace or status.focus} "
            f"since {_since(status)}" + (" (idle)" if status.idle else "")
        )
        body = {
            "text": status.focus,
            "tooltip": f"{tooltip}\n{status.host or status.machine}",
            "class": "idle" if status.idle else "active",
            "alt": status.workspace,
        }
    return json.dumps(body, ensure_ascii=False)


async def status_lines(
    gateway: str,
    machine: str,
    current: Callable[[], Awaitable[Status]],
    render: Callable[[Status], str],
) -> AsyncIterator[str]:
    """A line now and one on every change, for as long as the caller iterates.

    Switches arrive over the gateway's WebSocket; after each (re)connect the state is read
    again with ``current()`` (switches made while disconnected are not replayed). A line
    equal to the last one given is not repeated.
    """
    last: str | None = None
    async for message in follow(gateway, [switch_topic(machine)]):
        status: Status | None
        if message.get("connected"):
            status = await current()
        else:
            payload = message.get("payload")
            status = from_switch(payload) if isinstance(payload, Mapping) else None
            if status is None or status.machine != machine:
                continue
        line = render(status)
        if line != last:
            last = line
            yield line
