"""The watcher's decisions, free of I/O and clocks: what to send given what the desktop shows.

The state is (workspace, task, idle). A change of any of them is a SWITCH at that instant;
``heartbeat_ms`` after the last event with no change is a HEARTBEAT. Event times never go
back, even when the wall clock does, because the aggregator refuses an event older than the
machine's last one, and names are made what the aggregator accepts (printable, at most
``DeskLimits.max_name`` characters) so an odd workspace name never gets a batch refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sysmonstm.domains.deskmeter.desktop import Desktop
from sysmonstm.domains.deskmeter.model import DeskEvent, EventKind
from sysmonstm.domains.deskmeter.validate import DeskLimits

_LIMITS = DeskLimits()


def clean_name(name: str) -> str:
    """``name`` with control characters as spaces, cut to what the aggregator accepts."""
    if not name.isprintable():
        name = "".join(c if c.isprintable() else " " for c in name)
    return name[: _LIMITS.max_name]


@dataclass(frozen=True, slots=True)
class DeskState:
    """What an interval is made of on the watcher's side."""

    workspace_index: int
    workspace: str
    task: str
    idle: bool


class Tracker:
    """Turns observations into events: ``observe`` at every wake-up, ``wait_ms`` tells how
    long nothing can be due unless something wakes the watcher."""

    def __init__(self, heartbeat_ms: int, idle_after_ms: int, time_zone: str) -> None:
        if heartbeat_ms <= 0 or idle_after_ms <= 0:
            raise ValueError("heartbeat_ms and idle_after_ms must be positive")
        self.heartbeat_ms = heartbeat_ms
        self.idle_after_ms = idle_after_ms
        self.time_zone = time_zone
        self._state: DeskState | None = None
        self._last_ms = 0

    @property
    def state(self) -> DeskState | None:
        """The state of the last event sent (``None`` before the first)."""
        return self._state

    @property
    def idle(self) -> bool:
        return self._state is not None and self._state.idle

    def observe(
        self, desktop: Desktop, task: str, idle_ms: int | None, now_ms: int
    ) -> DeskEvent | None:
        """The event due at ``now_ms``, if any. An unknown desktop (index < 0, or past what
        the aggregator accepts) sends nothing; ``idle_ms=None`` (no idle source) means never
        idle."""
        if not 0 <= desktop.index <= _LIMITS.max_workspace_index:
            return None
        idle = idle_ms is not None and idle_ms >= self.idle_after_ms
        state = DeskState(desktop.index, clean_name(desktop.name), clean_name(task), idle)
        at = max(now_ms, self._last_ms)
        if state != self._state:
            kind = EventKind.SWITCH
        elif at - self._last_ms >= self.heartbeat_ms:
            kind = EventKind.HEARTBEAT
        else:
            return None
        self._state, self._last_ms = state, at
        return self._event(kind, at, min(idle_ms or 0, _LIMITS.max_idle_ms))

    def closing(self, now_ms: int) -> DeskEvent | None:
        """A last HEARTBEAT on a clean stop, so the open interval reaches the stop time."""
        if self._state is None or now_ms <= self._last_ms:
            return None
        self._last_ms = now_ms
        return self._event(EventKind.HEARTBEAT, now_ms, 0)

    def wait_ms(self, idle_ms: int | None, now_ms: int) -> int | None:
        """Milliseconds until the next heartbeat or until the idle threshold is crossed,
        whichever comes first; ``None`` before the first event (only a wake-up helps)."""
        if self._state is None:
            return None
        due = self._last_ms + self.heartbeat_ms - now_ms
        if idle_ms is not None and not self._state.idle:
            due = min(due, self.idle_after_ms - idle_ms)
        return max(due, 0)

    def _event(self, kind: EventKind, at: int, idle_ms: int) -> DeskEvent:
        assert self._state is not None
        s = self._state
        return DeskEvent(
            time_ms=at,
            kind=kind,
            workspace_index=s.workspace_index,
            workspace=s.workspace,
            task=s.task,
            idle=s.idle,
            idle_ms=idle_ms,
            time_zone=self.time_zone,
        )
