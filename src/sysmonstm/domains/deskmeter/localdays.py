"""Local days of a time zone: which calendar day an instant belongs to, and where days start.

A local day runs from its first instant (local midnight, or the first instant after a DST gap
that swallows midnight) to the next day's first instant, so it lasts 23, 24 or 25 hours.
Times are UTC Unix milliseconds; zones are IANA names (``zoneinfo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)
#: instants whose local day every zone can name (``datetime`` stops at years 1 and 9999)
FIRST_MS = int(datetime(1, 1, 3, tzinfo=UTC).timestamp()) * 1000
LAST_MS = int(datetime(9999, 12, 29, tzinfo=UTC).timestamp()) * 1000


@dataclass(frozen=True, slots=True)
class DayPiece:
    """The part ``[start_ms, end_ms)`` of a span that falls on local ``day``."""

    day: date
    start_ms: int
    end_ms: int

    @property
    def ms(self) -> int:
        return self.end_ms - self.start_ms


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name`` (``ZoneInfoNotFoundError`` if unknown)."""
    return ZoneInfo(name)


@lru_cache(maxsize=16384)
def day_start_ms(day: date, tz: str) -> int:
    """The first instant of local ``day`` in ``tz``.

    ``fold=0`` gives the right answer at both DST edges: a midnight inside a gap maps to the
    transition instant (the day's first existing instant), a repeated midnight to its first
    occurrence.
    """
    local = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return int(local.timestamp()) * 1000


def local_day(t_ms: int, tz: str) -> date:
    """The local calendar day of instant ``t_ms`` in ``tz``."""
    return datetime.fromtimestamp(t_ms / 1000, zone(tz)).date()


def day_bounds(t_ms: int, tz: str) -> tuple[date, int, int]:
    """The local day of ``t_ms`` with its first instant and the next day's first instant."""
    day = local_day(t_ms, tz)
    start, end = day_start_ms(day, tz), day_start_ms(day + DAY, tz)
    # a float timestamp a hair before a day's start can land on the previous date
    if t_ms >= end:
        day, start, end = day + DAY, end, day_start_ms(day + 2 * DAY, tz)
    elif t_ms < start:
        day, end, start = day - DAY, start, day_start_ms(day - DAY, tz)
    return day, start, end


#: per zone, the last answer of ``day_window``
_WINDOWS: dict[str, tuple[date, int, int]] = {}


def day_window(t_ms: int, tz: str) -> tuple[date, int, int]:
    """``day_bounds(t_ms, tz)``, with each zone's last answer kept: the instants of one
    local day (a machine's heartbeats) then cost two comparisons each, not a lookup."""
    known = _WINDOWS.get(tz)
    if known is not None and known[1] <= t_ms < known[2]:
        return known
    found = _WINDOWS[tz] = day_bounds(t_ms, tz)
    return found


def day_length_ms(day: date, tz: str) -> int:
    """How long local ``day`` lasts in ``tz`` (23 h, 24 h or 25 h around DST changes)."""
    return day_start_ms(day + DAY, tz) - day_start_ms(day, tz)


def split_days(start_ms: int, end_ms: int, tz: str) -> list[DayPiece]:
    """``[start_ms, end_ms)`` cut at the local day starts of ``tz``, in order; empty if the
    span is empty. The pieces cover the span exactly."""
    pieces: list[DayPiece] = []
    t = start_ms
    while t < end_ms:
        day, _, next_start = day_bounds(t, tz)
        cut = min(next_start, end_ms)
        pieces.append(DayPiece(day, t, cut))
        t = cut
    return pieces


def whole_days(from_ms: int, to_ms: int, tz: str) -> tuple[date, date, int, int] | None:
    """The whole local days inside ``[from_ms, to_ms)``: ``(first, after_last, start, end)``
    where days ``first <= d < after_last`` cover ``[start, end)``; None if no day fits.
    Only days between ``FIRST_MS`` and ``LAST_MS`` are considered."""
    from_ms, to_ms = max(from_ms, FIRST_MS), min(to_ms, LAST_MS)
    if to_ms <= from_ms:
        return None
    day, start, next_start = day_bounds(from_ms, tz)
    if start != from_ms:
        day, start = day + DAY, next_start
    last, last_start, _ = day_bounds(to_ms, tz)
    if last_start <= start:
        return None
    return day, last, start, last_start
