"""Column-wise evaluation gives exactly what one-observation-at-a-time evaluation gives.

Random rule books (every operator, window, ``for``, ``clear``, ``keep_firing_for``,
``where``, and rules that stay row-wise: ``absent``, ``eq``, ``group_by``) over random
streams (several keys, NaN, missing, string, int and bool values, late samples, a clock
that jumps, ticks) are run twice: ``Engine(vectorize=False)`` observing one event at a time,
and the default engine deferring events in batches of random size. Transitions (every
field of their payloads, in order), active alerts and stats must be identical.
"""

from __future__ import annotations

import random
from dataclasses import astuple
from typing import Any

import pytest

from sysmonstm.rules import AlertEvent, Engine, Observation, parse_rules
from sysmonstm.rules.testing import ManualClock
from tests.rules.support import T0, rule_toml

AGGS = ("avg", "min", "max", "sum", "count", "rate")
KEYS = ("h1", "h2", "h3", "h4|disk=a", "h4|disk=b")


def random_rule(rng: random.Random, n: int) -> str:
    """One random rule named ``r<n>`` over field ``v`` or ``w``."""
    keys: dict[str, Any] = {"name": f"r{n}", "topic": rng.choice(["t.>", "t.x", "t.*"])}
    keys["field"] = rng.choice(["v", "v", "w"])
    kind = rng.random()
    if kind < 0.08:
        keys.update(op="absent", absent_for=rng.choice([2, 5]), field="v")
    elif kind < 0.14:
        keys.update(op="eq", threshold="down", field="s")
    else:
        numeric(rng, keys)
    return rule_toml(**keys)


def numeric(rng: random.Random, keys: dict[str, Any]) -> None:
    """Make ``keys`` a random numeric rule: operator, hysteresis, window, durations."""
    op = rng.choice(["gt", "gte", "lt", "lte", "between"])
    lo = rng.choice([20, 50, 80])
    keys.update(op=op, threshold=[lo, lo + 20] if op == "between" else lo)
    if rng.random() < 0.4:
        above = op in ("gt", "gte")
        keys["clear"] = [lo - 10, lo + 30] if op == "between" else lo - 10 if above else lo + 10
    if rng.random() < 0.5:
        agg = rng.choice(AGGS)
        keys["window"] = {"agg": agg, "seconds": rng.choice([2, 5, 10])}
        if agg == "count":
            keys["threshold"] = [1, 3] if op == "between" else rng.choice([1, 2, 4])
            keys.pop("clear", None)
            if rng.random() < 0.3:
                keys.pop("field")
    for key, chance, choices in (
        ("for_", 0.4, [1, 3]),
        ("keep_firing_for", 0.3, [1, 2]),
        ("where", 0.25, [{"disk": "a"}, {"disk": "*"}]),
        ("group_by", 0.1, [["host"]]),
    ):
        if rng.random() < chance:
            keys[key] = rng.choice(choices)


def random_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.03:
        return float("nan")
    if roll < 0.05:
        return None
    if roll < 0.06:
        return "12"
    if roll < 0.07:
        return True
    if roll < 0.12:
        return rng.randrange(0, 120)
    return rng.uniform(0, 120)


def random_stream(rng: random.Random, steps: int) -> list[tuple[str, Any]]:
    """("obs", (topic, [observations], clock)) and ("tick", clock) steps."""
    out: list[tuple[str, Any]] = []
    t = T0
    clock = T0
    for _ in range(steps):
        if rng.random() < 0.08:
            clock += rng.choice([500, 3000, 20_000])
            out.append(("tick", clock))
            continue
        t += rng.choice([0, 200, 1000, 1000, 4000])
        clock = max(clock, t) + rng.choice([0, 0, 300, -2000])
        obs = []
        for key in rng.sample(KEYS, rng.randrange(1, len(KEYS) + 1)):
            fields: dict[str, Any] = {"host": key.split("|")[0]}
            if "|" in key:
                fields["disk"] = key.rsplit("=", 1)[1]
            for name in ("v", "w"):
                if rng.random() < 0.9:
                    fields[name] = random_value(rng)
            if rng.random() < 0.2:
                fields["s"] = rng.choice(["up", "down"])
            late = rng.random() < 0.05
            obs.append(Observation(key, t - (3000 if late else 0), fields))
        out.append(("obs", (rng.choice(["t.x", "t.y"]), obs, clock)))
    return out


