"""The interval builder over a whole batch of one machine: the result of applying
``builder.advance`` to each event in turn, computed with one mutable state per batch.

``advance`` is the reference (one event, pure, frozen values throughout); this is what the
store runs. Per event it keeps the machine's state in locals instead of replacing frozen
dataclasses, finds the local day from the window of the zone's last lookup
(``localdays.day_window``) instead of a datetime conversion, and sums the rollup time of an
interval's extensions on one local day before it touches the rollup rows. The steps,
intervals, deltas and state are the same as ``advance``'s, which the builder tests check.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec.structs import replace

from sysmonstm.domains.deskmeter.builder import (
    DayKey,
    MachineState,
    extension_deltas,
    silence_limit_ms,
)
from sysmonstm.domains.deskmeter.localdays import day_window
from sysmonstm.domains.deskmeter.model import DeskEvent, Interval
from sysmonstm.domains.deskmeter.store import Step

#: rollup rows → (ms, pieces), summed
Days = dict[DayKey, tuple[int, int]]


class _Rollup:
    """The time one open interval gathers on one local day, added to ``days`` when the
    interval or the day changes (``flush``)."""

    __slots__ = ("day", "days", "interval", "ms", "pieces")

    def __init__(self, days: Days) -> None:
        self.days = days
        self.interval: Interval | None = None  # the version that names the row
        self.day = ""
        self.ms = 0
        self.pieces = 0

    def extend(self, interval: Interval, old_end: int, new_end: int) -> None:
        """Add the extension of ``interval`` from ``old_end`` to ``new_end``."""
        if new_end <= old_end:
            return
        day, day_start, day_end = day_window(old_end, interval.time_zone)
        if new_end > day_end:  # across a local midnight: the general path
            self.flush()
            for delta in extension_deltas(interval, old_end, new_end):
                self._add(delta.key, delta.ms, delta.pieces)
            return
        iso = day.isoformat()
        first = old_end in (interval.start_ms, day_start)
        held = self.interval
        if held is None or held.start_ms != interval.start_ms or self.day != iso:
            self.flush()
            self.interval, self.day = interval, iso
        self.ms += new_end - old_end
        self.pieces += first

    def flush(self) -> None:
        iv = self.interval
        if iv is None:
            return
        key = DayKey(iv.machine, self.day, iv.task, iv.workspace, iv.workspace_index, iv.idle)
        self._add(key, self.ms, self.pieces)
        self.interval, self.ms, self.pieces = None, 0, 0

    def _add(self, key: DayKey, ms: int, pieces: int) -> None:
        old_ms, old_pieces = self.days.get(key, (0, 0))
        self.days[key] = (old_ms + ms, old_pieces + pieces)


def apply_events(
    state: MachineState,
    events: Sequence[DeskEvent],
    heartbeat_ms: int,
    days: Days,
) -> tuple[MachineState, list[Step], list[Interval]]:
    """Apply ``events`` (time order) to ``state`` as ``advance`` would, one after another.

    Adds the rollup deltas to ``days``; returns the state after the last event (its
    ``heartbeat_ms`` the batch's), a ``Step`` per event, and every interval the events wrote,
    each in its last version: those they closed, then the open one. Raises ``ValueError``
    for an event older than the machine's last one (``days`` may then hold part of the
    batch: the caller drops it).
    """
    machine = state.machine
    mid = machine.id
    fallback_tz = machine.time_zone or "UTC"
    limit = silence_limit_ms(heartbeat_ms)
    last, last_t = state.last, state.last_event_ms
    steps: list[Step] = []
    written: list[Interval] = []
    rollup = _Rollup(days)
    for event in events:
        t = event.time_ms
        if t < last_t:
            raise ValueError(
                f"machine {mid!r}: event at {t} is older than the last applied event at {last_t}"
            )
        closed: Interval | None = None
        if last is not None and t != last.start_ms and t - last.end_ms <= limit:
            same = (
                last.workspace_index == event.workspace_index
                and last.workspace == event.workspace
                and last.task == event.task
                and last.idle == event.idle
            )
            rollup.extend(last, last.end_ms, t)
            if same:  # the open interval grows to the event
                current = replace(last, machine=mid, end_ms=t, open=True)
                steps.append(Step(event, current, None))
                last, last_t = current, t
                continue
            closed = replace(last, machine=mid, end_ms=t, open=False)
        elif last is not None and t - last.end_ms > limit:  # silence: closed at its last event
            closed = last if not last.open else _closed(last)
        # else: the first event, or one at the instant its interval opened (re-stated)
        if closed is not None:
            written.append(closed)
        current = Interval(
            mid,
            t,
            t,
            event.workspace_index,
            event.workspace,
            event.task,
            event.idle,
            True,
            event.time_zone or fallback_tz,
        )
        steps.append(Step(event, current, closed))
        last, last_t = current, t
    rollup.flush()
    if last is not None:
        written.append(last)
    after = MachineState(machine, heartbeat_ms, last_t, state.stored_through, last)
    return after, steps, written


def _closed(iv: Interval) -> Interval:
    return replace(iv, open=False)
