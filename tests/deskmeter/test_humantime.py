"""Times as people write them, read in an IANA zone on its calendar (DST included), and the
calendar periods holding an instant."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sysmonstm.domains.deskmeter.humantime import (
    Period,
    hours_minutes,
    parse_instant,
    parse_period,
    period_range,
    zone_of,
)
from sysmonstm.errors import InvalidInputError

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def local(text: str, zone: ZoneInfo = BERLIN) -> int:
    """Unix ms of a wall time in ``zone``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=zone).timestamp() * 1000)


# Monday 2026-03-30 10:00 CEST: the day after the spring change (Sunday 02:00 CET → 03:00 CEST)
AFTER_SPRING = local("2026-03-30 10:00")
# Monday 2026-10-26 10:00 CET: the day after the autumn change (Sunday 03:00 CEST → 02:00 CET)
AFTER_AUTUMN = local("2026-10-26 10:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yesterday 15:00", "2026-03-29 15:00"),
        ("Yesterday  at 3pm", "2026-03-29 15:00"),
        ("yesterday", "2026-03-29 00:00"),
        ("today 9:30", "2026-03-30 09:30"),
        ("today", "2026-03-30 00:00"),
        ("tomorrow 8:00", "2026-03-31 08:00"),
        ("15:00", "2026-03-30 15:00"),
        ("15:00:30", "2026-03-30 15:00:30"),
        ("3:30 pm", "2026-03-30 15:30"),
        ("12am", "2026-03-30 00:00"),
        ("12pm", "2026-03-30 12:00"),
        ("monday", "2026-03-30 00:00"),
        ("last monday", "2026-03-23 00:00"),
        ("sun 10:00", "2026-03-29 10:00"),
        ("friday at 17:45", "2026-03-27 17:45"),
        ("2026-12-04 15:00", "2026-12-04 15:00"),
        ("2026-12-04T15:00:30", "2026-12-04 15:00:30"),
        ("2026-12-04", "2026-12-04 00:00"),
        ("2026-12-04 3pm", "2026-12-04 15:00"),
    ],
)
def test_local_forms_are_read_on_the_zones_calendar(text: str, expected: str) -> None:
    """Days, times of day and dates without offset are wall times in Berlin."""
    assert parse_instant(text, AFTER_SPRING, BERLIN) == local(expected)


def test_yesterday_across_the_spring_change_is_not_24_hours_ago() -> None:
    """On the day after the spring change, 'yesterday 15:00' is 19 hours before 10:00, as
    the calendar says (15:00 CEST on Sunday = 13:00 UTC), not 24 hours back from a clock."""
    t = parse_instant("yesterday 15:00", AFTER_SPRING, BERLIN)
    assert t == 1_774_789_200_000  # 2026-03-29T13:00:00Z
    assert AFTER_SPRING - t == 19 * 3_600_000


def test_yesterday_across_the_autumn_change() -> None:
    """After the autumn change, 'yesterday 15:00' is 15:00 CET on Sunday = 14:00 UTC."""
    assert (
        parse_instant("yesterday 15:00", AFTER_AUTUMN, BERLIN) == 1_792_936_800_000
    )  # 2026-10-25T14:00:00Z


def test_a_wall_time_skipped_by_dst_moves_forward_by_the_gap() -> None:
    """02:30 on the spring-change night does not exist; it reads as 03:30 CEST (01:30 UTC)."""
    t = parse_instant("2026-03-29 02:30", AFTER_SPRING, BERLIN)
    assert t == 1_774_747_800_000  # 2026-03-29T01:30:00Z


def test_a_repeated_wall_time_is_its_first_occurrence() -> None:
    """02:30 on the autumn-change night happens twice; the first (CEST, 00:30 UTC) is meant."""
    t = parse_instant("2026-10-25 02:30", AFTER_AUTUMN, BERLIN)
    assert t == 1_792_888_200_000  # 2026-10-25T00:30:00Z


