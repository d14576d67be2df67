"""Our heartbeat merge decides exactly as aw-core's ``heartbeat_merge`` (run in the
ActivityWatch venv) on thousands of cases around every boundary, and reads and writes
timestamps and durations as aw-core does."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.domains.deskmeter.aw_json import event_json, iso, parse_event, seconds
from sysmonstm.domains.deskmeter.aw_merge import heartbeat_apply, heartbeat_merge, seconds_to_us
from sysmonstm.domains.deskmeter.aw_store import AwEvent
from sysmonstm.errors import InvalidInputError
from tests.deskmeter.aw_venv import run_aw_code

AW_MERGE = """
import json, sys
from aw_core.models import Event
from aw_transform.heartbeats import heartbeat_merge
out = []
for last, beat, pulsetime in json.load(sys.stdin):
    merged = heartbeat_merge(Event(**last), Event(**beat), pulsetime)
    out.append(None if merged is None else merged.to_json_dict())
json.dump(out, sys.stdout)
"""

BASE = "2024-03-10T12:00:00"
DATAS: list[dict[str, Any]] = [
    {"app": "a"},
    {"app": "b"},
    {"app": "a", "n": 1},
    {"n": 1.0, "app": "a"},
    {"app": "a", "nested": {"x": [1, 2]}},
]


def stamp(rng: random.Random) -> str:
    """A time near BASE: whole seconds, milliseconds or microseconds, sometimes an offset."""
    seconds_off = rng.choice([0, 1, 5, 10, 15, 20, 30])
    fraction = rng.choice(["", ".5", ".001", ".999", ".1234", ".000001", ".9999995"])
    zone = rng.choice(["+00:00", "Z", "+02:00", "-05:30"])
    if zone in ("+02:00", "-05:30"):
        # the same instant written in another zone
        hour = 14 if zone == "+02:00" else 6
        minute = 0 if zone == "+02:00" else 30
        return f"2024-03-10T{hour:02}:{minute:02}:{seconds_off:02}{fraction}{zone}"
    return f"{BASE[:-2]}{seconds_off:02}{fraction}{zone}"


def cases(n: int, seed: int = 4) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
    rng = random.Random(seed)
    durations = [0, 0.5, 1, 5, 10, 10.0005, 4.9999995, -1, -0.001, 0.0000015, 3.25]
    pulsetimes = [0, 0.5, 1, 2.5, 5, 10, 1.0000005, 15.001, 60]
    out = []
    for _ in range(n):
        last = {
            "timestamp": stamp(rng),
            "duration": rng.choice(durations),
            "data": rng.choice(DATAS),
        }
        data = last["data"] if rng.random() < 0.6 else rng.choice(DATAS)
        beat = {"timestamp": stamp(rng), "duration": rng.choice(durations), "data": data}
        out.append((last, beat, rng.choice(pulsetimes)))
    return out


def test_merge_decides_as_aw_core(tmp_path: Path) -> None:
    """Merged or not, and the merged duration to the microsecond, as aw-core says, for
    3000 cases (boundaries inclusive, negative durations, data equality 1 == 1.0)."""
    batch = cases(3000)
    theirs = run_aw_code(AW_MERGE, batch, tmp_path)
    merged = 0
    for (last, beat, pulsetime), expected in zip(batch, theirs, strict=True):
        ours = heartbeat_merge(
            parse_event(last), parse_event(beat), seconds_to_us(pulsetime, "pulsetime")
        )
        got = None if ours is None else event_json(ours)
        if expected is not None:
            merged += 1
            expected["id"] = None
        assert got == expected, (last, beat, pulsetime)
    assert 300 < merged < 2700  # both outcomes are well represented


def test_apply_stores_a_new_event_unless_merged() -> None:
    """``heartbeat_apply`` says replace (merged, the last event's id kept) or add (no id)."""
    last = AwEvent(1_000, 2_000_000, {"a": 1}, id=7)
    merged, replaces = heartbeat_apply(last, AwEvent(4_000, 0, {"a": 1}, id=99), 1_000_000)
    assert (merged, replaces) == (AwEvent(1_000, 3_000_000, {"a": 1}, id=7), True)
    added, replaces = heartbeat_apply(last, AwEvent(4_001, 0, {"a": 1}, id=99), 1_000_000)
    assert (added, replaces) == (AwEvent(4_001, 0, {"a": 1}), False)
    first, replaces = heartbeat_apply(None, AwEvent(5, 0, {}), 0)
    assert (first, replaces) == (AwEvent(5, 0, {}), False)


def test_times_are_written_as_aw_core_writes_them() -> None:
    """isoformat in UTC (no fraction when whole), total_seconds as floats."""
    assert iso(1_710_072_000_000_000) == "2024-03-10T12:00:00+00:00"
    assert iso(1_710_072_000_123_000) == "2024-03-10T12:00:00.123000+00:00"
    assert iso(-1) == "1969-12-31T23:59:59.999999+00:00"
    assert seconds(0) == 0.0
    assert seconds(1_500_000) == 1.5
    naive = parse_event({"timestamp": "2024-03-10T12:00:00.9999"})
    assert naive == AwEvent(1_710_072_000_999, 0, {})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"duration": 1}, "timestamp is required"),
        ({"timestamp": "yesterday"}, "not an ISO 8601"),
        ({"timestamp": 5}, "date-time string"),
        ({"timestamp": BASE, "duration": "1"}, "number of seconds"),
        ({"timestamp": BASE, "duration": True}, "number of seconds"),
        ({"timestamp": BASE, "duration": 1e300}, "out of range"),
        ({"timestamp": BASE, "data": [1]}, "must be a JSON object"),
        ({"timestamp": BASE, "extra": 1}, "unknown keys"),
        ({"timestamp": BASE, "id": "x"}, "must be an integer"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_event(value)


def test_non_finite_pulsetime_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="finite"):
        seconds_to_us(float("inf"), "pulsetime")
