"""Properties over random value streams: lifecycle grammar, no flapping, tick independence."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from sysmonstm.rules import AlertEvent
from tests.rules.support import Driver, rule_toml

# Mostly values near the threshold (80) and clear (70) levels, where the transitions are.
values = st.one_of(
    st.sampled_from([60.0, 70.0, 75.0, 80.0, 85.0, 95.0]),
    st.floats(min_value=0, max_value=100, allow_nan=False),
)
steps = st.lists(
    st.tuples(values, st.integers(min_value=0, max_value=5), st.booleans()),
    min_size=1,
    max_size=80,
)
durations = st.sampled_from([0, 3])


def run(
    step_list: list[tuple[float, int, bool]],
    for_: int,
    keep: int,
    *,
    ticks: bool,
    window: bool = False,
) -> list[AlertEvent]:
    """Feed the values ``gap`` seconds apart, ticking halfway through a gap when asked."""
    extra = {"window": {"agg": "max", "seconds": 4}} if window else {}
    d = Driver(rule_toml(op="gt", threshold=80, clear=70, for_=for_, keep_firing_for=keep, **extra))
    t = 0.0
    for value, gap, tick in step_list:
        if ticks and tick and gap:
            d.tick(t + gap / 2)
        t += gap
        d.at(t, value)
    d.tick(t + 10)
    return d.events


def check_grammar(events: list[AlertEvent]) -> None:
    by_id: dict[str, list[str]] = defaultdict(list)
    for e in events:
        by_id[e.id].append(str(e.state))
    allowed = (
        ["pending", "cancelled"],
        ["pending", "firing", "resolved"],
        ["pending", "firing"],
        ["pending"],
        ["firing", "resolved"],
        ["firing"],
    )
    for seq in by_id.values():
        assert seq in allowed, seq
    # one group: at most one active instance at a time, so firings alternate with endings
    live = None
    for e in events:
        if str(e.state) in ("pending", "firing"):
            assert live in (None, e.id)
            live = e.id
        else:
            assert live == e.id
            live = None


@settings(max_examples=300, deadline=None)
@given(steps, durations, durations, st.booleans(), st.booleans())
def test_every_instance_follows_the_lifecycle(
    step_list: list[tuple[float, int, bool]], for_: int, keep: int, ticks: bool, window: bool
) -> None:
    """No two firings without an ending between them; transitions bounded by the inputs."""
    events = run(step_list, for_, keep, ticks=ticks, window=window)
    check_grammar(events)
    assert len(events) <= 2 * (2 * len(step_list) + 1)
    times = [e.time_ms for e in events]
    assert times == sorted(times)


@settings(max_examples=300, deadline=None)
@given(steps, durations, durations)
def test_outcome_does_not_depend_on_how_often_tick_runs(
    step_list: list[tuple[float, int, bool]], for_: int, keep: int
) -> None:
    quiet = [e.to_payload() for e in run(step_list, for_, keep, ticks=False)]
    ticked = [e.to_payload() for e in run(step_list, for_, keep, ticks=True)]
    assert quiet == ticked


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=70.001, max_value=100, allow_nan=False), min_size=1, max_size=60)
)
def test_values_between_clear_and_threshold_never_resolve(tail: list[float]) -> None:
    d = Driver(rule_toml(op="gt", threshold=80, clear=70))
    d.at(0, 90)
    d.series(tail, start=1)
    assert [str(e.state) for e in d.events] == ["firing"]
