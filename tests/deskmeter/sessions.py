"""Desk sessions for interval tests: builders of events and batches, a hypothesis strategy of
random sessions, and ``Ledger``, the interval store's contract kept in memory (the builder's
plan applied to dicts), to check properties and to compare backends against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from sysmonstm.domains.deskmeter.builder import DayKey, MachineState, close_if_silent
from sysmonstm.domains.deskmeter.model import (
    DeskBatch,
    DeskEvent,
    EventKind,
    Interval,
    Machine,
)
from sysmonstm.domains.deskmeter.plan import plan_apply
from sysmonstm.domains.deskmeter.store import Applied

BERLIN = "Europe/Berlin"
HB = 10_000  # heartbeat period of these sessions
LIMIT = 2 * HB + 5_000  # silence limit at that period
S, MIN, H = 1_000, 60_000, 3_600_000


def local_ms(text: str, tz: str = BERLIN) -> int:
    """Unix ms of a wall time such as ``2026-03-29 15:00`` in ``tz``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def machine(mid: str = "m1", tz: str = BERLIN) -> Machine:
    return Machine(mid, f"host-{mid}", tz)


def ev(
    t_ms: int,
    workspace: str = "Code",
    task: str = "",
    *,
    kind: EventKind = EventKind.SWITCH,
    index: int = 0,
    idle: bool = False,
    tz: str = BERLIN,
) -> DeskEvent:
    return DeskEvent(t_ms, kind, index, workspace, task, idle, 0, tz)


def hb(t_ms: int, workspace: str = "Code", task: str = "", **kw: object) -> DeskEvent:
    """A heartbeat (same arguments as ``ev``)."""
    return ev(t_ms, workspace, task, kind=EventKind.HEARTBEAT, **kw)  # type: ignore[arg-type]


def heartbeats(
    start_ms: int,
    end_ms: int,
    workspace: str = "Code",
    task: str = "",
    *,
    every: int = HB,
    idle: bool = False,
    tz: str = BERLIN,
) -> list[DeskEvent]:
    """Heartbeats every ``every`` ms from after ``start_ms`` through ``end_ms``."""
    return [
        hb(t, workspace, task, idle=idle, tz=tz) for t in range(start_ms + every, end_ms + 1, every)
    ]


def batch(seq: int, events: Sequence[DeskEvent], m: Machine | None = None) -> DeskBatch:
    return DeskBatch(m or machine(), seq, tuple(events), HB)


def batches(events: Sequence[DeskEvent], size: int, m: Machine | None = None) -> list[DeskBatch]:
    """``events`` cut into batches of ``size``, sequences from 1."""
    return [batch(i // size + 1, events[i : i + size], m) for i in range(0, len(events), size)]


STATES = (
    ("Code", "Project X", 0, False),
    ("Mail", "", 1, False),
    ("Code", "", 0, False),
    ("Web", "Project Y", 2, False),
    ("Code", "Project X", 0, True),
)


@st.composite
def sessions(draw: st.DrawFn, start_ms: int = local_ms("2026-03-28 20:00")) -> list[DeskEvent]:
    """A random session of one machine: switches and heartbeats in time order, with repeated
    instants, same-state switches, state-changing heartbeats and silences; it may cross
    midnight and, from the default start, the DST change of 2026-03-29 in Berlin."""
    n = draw(st.integers(1, 60))
    t = start_ms
    out = []
    for _ in range(n):
        t += draw(
            st.one_of(
                st.just(0),
                st.integers(1, HB),
                st.integers(HB, LIMIT + 1),
                st.integers(LIMIT, 6 * H),
            )
        )
        workspace, task, index, idle = draw(st.sampled_from(STATES))
        kind = draw(st.sampled_from(EventKind))
        out.append(ev(t, workspace, task, kind=kind, index=index, idle=idle))
    return out


@dataclass
class Ledger:
    """The interval store's contract in memory: what a backend must end up holding."""

    states: dict[str, MachineState] = field(default_factory=dict)
    intervals: dict[tuple[str, int], Interval] = field(default_factory=dict)
    days: dict[DayKey, tuple[int, int]] = field(default_factory=dict)

    def apply(self, batches: Sequence[DeskBatch]) -> list[Applied]:
        states = {
            b.machine.id: self.states.get(b.machine.id, MachineState(b.machine)) for b in batches
        }
        plan = plan_apply(states, batches)
        self.states.update(plan.states)
        self.intervals.update(plan.intervals)
        for key, (ms, pieces) in plan.days.items():
            old_ms, old_pieces = self.days.get(key, (0, 0))
            self.days[key] = (old_ms + ms, old_pieces + pieces)
        return plan.applied

    def close_silent(self, now_ms: int) -> list[Interval]:
        closed = []
        for mid, state in sorted(self.states.items()):
            self.states[mid], gone = close_if_silent(state, now_ms)
            if gone is not None:
                self.intervals[(mid, gone.start_ms)] = gone
                closed.append(gone)
        return closed

    def timeline(self, mid: str = "m1") -> list[Interval]:
        """A machine's intervals by start."""
        return sorted(
            (iv for (m, _), iv in self.intervals.items() if m == mid), key=lambda iv: iv.start_ms
        )
