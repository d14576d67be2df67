"""The engine's lifecycle: operators, for, hysteresis, keep_firing_for, absence, windows."""

from __future__ import annotations

from typing import Any

import pytest

from sysmonstm.errors import ConfigError
from sysmonstm.rules import Engine, Observation, Operator, Rule
from tests.rules.support import T0, Driver, ms, rule_toml, states


@pytest.mark.parametrize(
    ("op", "threshold", "value", "fires"),
    [
        ("gt", 80, 80.5, True),
        ("gt", 80, 80, False),
        ("gte", 80, 80, True),
        ("gte", 80, 79.9, False),
        ("lt", 10, 9, True),
        ("lt", 10, 10, False),
        ("lte", 10, 10, True),
        ("lte", 10, 10.1, False),
        ("eq", "down", "down", True),
        ("eq", "down", "up", False),
        ("eq", 5, 5.0, True),
        ("eq", 5, "5", False),
        ("eq", True, True, True),
        ("eq", 1, True, False),
        ("ne", "up", "down", True),
        ("ne", "up", "up", False),
        ("ne", 5, "5", True),
        ("in", ["DE", "FR"], "FR", True),
        ("in", ["DE", "FR"], "US", False),
        ("in", [1, 2], 2.0, True),
        ("not_in", ["DE", "FR"], "US", True),
        ("not_in", ["DE", "FR"], "DE", False),
        ("between", [10, 20], 10, True),
        ("between", [10, 20], 20, True),
        ("between", [10, 20], 20.5, False),
        ("between", [10, 20], 9, False),
    ],
    ids=repr,
)
def test_operator_decides_firing(op: str, threshold: Any, value: Any, fires: bool) -> None:
    """Each operator fires exactly when its comparison holds (eq/ne/in are type-strict)."""
    d = Driver(rule_toml(op=op, threshold=threshold))
    assert states(d.at(0, value)) == (["firing"] if fires else [])


@pytest.mark.parametrize("value", ["high", None, [1, 2], float("nan"), True])
def test_numeric_operator_ignores_values_that_are_not_numbers(value: Any) -> None:
    d = Driver(rule_toml(op="gt", threshold=1))
    assert d.at(0, v=value) == []
    assert d.engine.stats().groups == 0


def test_for_zero_fires_at_once_without_pending() -> None:
    d = Driver(rule_toml(op="gt", threshold=80))
    events = d.at(0, 90)
    assert states(events) == ["firing"]
    assert events[0].started_ms == events[0].fired_ms == T0


def test_for_goes_pending_then_firing_at_the_deadline_on_tick() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, for_=60))
    assert states(d.at(0, 90)) == ["pending"]
    assert d.series([91] * 30, start=1) == []
    assert d.tick(59.5) == []
    fired = d.tick(61)
    assert states(fired) == ["firing"]
    assert fired[0].fired_ms == ms(60)
    assert fired[0].started_ms == T0
    assert fired[0].id == d.events[0].id


def test_for_fires_on_the_observation_past_the_deadline_without_tick() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, for_=60))
    d.series([90] * 60)
    events = d.at(60, 95)
    assert states(events) == ["firing"]
    assert events[0].fired_ms == ms(60)


def test_for_is_cancelled_when_the_condition_lapses_early() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, for_=60))
    d.series([90] * 30)
    events = d.at(30, 50)
    assert states(events) == ["cancelled"]
    assert events[0].resolved_ms is None
    assert d.tick(200) == []
    assert d.engine.active() == []


def test_value_holds_until_the_next_observation() -> None:
    """A pending alert whose deadline passes before a lower value arrives fired in between."""
    d = Driver(rule_toml(op="gt", threshold=80, for_=60))
    d.at(0, 90)
    assert states(d.at(300, 10)) == ["firing", "resolved"]
    assert [e.time_ms for e in d.events[1:]] == [ms(60), ms(300)]


def test_hysteresis_oscillation_between_clear_and_threshold_never_flaps() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, clear=70))
    d.series([81, 75, 82, 71, 79, 85, 70.5, 80, 90, 72, 65, 75, 79])
    assert states(d.events) == ["firing", "resolved"]
    assert d.events[1].time_ms == ms(10)  # the first value at or below 70