def test_the_same_words_mean_other_instants_in_other_zones() -> None:
    """'today 9:30' is 07:30 UTC in Berlin (CEST) and 09:30 UTC in UTC."""
    assert parse_instant("today 9:30", AFTER_SPRING, BERLIN) == local("2026-03-30 07:30", UTC)
    assert parse_instant("today 9:30", AFTER_SPRING, UTC) == local("2026-03-30 09:30", UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", AFTER_SPRING),
        ("-2h", AFTER_SPRING - 7_200_000),
        ("now-15m", AFTER_SPRING - 900_000),
        ("2h ago", AFTER_SPRING - 7_200_000),
        ("90 min ago", AFTER_SPRING - 5_400_000),
        ("1733300000000", 1_733_300_000_000),
        ("2026-12-04T15:00:00Z", 1_796_396_400_000),
        ("2026-12-04T16:00:00+01:00", 1_796_396_400_000),
    ],
)
def test_absolute_and_relative_forms_ignore_the_zone(text: str, expected: int) -> None:
    """Unix ms, relative times and ISO 8601 with an offset mean the same in every zone."""
    assert parse_instant(text, AFTER_SPRING, BERLIN) == expected
    assert parse_instant(text, AFTER_SPRING, UTC) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "25:00",
        "13pm",
        "15",
        "blursday",
        "mo",
        "yesterday 15:60",
        "2026-02-30",
        "x" * 65,
    ],
)
def test_unreadable_text_is_refused_naming_the_parameter_and_the_forms(text: str) -> None:
    """The error names the parameter and shows the accepted forms."""
    if text == "15":  # bare digits are Unix ms, not an hour
        assert parse_instant(text, AFTER_SPRING, BERLIN, name="at") == 15
        return
    with pytest.raises(InvalidInputError, match=r"^at: cannot read .*'yesterday 15:00'"):
        parse_instant(text, AFTER_SPRING, BERLIN, name="at")


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        (Period.DAY, "2026-03-29 12:00", "2026-03-29 00:00", "2026-03-30 00:00"),
        (Period.WEEK, "2026-03-29 12:00", "2026-03-23 00:00", "2026-03-30 00:00"),
        (Period.WEEK, "2026-03-30 00:00", "2026-03-30 00:00", "2026-04-06 00:00"),
        (Period.MONTH, "2026-03-29 12:00", "2026-03-01 00:00", "2026-04-01 00:00"),
        (Period.MONTH, "2026-12-31 23:59", "2026-12-01 00:00", "2027-01-01 00:00"),
        (Period.YEAR, "2026-10-25 02:30", "2026-01-01 00:00", "2027-01-01 00:00"),
    ],
)
def test_period_range_is_the_calendar_period_in_the_zone(
    period: Period, at: str, start: str, end: str
) -> None:
    """Local midnights bound each period; weeks run Monday to Monday."""
    assert period_range(period, local(at), BERLIN) == (local(start), local(end))


def test_days_around_dst_last_23_and_25_hours() -> None:
    """The spring-change day is 23 hours long in Berlin, the autumn one 25."""
    lo, hi = period_range(Period.DAY, local("2026-03-29 12:00"), BERLIN)
    assert hi - lo == 23 * 3_600_000
    lo, hi = period_range(Period.DAY, local("2026-10-25 12:00"), BERLIN)
    assert hi - lo == 25 * 3_600_000


def test_the_same_instant_falls_in_other_days_in_other_zones() -> None:
    """23:30 UTC on 2026-03-28 is already the 29th in Berlin."""
    t = local("2026-03-28 23:30", UTC)
    assert period_range(Period.DAY, t, UTC)[0] == local("2026-03-28 00:00", UTC)
    assert period_range(Period.DAY, t, BERLIN)[0] == local("2026-03-29 00:00")


def test_parse_period_and_zone_refuse_unknown_names() -> None:
    """Periods and zones outside the known names are refused with what is accepted."""
    assert parse_period(" Month ") is Period.MONTH
    with pytest.raises(InvalidInputError, match=r"^period: 'fortnight' is not one of day"):
        parse_period("fortnight")
    assert zone_of("Europe/Berlin") == BERLIN
    for bad in ["Mars/Olympus", "../../etc/passwd", "", "x" * 100]:
        with pytest.raises(InvalidInputError, match=r"^tz: .* is not an IANA time zone"):
            zone_of(bad)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0:00"), (59, "0:01"), (5400, "1:30"), (90_000, "25:00")]
)
def test_hours_minutes_rounds_to_whole_minutes(seconds: float, shown: str) -> None:
    """Durations show as hours:minutes, hours unbounded."""
    assert hours_minutes(seconds) == shown
