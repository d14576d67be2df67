"""How a summary is put together, shared by the backends.

For each machine, the range ``[from_ms, to_ms)`` is cut, in the machine's time zone, into the
whole local months inside it (answered from the monthly rollups), the other whole local days
(daily rollups) and at most two partial days at the edges (answered by summing the clipped
intervals in the database). The cost therefore grows with the number of months, days and
groups, not with the number of intervals; by day, the daily rollups answer every whole day.

Group keys: the task; the workspace name (its index as text when it has no name); the
machine id; the local date ``YYYY-MM-DD`` in the machine's time zone. ``intervals`` counts
each interval once per local day it has time on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sysmonstm.domains.deskmeter.localdays import DAY, FIRST_MS, LAST_MS, split_days, whole_days
from sysmonstm.domains.deskmeter.model import SummaryBy, Total

DayRange = tuple[str, str]  # ISO dates first <= day < after_last


@dataclass(frozen=True, slots=True)
class MachineRange:
    """One machine's share of a summary: whole months and whole days from the rollups,
    partial days from the intervals."""

    machine: str
    months: DayRange | None  # first days of the whole months first <= month < after_last
    days: tuple[DayRange, ...]  # whole days outside those months
    spans: tuple[tuple[int, int, str], ...]  # [from, to) within one local day (ISO date)


def machine_range(
    machine: str, tz: str, from_ms: int, to_ms: int, *, months: bool = True
) -> MachineRange:
    """Cut ``[from_ms, to_ms)`` for one machine in its zone ``tz``: the whole local months
    inside it (if ``months``), the other whole local days, and the partial days around them
    (each within one local day)."""
    from_ms, to_ms = max(from_ms, FIRST_MS), min(to_ms, LAST_MS)
    if to_ms <= from_ms:
        return MachineRange(machine, None, (), ())
    whole = whole_days(from_ms, to_ms, tz)
    if whole is None:  # less than a whole day: at most the ends of two days
        pieces = split_days(from_ms, to_ms, tz)
        spans = tuple((p.start_ms, p.end_ms, p.day.isoformat()) for p in pieces)
        return MachineRange(machine, None, (), spans)
    first, after_last, start, end = whole
    edges = []
    if from_ms < start:
        edges.append((from_ms, start, (first - DAY).isoformat()))
    if end < to_ms:
        edges.append((end, to_ms, after_last.isoformat()))
    month0 = first if first.day == 1 else _next_month(first)
    month1 = after_last.replace(day=1)
    if not months or month1 <= month0:
        return MachineRange(
            machine, None, ((first.isoformat(), after_last.isoformat()),), tuple(edges)
        )
    days = tuple(
        (a.isoformat(), b.isoformat()) for a, b in ((first, month0), (month1, after_last)) if a < b
    )
    return MachineRange(machine, (month0.isoformat(), month1.isoformat()), days, tuple(edges))


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def workspace_key(workspace: str, workspace_index: int) -> str:
    return workspace or str(workspace_index)


class Totals:
    """Sums per group key, active and idle apart."""

    def __init__(self) -> None:
        self._sums: dict[str, list[int]] = {}  # key -> [active ms, idle ms, intervals]

    def add(self, key: str, idle: bool, ms: int, pieces: int) -> None:
        sums = self._sums.setdefault(key, [0, 0, 0])
        sums[1 if idle else 0] += ms
        sums[2] += pieces

    def add_rows(
        self, by: SummaryBy, machine: str, day: str, rows: Iterable[Sequence[Any]]
    ) -> None:
        """Add ``(group, idle, ms, pieces)`` rows of one machine from the database; the
        machine's id replaces the group for ``MACHINE``, and ``day`` (rows of one partial
        local day; "" for rollup rows, which carry theirs) does for ``DAY``."""
        for group, idle, ms, pieces in rows:
            if by is SummaryBy.MACHINE:
                key = machine
            elif by is SummaryBy.DAY and day:
                key = day
            else:
                key = str(group)
            self.add(key, bool(idle), int(ms), int(pieces))

    def result(self) -> list[Total]:
        """Largest active time first, then largest idle time, then by key."""
        ordered = sorted(self._sums.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        return [Total(k, a / 1000, i / 1000, n) for k, (a, i, n) in ordered]