def test_without_clear_a_firing_alert_resolves_below_the_threshold() -> None:
    d = Driver(rule_toml(op="gt", threshold=80))
    d.series([81, 79, 81])
    assert states(d.events) == ["firing", "resolved", "firing"]
    assert d.events[0].id != d.events[2].id


def test_lt_clear_sits_above_the_threshold() -> None:
    d = Driver(rule_toml(op="lt", threshold=10, clear=20))
    d.series([5, 15, 19, 20])
    assert states(d.events) == ["firing", "resolved"]


def test_between_clear_band_holds_a_firing_alert() -> None:
    d = Driver(rule_toml(op="between", threshold=[40, 60], clear=[30, 70]))
    d.series([50, 65, 35, 70, 71])
    assert states(d.events) == ["firing", "resolved"]
    assert d.events[1].value == 71


def test_pending_is_cancelled_between_clear_and_threshold() -> None:
    """Hysteresis keeps only firing alerts; a pending one needs the threshold itself."""
    d = Driver(rule_toml(op="gt", threshold=80, clear=70, for_=10))
    d.series([85, 75])
    assert states(d.events) == ["pending", "cancelled"]


def test_keep_firing_for_outlives_the_clear_condition() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, keep_firing_for=30))
    d.series([90, 50, 50])
    assert states(d.events) == ["firing"]
    assert d.tick(30) == []
    resolved = d.tick(31.5)
    assert states(resolved) == ["resolved"]
    assert resolved[0].resolved_ms == ms(31)


def test_keep_firing_for_continues_when_the_condition_returns() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, keep_firing_for=30))
    d.series([90, 50, 95])
    assert d.tick(100) == []
    d.at(100, 50)
    assert d.tick(129) == []
    assert states(d.tick(130)) == ["resolved"]
    assert states(d.events) == ["firing", "resolved"]


def test_absent_fires_when_a_seen_group_goes_silent() -> None:
    d = Driver(rule_toml(op="absent", absent_for=30, group_by=["source"], message="{source} quiet"))
    d.at(0, 1, source="web1", key="web1")
    assert d.tick(29.9) == []
    fired = d.tick(45)
    assert states(fired) == ["firing"]
    assert fired[0].fired_ms == ms(30)
    assert fired[0].value is None
    assert fired[0].message == "web1 quiet"
    assert fired[0].to_payload()["group"] == {"source": "web1"}
    assert d.tick(100) == []
    back = d.at(101, 2, source="web1", key="web1")
    assert states(back) == ["resolved"]
    assert back[0].resolved_ms == ms(101)
    assert d.tick(120) == []


def test_absent_counts_only_observations_carrying_the_field() -> None:
    d = Driver(rule_toml(op="absent", absent_for=30))
    d.at(0, 1)
    d.at(20, other=3)
    assert states(d.tick(30)) == ["firing"]


def test_absent_never_fires_for_a_group_never_seen() -> None:
    d = Driver(rule_toml(op="absent", absent_for=30))
    assert d.tick(1000) == []


def test_absent_runs_on_the_engine_clock_not_observation_time() -> None:
    d = Driver(rule_toml(op="absent", absent_for=30))
    d.clock.set(ms(3600))
    d.engine.observe("t.x", [Observation("h1", T0, {"v": 1})])  # an hour-old sample
    assert d.tick(3629) == []
    assert states(d.tick(3630)) == ["firing"]


def test_group_by_merges_keys_and_reports_the_group() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, group_by=["source"]))
    d.at(0, 90, key="web1|cpu=0", source="web1")
    assert d.at(1, 95, key="web1|cpu=1", source="web1") == []
    fired = d.events[0]
    assert fired.key == "web1"
    assert fired.to_payload()["group"] == {"source": "web1"}
    assert d.at(2, 99, key="db1|cpu=0", source="db1")[0].key == "db1"


def test_group_by_several_fields_joins_the_key() -> None:
    d = Driver(rule_toml(op="gt", threshold=1, group_by=["source", "mount"]))
    events = d.at(0, 2, source="web1", mount="/var")
    assert events[0].key == "web1|/var"
    assert dict(events[0].group) == {"source": "web1", "mount": "/var"}


