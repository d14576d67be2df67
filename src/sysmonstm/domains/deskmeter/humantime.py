"""Instants and calendar periods as people write them, read in an IANA time zone.

Time is UTC milliseconds inside; a zone matters only here, at the edge. ``parse_instant``
reads, besides the machine forms of ``gateway.timeparse.parse_time`` (Unix ms, ``now``,
``-2h`` / ``now-15m``):

- ``2h ago``, ``90 min ago`` (units ``ms s m min h d w``);
- ISO 8601 with an offset or ``Z`` (an absolute instant);
- local forms in the zone: ISO without offset (``2026-12-04 15:00``, ``2026-12-04T15:00:30``,
  ``2026-12-04`` = local midnight), a time of day (``15:00``, ``9:30``, ``3pm``, ``3:30 pm``,
  today), a day (``today``, ``yesterday``, ``tomorrow``, a weekday such as ``monday`` or
  ``mon`` = the latest one on or before today, ``last monday`` = the latest one before
  today, or a date ``2026-12-04``) optionally followed by ``[at] <time of day>``.

Days are calendar days in the zone, never "24 hours ago": ``yesterday 15:00`` is 15:00 on
the previous local date whatever DST did in between. A wall time that a DST change skips
(02:30 on a spring-forward night) moves forward by the gap (03:30); a repeated one (the
autumn hour) is its first occurrence.

``period_range`` gives the calendar day, week (Monday to Monday), month or year holding an
instant, as ``[from, to)`` in ms.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.timeparse import parse_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_MAX_TEXT = 64
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MACHINE_FORM = re.compile(r"^(?:now|\d+|(?:now\s*)?-.*)$")
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)\s+ago$")
_AGO_MS = {
    "ms": 1,
    "s": 1000,
    "sec": 1000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
}
_CLOCK = r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ampm>am|pm)?"
_DAY = r"(?P<day>today|yesterday|tomorrow|(?:last\s+)?[a-z]{3,9}|\d{4}-\d{2}-\d{2})"
_DAY_CLOCK = re.compile(rf"^{_DAY}(?:\s+(?:at\s+)?{_CLOCK})?$")
_CLOCK_ONLY = re.compile(rf"^{_CLOCK}$")

FORMS_HINT = (
    "use e.g. 'yesterday 15:00', 'today 9:30', '15:00', 'monday', '2026-12-04 15:00', "
    "'-2h', '2h ago', ISO 8601 with an offset (2026-12-04T15:00:00Z) or Unix ms"
)


class Period(enum.Enum):
    """A calendar period in a zone; weeks start on Monday (ISO 8601)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


def zone_of(name: str, *, what: str = "tz") -> ZoneInfo:
    """The IANA zone ``name``; ``InvalidInputError`` naming ``what`` when there is none."""
    bad = InvalidInputError(
        f"{what}: {name[:_MAX_TEXT]!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)"
    )
    if not name or len(name) > _MAX_TEXT:
        raise bad
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise bad from None


def to_ms(when: datetime) -> int:
    """Unix milliseconds of an aware datetime, exactly (no float rounding)."""
    return (when - _EPOCH) // _MS


def local_datetime(ms: int, zone: ZoneInfo) -> datetime:
    """The instant ``ms`` as an aware datetime in ``zone``."""
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(zone)


def wall_ms(day: date, clock: time, zone: ZoneInfo) -> int:
    """Unix ms of the wall time ``clock`` on ``day`` in ``zone`` (gaps forward, folds first)."""
    return to_ms(datetime.combine(day, clock, tzinfo=zone))


def _clock(match: re.Match[str]) -> time | None:
    hour = match.group("h")
    if hour is None:
        return None
    h, m, s = int(hour), int(match.group("m") or 0), int(match.group("s") or 0)
    ampm = match.group("ampm")
    if ampm is not None:
        if not 1 <= h <= 12:
            raise ValueError("12-hour clock")
        h = h % 12 + (12 if ampm == "pm" else 0)
    return time(h, m, s)


def _day(word: str, today: date) -> date:
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word[0].isdigit():
        return date.fromisoformat(word)
    last = word.startswith("last ")
    name = word.removeprefix("last ").strip()
    found = [i for i, full in enumerate(_WEEKDAYS) if full.startswith(name) and len(name) >= 3]
    if len(found) != 1:
        raise ValueError(word)
    back = (today.weekday() - found[0]) % 7
    if last and back == 0:
        back = 7
    return today - timedelta(days=back)


def _local_form(s: str, now_ms: int, zone: ZoneInfo) -> int | None:
    today = local_datetime(now_ms, zone).date()
    if (match := _DAY_CLOCK.fullmatch(s)) is not None:
        return wall_ms(_day(match.group("day"), today), _clock(match) or time(0), zone)
    if (match := _CLOCK_ONLY.fullmatch(s)) is not None:
        if match.group("m") is None and match.group("ampm") is None:
            return None  # a bare number is not a time of day (Unix ms are read elsewhere)
        return wall_ms(today, _clock(match) or time(0), zone)
    return None


def parse_instant(text: str, now_ms: int, zone: ZoneInfo, *, name: str = "time") -> int:
    """Unix ms for ``text`` (see the module docstring), local forms read in ``zone``.

    Raises ``InvalidInputError`` naming ``name`` and the accepted forms when unreadable.
    """
    s = " ".join(text.strip().lower().split())
    unreadable = InvalidInputError(f"{name}: cannot read {text[:_MAX_TEXT]!r}; {FORMS_HINT}")
    if not s or len(s) > _MAX_TEXT:
        raise unreadable
    try:
        if _MACHINE_FORM.match(s):
            return parse_time(s, now_ms, name=name)
        if (ago := _AGO.fullmatch(s)) is not None:
            return now_ms - round(float(ago.group(1)) * _AGO_MS[ago.group(2)])
        local = _local_form(s, now_ms, zone)
        if local is not None:
            return local
        when = datetime.fromisoformat(text.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone)
        return to_ms(when)
    except InvalidInputError as exc:
        if exc.reason.endswith("(Unix ms expected)"):
            raise
        raise unreadable from None
    except (ValueError, OverflowError):
        raise unreadable from None


def parse_period(text: str, *, what: str = "period") -> Period:
    """``day``, ``week``, ``month`` or ``year``; ``InvalidInputError`` otherwise."""
    try:
        return Period(text.strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"{what}: {text[:_MAX_TEXT]!r} is not one of day, week, month, year"
        ) from None


def period_range(period: Period, at_ms: int, zone: ZoneInfo) -> tuple[int, int]:
    """``[from, to)`` in ms of the calendar ``period`` in ``zone`` that holds ``at_ms``."""
    day = local_datetime(at_ms, zone).date()
    try:
        if period is Period.DAY:
            start, end = day, day + timedelta(days=1)
        elif period is Period.WEEK:
            start = day - timedelta(days=day.weekday())
            end = start + timedelta(days=7)
        elif period is Period.MONTH:
            start = day.replace(day=1)
            end = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        else:
            start, end = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    except (ValueError, OverflowError):
        raise InvalidInputError(f"the {period.value} of {at_ms} ms is beyond year 9999") from None
    return wall_ms(start, time(0), zone), wall_ms(end, time(0), zone)


def hours_minutes(seconds: float) -> str:
    """``5400.0`` → ``1:30`` (whole minutes, rounded; hours unbounded)."""
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"
