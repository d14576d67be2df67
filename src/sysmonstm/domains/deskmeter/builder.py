"""The interval builder: a machine's state plus one event gives the next state, what the event
did (a ``Step``) and the time it added to the daily rollups. Pure: no I/O, no clock.

Rules (docs/deskmeter.md, "Intervals"):

- An event more than ``silence_limit_ms(heartbeat_ms)`` after the last interval's end finds
  that interval closed at its end (its last event) and opens a new one at the event.
- Otherwise a SWITCH or HEARTBEAT whose state (workspace index and name, task, idle) differs
  from the last interval's closes it at the event and opens a new one there (the watcher's
  word wins); the same state extends it to the event.
- An event at the very instant its interval opened re-states that interval instead (a
  machine's intervals are keyed by start; a zero-length interval is not worth keeping).
- The last interval may have been closed by ``close_if_silent`` (the aggregator's clock said
  the machine went quiet); an event that shows the machine was not silent after all
  continues it exactly as if it had stayed open, so the intervals do not depend on when the
  aggregator looked.

Rollups grow by each extension ``[old_end, new_end)`` cut at local midnights of the
interval's time zone; ``pieces`` counts each interval once per local day it has time on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from msgspec.structs import replace as changed

from sysmonstm.domains.deskmeter.localdays import day_start_ms, split_days
from sysmonstm.domains.deskmeter.model import (
    SILENCE_HEARTBEATS,
    SILENCE_SLACK_MS,
    DeskEvent,
    Interval,
    Machine,
    MachineInfo,
)
from sysmonstm.domains.deskmeter.store import Step

DEFAULT_HEARTBEAT_MS = 10_000


def silence_limit_ms(heartbeat_ms: int) -> int:
    """Longest gap after an interval's last event that still continues it."""
    return SILENCE_HEARTBEATS * heartbeat_ms + SILENCE_SLACK_MS


@dataclass(frozen=True, slots=True)
class MachineState:
    """What the builder needs to know about a machine between events.

    ``last`` is the machine's latest interval: open, or closed by silence (kept so a late
    event can still continue it). ``last_event_ms`` is 0 before the first event.
    """

    machine: Machine
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS
    last_event_ms: int = 0
    stored_through: int = 0
    last: Interval | None = None

    @property
    def current(self) -> Interval | None:
        """The open interval, if the machine has one."""
        return self.last if self.last is not None and self.last.open else None

    def info(self) -> MachineInfo:
        return MachineInfo(self.machine, self.last_event_ms, self.stored_through, self.current)


@dataclass(frozen=True, slots=True)
class DayKey:
    """One daily rollup row's key: a machine's time on a local day in one state."""

    machine: str
    day: str  # the local date, YYYY-MM-DD
    task: str
    workspace: str
    workspace_index: int
    idle: bool


@dataclass(frozen=True, slots=True)
class DayDelta:
    """Time added to a rollup row, and intervals newly counted in it."""

    key: DayKey
    ms: int
    pieces: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one event: the next state, the step, the rollup deltas."""

    state: MachineState
    step: Step
    deltas: tuple[DayDelta, ...]


def same_state(interval: Interval, event: DeskEvent) -> bool:
    return (interval.workspace_index, interval.workspace, interval.task, interval.idle) == (
        event.workspace_index,
        event.workspace,
        event.task,
        event.idle,
    )


def _opened(machine: Machine, event: DeskEvent) -> Interval:
    return Interval(
        machine.id,
        event.time_ms,
        event.time_ms,
        event.workspace_index,
        event.workspace,
        event.task,
        event.idle,
        open=True,
        time_zone=event.time_zone or machine.time_zone or "UTC",
    )


def extension_deltas(interval: Interval, old_end: int, new_end: int) -> tuple[DayDelta, ...]:
    """The rollup deltas of extending ``interval`` from ``old_end`` to ``new_end``."""
    out = []
    tz = interval.time_zone
    for piece in split_days(old_end, new_end, tz):
        # a piece after the first starts a local day; the first piece is the interval's first
        # time on its day if the interval starts there or the old end was the day's start
        first = (
            piece.start_ms != old_end
            or old_end == interval.start_ms
            or old_end == day_start_ms(piece.day, tz)
        )
        key = DayKey(
            interval.machine,
            piece.day.isoformat(),
            interval.task,
            interval.workspace,
            interval.workspace_index,
            interval.idle,
        )
        out.append(DayDelta(key, piece.ms, 1 if first else 0))
    return tuple(out)


def advance(state: MachineState, event: DeskEvent, heartbeat_ms: int) -> Outcome:
    """Apply one event to a machine's state (see the module docstring for the rules).

    Raises ``ValueError`` for an event older than the machine's last one (ingest refuses
    those; reaching here is a programming error).
    """
    if event.time_ms < state.last_event_ms:
        raise ValueError(
            f"machine {state.machine.id!r}: event at {event.time_ms} is older than the last"
            f" applied event at {state.last_event_ms}"
        )
    last, t = state.last, event.time_ms
    closed: Interval | None = None
    deltas: tuple[DayDelta, ...] = ()
    if last is None:
        current = _opened(state.machine, event)
    elif t - last.end_ms > silence_limit_ms(heartbeat_ms):
        closed = changed(last, open=False)
        current = _opened(state.machine, event)
    elif t == last.start_ms:
        # the last interval has no length yet (nothing counted): re-state it in place
        current = _opened(state.machine, event)
    elif same_state(last, event):
        current = changed(last, end_ms=t, open=True)
        deltas = extension_deltas(last, last.end_ms, t)
    else:
        closed = changed(last, end_ms=t, open=False)
        deltas = extension_deltas(last, last.end_ms, t)
        current = _opened(state.machine, event)
    after = replace(state, heartbeat_ms=heartbeat_ms, last_event_ms=t, last=current)
    return Outcome(after, Step(event, current, closed), deltas)


def close_if_silent(state: MachineState, now_ms: int) -> tuple[MachineState, Interval | None]:
    """Close the open interval at its last event if the machine has been silent at
    ``now_ms`` for longer than its limit; returns the new state and the interval closed."""
    current = state.current
    if current is None or now_ms - current.end_ms <= silence_limit_ms(state.heartbeat_ms):
        return state, None
    closed = changed(current, open=False)
    return replace(state, last=closed), closed