def test_observation_without_a_group_by_field_is_ignored() -> None:
    d = Driver(rule_toml(op="gt", threshold=1, group_by=["source"]))
    assert d.at(0, 2) == []


def test_where_filters_observations_by_glob() -> None:
    d = Driver(rule_toml(op="gt", threshold=90, where={"mount": ["/", "/var*"]}))
    assert d.at(0, 95, key="a", mount="/boot") == []
    assert d.at(0, 95, key="b") == []
    assert [e.key for e in d.at(0, 95, key="c", mount="/")] == ["c"]
    assert [e.key for e in d.at(0, 95, key="d", mount="/var/lib")] == ["d"]


def test_where_matches_numbers_by_their_text() -> None:
    d = Driver(rule_toml(op="gt", threshold=1, where={"cpu": "1*"}))
    assert d.at(0, 2, key="a", cpu=3) == []
    assert len(d.at(0, 2, key="b", cpu=12)) == 1


def test_message_renders_fields_dotted_names_and_specs() -> None:
    d = Driver(
        rule_toml(
            op="gt",
            threshold=80,
            field="cpu.used",
            message="{host}: {cpu.used:.1f}% > {threshold:.0f} ({rule}, {state})",
        )
    )
    fields: dict[str, Any] = {"host": "web1", "cpu.used": 91.26}
    events = d.at(0, **fields)
    assert events[0].message == "web1: 91.3% > 80 (r, firing)"


def test_message_with_a_field_missing_at_run_time_falls_back_to_the_template() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, message="CPU on {host} at {value:.0f}%"))
    assert d.at(0, 90)[0].message == "CPU on {host} at {value:.0f}%"


def test_windowed_avg_fires_on_the_mean() -> None:
    d = Driver(rule_toml(op="gt", threshold=50, window={"agg": "avg", "seconds": 10}))
    d.series([40, 60, 40, 60, 40])
    assert d.events == []
    assert states(d.at(5, 90)) == ["firing"]
    assert d.events[0].value == pytest.approx(330 / 6)


def test_count_window_is_a_velocity_rule_per_group() -> None:
    d = Driver(
        rule_toml(
            op="gt",
            threshold=5,
            field=None,
            group_by=["card"],
            window={"agg": "count", "seconds": 60},
            severity="critical",
        )
    )
    for i in range(5):
        d.at(i * 10, card="c1", key=f"tx{i}")
        d.at(i * 10, card="c2", key=f"u{i}")
    assert d.events == []
    fired = d.at(55, card="c1", key="tx5")
    assert states(fired) == ["firing"]
    assert (fired[0].key, fired[0].value) == ("c1", 6.0)
    assert [e.key for e in d.engine.active()] == ["c1"]
    assert d.tick(59.9) == []
    resolved = d.tick(60)  # the tx at 0 s leaves the window: 5 remain, not above 5
    assert states(resolved) == ["resolved"]
    assert resolved[0].value == 5.0


def test_count_window_resolves_on_tick_as_samples_leave() -> None:
    d = Driver(rule_toml(op="gte", threshold=3, field=None, window={"agg": "count", "seconds": 10}))
    d.series([None] * 3)
    assert states(d.events) == ["firing"]
    assert states(d.tick(11)) == ["resolved"]


def test_count_window_lt_fires_by_decay_alone() -> None:
    d = Driver(rule_toml(op="lt", threshold=1, field=None, window={"agg": "count", "seconds": 10}))
    assert d.at(0) == []
    assert d.tick(5) == []
    assert states(d.tick(10)) == ["firing"]


def test_rate_window_fires_on_a_fast_counter() -> None:
    d = Driver(rule_toml(op="gt", threshold=100, window={"agg": "rate", "seconds": 30}))
    d.series([0, 50, 100, 150])
    assert d.events == []
    d.series([400, 650], start=4)
    assert states(d.events) == ["firing"]


def test_late_observation_counts_at_the_groups_newest_time() -> None:
    d = Driver(rule_toml(op="gt", threshold=80, for_=10))
    d.at(20, 90)
    d.at(5, 95)  # late: treated as arriving at 20 s
    assert states(d.tick(30)) == ["firing"]
    assert d.events[-1].fired_ms == ms(30)


