"""Local days: where a time zone's days start, and spans cut at them (DST aware)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from sysmonstm.domains.deskmeter.localdays import (
    DayPiece,
    day_bounds,
    day_length_ms,
    day_start_ms,
    day_window,
    local_day,
    split_days,
    whole_days,
)
from tests.deskmeter.sessions import BERLIN, H, local_ms

ZONES = ("Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")


def test_berlin_spring_forward_day_lasts_23_hours() -> None:
    assert day_length_ms(date(2026, 3, 29), BERLIN) == 23 * H


def test_berlin_fall_back_day_lasts_25_hours() -> None:
    assert day_length_ms(date(2026, 10, 25), BERLIN) == 25 * H


def test_an_ordinary_day_lasts_24_hours() -> None:
    assert day_length_ms(date(2026, 6, 1), BERLIN) == 24 * H


def test_a_day_starts_at_local_midnight() -> None:
    assert day_start_ms(date(2026, 6, 1), BERLIN) == local_ms("2026-06-01 00:00")
    assert day_start_ms(date(2026, 6, 1), "UTC") == local_ms("2026-06-01 00:00", "UTC")


def test_a_midnight_skipped_by_dst_starts_the_day_at_the_transition() -> None:
    """Sao Paulo moved clocks 00:00 -> 01:00 on 2018-11-04: that day began at 01:00 -03."""
    start = day_start_ms(date(2018, 11, 4), "America/Sao_Paulo")
    assert start == local_ms("2018-11-04 01:00", "America/Sao_Paulo")
    assert local_day(start - 1, "America/Sao_Paulo") == date(2018, 11, 3)
    assert local_day(start, "America/Sao_Paulo") == date(2018, 11, 4)
    assert day_length_ms(date(2018, 11, 4), "America/Sao_Paulo") == 23 * H


def test_a_span_across_midnight_is_cut_at_midnight() -> None:
    start, end = local_ms("2026-06-01 23:00"), local_ms("2026-06-02 01:30")
    midnight = local_ms("2026-06-02 00:00")
    assert split_days(start, end, BERLIN) == [
        DayPiece(date(2026, 6, 1), start, midnight),
        DayPiece(date(2026, 6, 2), midnight, end),
    ]


def test_a_span_over_both_dst_days_gives_23_and_25_hour_pieces() -> None:
    whole = split_days(local_ms("2026-03-29 00:00"), local_ms("2026-03-30 00:00"), BERLIN)
    assert [(p.day, p.ms) for p in whole] == [(date(2026, 3, 29), 23 * H)]
    autumn = split_days(local_ms("2026-10-24 12:00"), local_ms("2026-10-26 12:00"), BERLIN)
    assert [(p.day, p.ms) for p in autumn] == [
        (date(2026, 10, 24), 12 * H),
        (date(2026, 10, 25), 25 * H),
        (date(2026, 10, 26), 12 * H),
    ]


def test_an_empty_span_has_no_pieces() -> None:
    t = local_ms("2026-06-01 12:00")
    assert split_days(t, t, BERLIN) == []


def test_whole_days_inside_a_range_and_none_within_one_day() -> None:
    from_ms, to_ms = local_ms("2026-03-28 18:00"), local_ms("2026-03-31 06:00")
    assert whole_days(from_ms, to_ms, BERLIN) == (
        date(2026, 3, 29),
        date(2026, 3, 31),
        local_ms("2026-03-29 00:00"),
        local_ms("2026-03-31 00:00"),
    )
    exact = whole_days(local_ms("2026-03-29 00:00"), local_ms("2026-03-30 00:00"), BERLIN)
    assert exact is not None
    assert exact[:2] == (date(2026, 3, 29), date(2026, 3, 30))
    assert whole_days(local_ms("2026-03-29 01:00"), local_ms("2026-03-29 23:00"), BERLIN) is None


@given(
    st.integers(1_500_000_000_000, 2_000_000_000_000),
    st.integers(0, 80 * H),
    st.sampled_from(ZONES),
)
def test_pieces_cover_the_span_exactly_one_per_local_day(start: int, length: int, tz: str) -> None:
    pieces = split_days(start, start + length, tz)
    assert sum(p.ms for p in pieces) == length
    assert [p.start_ms for p in pieces[1:]] == [p.end_ms for p in pieces[:-1]]
    for piece in pieces:
        day, day_start, day_end = day_bounds(piece.start_ms, tz)
        assert piece.day == day == local_day(piece.end_ms - 1, tz)
        assert day_start <= piece.start_ms < piece.end_ms <= day_end
    assert len({p.day for p in pieces}) == len(pieces)


@given(st.integers(1_500_000_000_000, 2_000_000_000_000), st.sampled_from(ZONES))
def test_an_instant_lies_in_the_day_its_bounds_name(t: int, tz: str) -> None:
    day, start, end = day_bounds(t, tz)
    assert start <= t < end
    assert local_day(t, tz) == day
    assert start == day_start_ms(day, tz)


@given(
    st.lists(st.integers(1_500_000_000_000, 2_000_000_000_000), min_size=1, max_size=30),
    st.sampled_from(ZONES),
)
def test_the_cached_day_window_answers_as_day_bounds_in_any_order(ts: list[int], tz: str) -> None:
    """Instants near each other, around DST changes and far apart, forwards and back."""
    for t in [*ts, *(t + k * H for t in ts[:3] for k in (-1, 1, 23, 25)), *sorted(ts)]:
        assert day_window(t, tz) == day_bounds(t, tz)


def test_the_cached_day_window_across_both_berlin_dst_days() -> None:
    start = local_ms("2026-03-28 22:00")
    for t in range(start, start + 212 * 24 * H, H // 2):
        assert day_window(t, BERLIN) == day_bounds(t, BERLIN)
