"""The interval builder: switches, heartbeats, silences and daily rollups (pure, no I/O)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import replace

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysmonstm.domains.deskmeter.builder import (
    DayKey,
    MachineState,
    advance,
    close_if_silent,
    silence_limit_ms,
)
from sysmonstm.domains.deskmeter.builder_batch import apply_events
from sysmonstm.domains.deskmeter.localdays import split_days
from sysmonstm.domains.deskmeter.model import DeskEvent, EventKind, Interval
from sysmonstm.domains.deskmeter.plan import plan_apply
from sysmonstm.domains.deskmeter.store import Step
from tests.deskmeter.sessions import (
    BERLIN,
    HB,
    LIMIT,
    MIN,
    H,
    Ledger,
    S,
    batch,
    batches,
    ev,
    hb,
    heartbeats,
    local_ms,
    machine,
    sessions,
)

T0 = local_ms("2026-06-01 09:00")


def run(events: list[DeskEvent], size: int = 1000) -> Ledger:
    ledger = Ledger()
    ledger.apply(batches(events, size))
    return ledger


def span(start: int, end: int, workspace: str = "Code", task: str = "", **kw: object) -> Interval:
    return Interval("m1", start, end, 0, workspace, task, False, time_zone=BERLIN, **kw)  # type: ignore[arg-type]


def test_the_first_event_opens_an_interval_at_its_instant() -> None:
    out = advance(MachineState(machine()), ev(T0), HB)
    assert out.step.current == span(T0, T0, open=True)
    assert out.step.closed is None
    assert out.deltas == ()
    assert out.state.last_event_ms == T0


def test_heartbeats_extend_the_open_interval_to_the_last_event() -> None:
    ledger = run([ev(T0), *heartbeats(T0, T0 + 60 * S)])
    assert ledger.timeline() == [span(T0, T0 + 60 * S, open=True)]


def test_a_switch_closes_the_open_interval_and_opens_one_at_the_same_instant() -> None:
    ledger = Ledger()
    (applied,) = ledger.apply([batch(1, [ev(T0), hb(T0 + 10 * S), ev(T0 + 15 * S, "Mail")])])
    last = applied.steps[-1]
    assert last.closed == span(T0, T0 + 15 * S)
    assert last.current == span(T0 + 15 * S, T0 + 15 * S, "Mail", open=True)
    assert ledger.timeline() == [span(T0, T0 + 15 * S), last.current]


def test_a_switch_to_the_same_state_extends_the_interval() -> None:
    ledger = run([ev(T0), ev(T0 + 5 * S), ev(T0 + 12 * S)])
    assert ledger.timeline() == [span(T0, T0 + 12 * S, open=True)]


def test_a_heartbeat_whose_state_differs_acts_as_a_switch() -> None:
    ledger = run([ev(T0), hb(T0 + 10 * S, "Code", "Project X")])
    assert ledger.timeline() == [
        span(T0, T0 + 10 * S),
        span(T0 + 10 * S, T0 + 10 * S, "Code", "Project X", open=True),
    ]


def test_idle_and_workspace_index_are_part_of_the_state() -> None:
    ledger = run([ev(T0), ev(T0 + S, idle=True), ev(T0 + 2 * S, index=3)])
    assert [(iv.idle, iv.workspace_index) for iv in ledger.timeline()] == [
        (False, 0),
        (True, 0),
        (False, 3),
    ]


def test_a_second_switch_at_the_same_instant_restates_the_new_interval() -> None:
    ledger = Ledger()
    (applied,) = ledger.apply([batch(1, [ev(T0), ev(T0 + S, "Mail"), ev(T0 + S, "Web")])])
    assert applied.steps[-1].closed is None
    assert ledger.timeline() == [span(T0, T0 + S), span(T0 + S, T0 + S, "Web", open=True)]


def test_an_event_after_a_silence_closes_the_interval_at_its_last_event() -> None:
    later = T0 + 10 * S + LIMIT + 1
    ledger = Ledger()
    (applied,) = ledger.apply([batch(1, [ev(T0), hb(T0 + 10 * S), hb(later)])])
    assert applied.steps[-1].closed == span(T0, T0 + 10 * S)
    assert ledger.timeline() == [span(T0, T0 + 10 * S), span(later, later, open=True)]


def test_a_gap_of_exactly_the_limit_still_continues_the_interval() -> None:
    assert silence_limit_ms(HB) == LIMIT == 25_000
    ledger = run([ev(T0), hb(T0 + LIMIT)])
    assert ledger.timeline() == [span(T0, T0 + LIMIT, open=True)]


def test_close_if_silent_closes_at_the_last_event_only_past_the_limit() -> None:
    state = run([ev(T0), hb(T0 + 10 * S)]).states["m1"]
    same, none = close_if_silent(state, T0 + 10 * S + LIMIT)
    assert (same, none) == (state, None)
    after, closed = close_if_silent(state, T0 + 10 * S + LIMIT + 1)
    assert closed == span(T0, T0 + 10 * S)
    assert after.current is None
    assert after.last == closed


def test_a_late_event_within_the_limit_continues_an_interval_closed_by_silence() -> None:
    """The intervals do not depend on when the aggregator looked at its clock."""
    ledger = Ledger()
    ledger.apply([batch(1, [ev(T0), hb(T0 + 10 * S)])])
    assert ledger.close_silent(T0 + H) == [span(T0, T0 + 10 * S)]
    ledger.apply([batch(2, [hb(T0 + 20 * S)])])
    assert ledger.timeline() == [span(T0, T0 + 20 * S, open=True)]


def test_an_event_older_than_the_last_one_is_refused() -> None:
    state = run([ev(T0), hb(T0 + 10 * S)]).states["m1"]
    with pytest.raises(ValueError, match="older than the last applied event"):
        advance(state, hb(T0 + 5 * S), HB)


def test_an_out_of_order_batch_plans_nothing() -> None:
    ledger = run([ev(T0)])
    before = (dict(ledger.intervals), dict(ledger.days), dict(ledger.states))
    with pytest.raises(ValueError, match="older"):
        ledger.apply([batch(2, [hb(T0 + S)]), batch(3, [hb(T0 + 2 * S), hb(T0 + S)])])
    assert (ledger.intervals, ledger.days, ledger.states) == before


def test_batches_at_or_below_the_watermark_are_skipped() -> None:
    ledger = Ledger()
    ledger.apply([batch(1, [ev(T0)]), batch(2, [hb(T0 + 10 * S)])])
    before = (dict(ledger.intervals), dict(ledger.days))
    assert ledger.apply([batch(2, [hb(T0 + 10 * S)]), batch(1, [ev(T0)])]) == []
    assert (ledger.intervals, ledger.days) == before
    assert ledger.states["m1"].stored_through == 2


def test_a_session_across_midnight_counts_toward_both_days() -> None:
    start = local_ms("2026-06-01 23:30")
    ledger = run([ev(start, "Code", "X"), *heartbeats(start, start + H, "Code", "X")])
    key = DayKey("m1", "", "X", "Code", 0, False)
    assert ledger.days == {
        replace(key, day="2026-06-01"): (30 * MIN, 1),
        replace(key, day="2026-06-02"): (30 * MIN, 1),
    }


@pytest.mark.parametrize(
    ("day", "hours"), [("2026-03-29", 23), ("2026-10-25", 25), ("2026-06-01", 24)]
)
def test_a_whole_berlin_day_of_heartbeats_rolls_up_to_its_length(day: str, hours: int) -> None:
    start = local_ms(f"{day} 00:00")
    ledger = run([ev(start), *heartbeats(start, start + hours * H, every=10 * S)])
    assert ledger.days[DayKey("m1", day, "", "Code", 0, False)] == (hours * H, 1)
    assert sum(ms for ms, _ in ledger.days.values()) == hours * H


def test_the_interval_takes_the_event_time_zone_else_the_machine_one() -> None:
    m = machine(tz="Asia/Tokyo")
    plan = plan_apply({"m1": MachineState(m)}, [batch(1, [ev(T0, tz="")], m)])
    assert plan.intervals[("m1", T0)].time_zone == "Asia/Tokyo"


# -- properties over random sessions -------------------------------------------------------


def _silences(events: list[DeskEvent]) -> int:
    gaps = (b.time_ms - a.time_ms for a, b in itertools.pairwise(events))
    return sum(g for g in gaps if g > LIMIT)


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_intervals_never_overlap_and_cover_the_session_minus_silences(
    events: list[DeskEvent],
) -> None:
    timeline = run(events).timeline()
    for a, b in itertools.pairwise(timeline):
        assert a.end_ms <= b.start_ms
        assert not a.open
    assert all(iv.start_ms <= iv.end_ms for iv in timeline)
    covered = events[-1].time_ms - events[0].time_ms
    assert sum(iv.duration_ms for iv in timeline) == covered - _silences(events)
    assert timeline[-1].open
    assert timeline[-1].end_ms == events[-1].time_ms


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_rollups_equal_the_intervals_split_by_local_day(events: list[DeskEvent]) -> None:
    ledger = run(events)
    expected: Counter[DayKey] = Counter()
    pieces: Counter[DayKey] = Counter()
    for iv in ledger.timeline():
        for piece in split_days(iv.start_ms, iv.end_ms, iv.time_zone):
            key = DayKey("m1", piece.day.isoformat(), iv.task, iv.workspace,
                         iv.workspace_index, iv.idle)  # fmt: skip
            expected[key] += piece.ms
            pieces[key] += 1
    assert {k: v for k, v in ledger.days.items() if v != (0, 0)} == {
        k: (expected[k], pieces[k]) for k in expected
    }


@settings(max_examples=200, deadline=None)
@given(sessions(), st.integers(1, 7), st.randoms(use_true_random=False))
def test_batching_replays_and_silence_checks_change_nothing(
    events: list[DeskEvent], size: int, rnd: random.Random
) -> None:
    """Cutting the session into batches, applying some batches twice, replaying everything
    and checking for silence at any moment give the same intervals and rollups."""
    whole = run(events)
    ledger = Ledger()
    cut = batches(events, size)
    for i, b in enumerate(cut):
        ledger.apply(cut[max(0, i - rnd.randint(0, 2)) : i + 1])  # earlier batches again
        if rnd.random() < 0.3:
            ledger.close_silent(b.events[-1].time_ms + rnd.randint(0, 2 * LIMIT))
    ledger.apply(cut)
    reopened = {
        k: msgspec.structs.replace(iv, open=whole.intervals[k].open)
        for k, iv in ledger.intervals.items()
    }
    assert reopened == whole.intervals
    assert ledger.days == whole.days
    assert ledger.states["m1"].stored_through == len(cut)


def test_dst_sessions_hold_the_properties_on_both_change_days() -> None:
    for day, hours in (("2026-03-29", 23), ("2026-10-25", 25)):
        start = local_ms(f"{day} 00:00")
        events = [ev(start)]
        t = start
        rnd = random.Random(day)
        while t < start + hours * H:
            t = min(t + rnd.choice([HB, HB, 3 * S, LIMIT + S]), start + hours * H)
            events.append(ev(t, rnd.choice(["Code", "Mail"]), kind=rnd.choice(list(EventKind))))
        ledger = run(events, size=17)
        total = sum(ms for k, (ms, _) in ledger.days.items() if k.day == day)
        assert total == hours * H - _silences(events)
        assert {k.day for k in ledger.days} == {day}


# -- the batch builder against the one-event reference ----------------------------------------


def _fold(
    state: MachineState, events: list[DeskEvent], heartbeat_ms: int
) -> tuple[
    MachineState, list[Step], dict[tuple[str, int], Interval], dict[DayKey, tuple[int, int]]
]:
    """``advance`` applied to each event in turn: the reference ``apply_events`` must equal."""
    steps, intervals, days = [], {}, {}
    for event in events:
        out = advance(state, event, heartbeat_ms)
        state = out.state
        steps.append(out.step)
        for iv in (out.step.closed, out.step.current):
            if iv is not None:
                intervals[(iv.machine, iv.start_ms)] = iv
        for d in out.deltas:
            ms, pieces = days.get(d.key, (0, 0))
            days[d.key] = (ms + d.ms, pieces + d.pieces)
    return state, steps, intervals, days


@settings(max_examples=300, deadline=None)
@given(sessions(), st.integers(0, 60), st.booleans(), st.sampled_from([HB, 60_000]))
def test_the_batch_builder_equals_advance_event_by_event(
    events: list[DeskEvent], cut: int, silent: bool, heartbeat_ms: int
) -> None:
    """Same state, steps, intervals (last version of each) and summed rollups, from any state:
    fresh, after part of the session, or with the last interval closed by silence."""
    state = MachineState(machine())
    done, rest = events[:cut], events[cut:]
    if done:
        state = _fold(state, done, heartbeat_ms)[0]
        if silent:
            state, _ = close_if_silent(state, done[-1].time_ms + 10 * H)
    if not rest:
        return
    want_state, want_steps, want_intervals, want_days = _fold(state, rest, heartbeat_ms)
    days: dict[DayKey, tuple[int, int]] = {}
    got_state, got_steps, written = apply_events(state, rest, heartbeat_ms, days)
    assert got_state == want_state
    assert got_steps == want_steps
    assert {(iv.machine, iv.start_ms): iv for iv in written} == want_intervals
    assert days == want_days


def test_the_batch_builder_refuses_an_event_older_than_the_last() -> None:
    with pytest.raises(ValueError, match="older than the last applied event"):
        apply_events(MachineState(machine()), [ev(T0), hb(T0 - S)], HB, {})


def test_the_batch_builder_sums_a_day_of_heartbeats_into_one_rollup_row() -> None:
    days: dict[DayKey, tuple[int, int]] = {}
    start = local_ms("2026-06-01 23:00")
    events = [ev(start), *heartbeats(start, start + 2 * H)]
    apply_events(MachineState(machine()), events, HB, days)
    assert days == {
        DayKey("m1", "2026-06-01", "", "Code", 0, False): (H, 1),
        DayKey("m1", "2026-06-02", "", "Code", 0, False): (H, 1),
    }