def test_for_runs_on_a_skewed_source_clock() -> None:
    """A source an hour behind is judged on its own clock, advanced by elapsed time."""
    d = Driver(rule_toml(op="gt", threshold=80, for_=60))
    d.clock.set(ms(3600))
    d.engine.observe("t.x", [Observation("h1", T0, {"v": 90})])
    assert d.tick(3659) == []
    fired = d.tick(3661)
    assert fired[0].fired_ms == T0 + 60_000


def test_observation_without_the_rules_field_touches_nothing() -> None:
    d = Driver(rule_toml(op="gt", threshold=80))
    d.at(0, other=99)
    d.at(0, 90, topic="u.x")
    assert d.engine.stats().groups == 0


def test_transitions_come_out_in_rule_order() -> None:
    toml = rule_toml(name="b", op="gt", threshold=1, field="y") + rule_toml(
        name="a", op="gt", threshold=1, field="x"
    )
    d = Driver(toml)
    assert [e.rule for e in d.at(0, x=2, y=2)] == ["b", "a"]


def test_alert_ids_are_deterministic_across_engines() -> None:
    runs = []
    for _ in range(2):
        d = Driver(rule_toml(op="gt", threshold=80))
        d.series([90, 50, 90])
        runs.append([e.id for e in d.events])
    assert runs[0] == runs[1]
    assert runs[0][0] == runs[0][1] != runs[0][2]


def test_idle_groups_are_evicted_but_groups_with_alerts_are_kept() -> None:
    d = Driver(
        rule_toml(op="gt", threshold=80, window={"agg": "max", "seconds": 60}), idle_ms=60_000
    )
    for i in range(1000):
        d.at(0, 10, key=f"card{i}")
    d.at(0, 99, key="hot")
    assert d.engine.stats().groups == 1001
    d.tick(179)  # ttl = 2 * 60 s + 60 s
    assert d.engine.stats().groups == 1001
    d.tick(180)
    assert d.engine.stats().groups == 1
    assert [e.key for e in d.engine.active()] == ["hot"]


def test_group_cap_evicts_idle_groups_then_refuses() -> None:
    d = Driver(rule_toml(op="gt", threshold=80), max_groups=3)
    for i in range(10):
        d.at(i, 10, key=f"k{i}")
    assert d.engine.stats().groups == 3
    for i in range(3):
        d.at(20, 90, key=f"f{i}")
    assert d.engine.stats().groups == 3
    assert d.at(21, 99, key="new") == []
    assert d.engine.stats().refused == 1


def test_memory_stays_bounded_under_unbounded_keys() -> None:
    """A stream of ever-new keys (card fingerprints) keeps a bounded number of groups."""
    d = Driver(
        rule_toml(
            op="gt",
            threshold=5,
            field=None,
            group_by=["card"],
            window={"agg": "count", "seconds": 60},
        ),
        idle_ms=60_000,
    )
    peak = 0
    for second in range(1200):
        d.at(second, card=f"c{second}")
        d.at(second, card=f"d{second}")
        d.tick(second)
        peak = max(peak, d.engine.stats().groups)
    assert peak <= 2 * 181
    assert d.events == []


def test_engine_refuses_inconsistent_or_duplicate_rules() -> None:
    good = Rule(name="a", topic="t.>", op=Operator.GT, field="v", threshold=1.0)
    with pytest.raises(ConfigError, match=r"'a'.*'name'.*duplicate"):
        Engine([good, good])
    with pytest.raises(ConfigError, match=r"'b'.*'topic'"):
        Engine([Rule(name="b", topic="t.>.x", op=Operator.GT, field="v", threshold=1.0)])
    with pytest.raises(ConfigError, match=r"'c'.*'threshold'"):
        Engine([Rule(name="c", topic="t.>", op=Operator.GT, field="v")])


def test_active_lists_pending_and_firing_alerts() -> None:
    d = Driver(
        rule_toml(name="slow", op="gt", threshold=80, for_=60)
        + rule_toml(name="fast", op="gt", threshold=80)
    )
    d.at(0, 90, key="b")
    d.at(0, 90, key="a")
    assert [(e.rule, e.key, str(e.state)) for e in d.engine.active()] == [
        ("slow", "a", "pending"),
        ("slow", "b", "pending"),
        ("fast", "a", "firing"),
        ("fast", "b", "firing"),
    ]
