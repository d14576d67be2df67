"""The metrics extractor: one observation per tag set per frame, fields named for rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sysmonstm.domains.metrics.observe import metrics_observations
from sysmonstm.errors import InvalidInputError
from sysmonstm.events.envelope import make_envelope
from sysmonstm.rules import Observation

SERIES = [
    'cpu.core.used{cpu="0"}',
    'cpu.core.used{cpu="1"}',
    "cpu.used",
    'disk.used_pct{mount="/"}',
    "mem.used_pct",
    'net.rx_bps{iface="eth0"}',
]


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": "m-1",
        "host": "web1",
        "labels": {"env": "prod", "cpu": "x"},
        "seq": 3,
        "interval_ms": 1000,
        "series": SERIES,
        "times_ms": [1000, 2000],
        "values": [[10.0, 20.0, 15.0, 91.0, 50.0, 1e6], [11.0, 21.0, 16.0, 91.5, 51.0, 2e6]],
    }
    return {**base, **changes}


def observe(p: Any) -> list[Observation]:
    return metrics_observations(make_envelope("metrics.m-1", p))


def test_one_observation_per_tag_set_per_frame() -> None:
    obs = observe(payload())
    assert len(obs) == 2 * 5
    first = {o.key: o for o in obs if o.time_ms == 1000}
    assert sorted(first) == [
        "m-1",
        'm-1|cpu="0"',
        'm-1|cpu="1"',
        'm-1|iface="eth0"',
        'm-1|mount="/"',
    ]
    assert first["m-1"].fields == {
        "source": "m-1",
        "host": "web1",
        "label.env": "prod",
        "label.cpu": "x",
        "cpu.used": 15.0,
        "mem.used_pct": 50.0,
    }
    assert first['m-1|cpu="1"'].fields["cpu"] == "1"
    assert first['m-1|cpu="1"'].fields["cpu.core.used"] == 20.0
    assert first['m-1|mount="/"'].fields["mount"] == "/"


def test_missing_and_nan_values_are_left_out() -> None:
    obs = observe(payload(times_ms=[1000], values=[[None, math.nan, 15.0, None, None, None]]))
    assert {o.key for o in obs} == {"m-1"}
    assert "mem.used_pct" not in obs[0].fields


def test_a_tag_named_like_source_does_not_override_it() -> None:
    obs = observe(payload(series=['x{source="evil"}'], times_ms=[1], values=[[1.0]]))
    assert obs[0].fields["source"] == "m-1"


@pytest.mark.parametrize(
    "bad",
    [
        payload(series="cpu.used"),
        payload(times_ms=[1000]),
        payload(values=[[1.0], [2.0]]),
        payload(series=["cpu used", *SERIES[1:]]),
        payload(labels=["env"]),
        payload(times_ms=["a", "b"]),
        {"source": 5},
    ],
)
def test_malformed_payload_raises_invalid_input(bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        observe(bad)
