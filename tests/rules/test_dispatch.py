"""Plans are kept per observation shape without ever picking the wrong rules."""

from __future__ import annotations

from typing import Any

import pytest

from sysmonstm.rules import Observation
from tests.rules.support import Driver, rule_toml, states

SELECTED = rule_toml(name="sel", op="gt", threshold=1, where={"tag": "1"})


@pytest.mark.parametrize(
    ("tag", "fires"),
    [("1", True), (1, True), (True, False), (1.0, False), (None, False), (["1"], False)],
    ids=repr,
)
def test_where_tests_the_string_of_each_value_even_after_a_cached_plan(
    tag: Any, fires: bool
) -> None:
    """A plan cached for the string "1" is not reused for 1.0 or True (equal keys, other
    strings), nor for a value that cannot be hashed."""
    d = Driver(SELECTED)
    d.at(0, 0, key="a", tag="1")  # caches the plan of this shape
    assert states(d.at(1, 5, key="a", tag=tag)) == (["firing"] if fires else [])


def test_a_key_whose_fields_change_reaches_the_rules_of_the_new_fields() -> None:
    """The same key with another set of fields is planned again."""
    d = Driver(
        rule_toml(name="v_high", op="gt", threshold=1)
        + rule_toml(name="w_high", op="gt", threshold=1, field="w")
    )
    assert states(d.at(0, 5)) == ["firing"]
    out = d.engine.observe("t.x", [Observation("h1", d.clock(), {"w": 5.0})])
    assert [(e.rule, str(e.state)) for e in out] == [("w_high", "firing")]


def test_where_values_that_change_for_one_shape_pick_their_rules() -> None:
    """One key and field set, the where value alternating: each value its own plan."""
    d = Driver(SELECTED)
    assert states(d.at(0, 5, tag="2")) == []
    assert states(d.at(1, 5, tag="1")) == ["firing"]
    assert states(d.at(2, 0, tag="2")) == []  # not selected: the alert is left alone
    assert states(d.at(3, 0, tag="1")) == ["resolved"]