def payloads(events: list[AlertEvent]) -> list[dict[str, Any]]:
    return [e.to_payload() for e in events]


def run_both(
    seed: int, rules: int = 12, steps: int = 400, **options: Any
) -> tuple[list[AlertEvent], Engine, Engine]:
    rng = random.Random(seed)
    book = "\n".join(random_rule(rng, n) for n in range(rules))
    parsed = parse_rules(book)
    row_clock, col_clock = ManualClock(T0), ManualClock(T0)
    row = Engine(parsed, clock=row_clock, vectorize=False, **options)
    col = Engine(parsed, clock=col_clock, **options)
    assert any(rt.columnar for rt in col._runtimes)  # the test exercises the column path
    expected: list[AlertEvent] = []
    got: list[AlertEvent] = []
    batch = rng.randrange(1, 30)
    pending = 0
    for kind, step in random_stream(rng, steps):
        if kind == "tick":
            row_clock.set(step)
            col_clock.set(step)
            expected += row.tick()
            got += col.tick()
            pending = 0
        else:
            topic, obs, clock = step
            row_clock.set(clock)
            col_clock.set(clock)
            expected += row.observe(topic, obs)
            col.defer(topic, obs)
            pending += 1
            if pending >= batch:
                got += col.flush()
                pending = 0
                batch = rng.randrange(1, 30)
        if rng.random() < 0.02:  # a look at the state settles what is deferred
            assert payloads(row.active()) == payloads(col.active())
    got += col.flush()
    assert payloads(got) == payloads(expected)
    assert payloads(col.active()) == payloads(row.active())
    assert astuple(col.stats()) == astuple(row.stats())
    return expected, row, col


@pytest.mark.parametrize("seed", range(40))
def test_columns_match_rows_on_random_books_and_streams(seed: int) -> None:
    """Deferred, batched column evaluation reproduces row evaluation exactly."""
    events, _, _ = run_both(seed)
    if seed == 0:
        assert events  # the books do fire


@pytest.mark.parametrize("seed", range(15))
def test_columns_match_rows_at_the_group_cap_and_with_evictions(seed: int) -> None:
    """Refusals, evictions past the cap and idle eviction happen to the same groups."""
    run_both(seed, max_groups=2, idle_ms=1000)


def test_columns_match_rows_over_many_keys() -> None:
    """Hundreds of groups per rule, long windows: the ring buffers regrow and compact."""
    rng = random.Random(7)
    book = "\n".join(
        rule_toml(
            name=f"w{i}",
            op="gt",
            threshold=60,
            clear=50,
            window={"agg": agg, "seconds": 300},
            for_=5,
        )
        for i, agg in enumerate(AGGS)
    )
    parsed = parse_rules(book)
    clock = ManualClock(T0)
    row = Engine(parsed, clock=clock, vectorize=False)
    col = Engine(parsed, clock=clock)
    expected: list[AlertEvent] = []
    got: list[AlertEvent] = []
    for step in range(400):
        clock.set(T0 + step * 1000)
        for k in range(0, 300, 7):
            obs = [Observation(f"k{k}", T0 + step * 1000, {"v": rng.uniform(0, 100)})]
            expected += row.observe("t.x", obs)
            col.defer("t.x", obs)
        got += col.flush()
    assert payloads(got) == payloads(expected)
    assert astuple(col.stats()) == astuple(row.stats())


def test_observe_is_defer_then_flush() -> None:
    """``observe`` returns what was deferred before it, then its own transitions."""
    parsed = parse_rules(rule_toml(op="gt", threshold=5))
    engine = Engine(parsed, clock=ManualClock(T0))
    engine.defer("t.x", [Observation("a", T0, {"v": 9.0})])
    assert engine.backlog == 1
    out = engine.observe("t.x", [Observation("b", T0, {"v": 9.0})])
    assert [e.key for e in out] == ["a", "b"]
    assert engine.backlog == 0
