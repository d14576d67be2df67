"""Rule files: what loads, and errors that name the file, the rule and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sysmonstm.errors import ConfigError
from sysmonstm.rules import Aggregate, Operator, Severity, load_rules, parse_rules
from tests.rules.support import rule_toml

METRICS_RULES = Path(__file__).parents[2] / "src/sysmonstm/domains/metrics/rules.toml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_full_rule_loads_with_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "full.toml",
        """
        [[rule]]
        name = "cpu_high"
        topic = "metrics.>"
        field = "cpu.used"
        op = "gt"
        threshold = 80
        clear = 70
        window = { agg = "avg", seconds = 1.5 }
        group_by = ["source"]
        where = { mount = "/*", env = ["prod", "stage*"] }
        for = 60
        keep_firing_for = 30
        severity = "critical"
        labels = { team = "ops" }
        message = "CPU on {host} at {value:.0f}%"
    """,
    )
    (rule,) = load_rules([path])
    assert rule.name == "cpu_high"
    assert rule.op is Operator.GT
    assert (rule.threshold, rule.clear) == (80.0, 70.0)
    assert (rule.window and rule.window.agg, rule.window and rule.window.ms) == (
        Aggregate.AVG,
        1500,
    )
    assert rule.group_by == ("source",)
    assert rule.where == (("mount", ("/*",)), ("env", ("prod", "stage*")))
    assert (rule.for_ms, rule.keep_firing_for_ms) == (60_000, 30_000)
    assert rule.severity is Severity.CRITICAL
    assert rule.labels == (("team", "ops"),)
    assert rule.origin == str(path)


def test_default_metrics_rules_load() -> None:
    rules = {r.name: r for r in load_rules([METRICS_RULES])}
    assert set(rules) == {
        "cpu_high",
        "cpu_critical",
        "memory_high",
        "disk_full",
        "swap_high",
        "host_silent",
    }
    assert rules["host_silent"].op is Operator.ABSENT
    assert rules["host_silent"].group_by == ("source",)


def test_a_directory_loads_its_toml_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "b.toml", rule_toml(name="b", op="gt", threshold=1))
    write(tmp_path, "a.toml", rule_toml(name="a", op="gt", threshold=1))
    write(tmp_path, "notes.txt", "not rules")
    assert [r.name for r in load_rules([tmp_path])] == ["a", "b"]


def test_a_rule_without_message_gets_a_default() -> None:
    (rule,) = parse_rules(rule_toml(op="gt", threshold=1))
    assert "{value}" in rule.message


def test_count_window_needs_no_field() -> None:
    (rule,) = parse_rules(
        rule_toml(field=None, op="gt", threshold=5, window={"agg": "count", "seconds": 60})
    )
    assert rule.field is None


def test_empty_file_holds_no_rules() -> None:
    assert parse_rules("# nothing yet\n") == []


@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ({"op": "gt", "threshold": 1, "thresold": 2}, "thresold", "unknown key"),
        ({"op": "gt", "threshold": "high"}, "threshold", "must be a number"),
        ({"op": "greater", "threshold": 1}, "op", "is not one of"),
        ({"op": "gt"}, "threshold", "needs a threshold"),
        ({"op": "gt", "threshold": 80, "clear": 90}, "clear", "at or below"),
        ({"op": "lt", "threshold": 10, "clear": 5}, "clear", "at or above"),
        ({"op": "between", "threshold": [10, 20], "clear": [15, 30]}, "clear", "contain"),
        ({"op": "between", "threshold": [20, 10]}, "threshold", "lo must not exceed hi"),
        ({"op": "between", "threshold": 5}, "threshold", "[lo, hi]"),
        ({"op": "eq", "threshold": "x", "clear": "y"}, "clear", "only applies"),
        ({"op": "in", "threshold": []}, "threshold", "non-empty list"),
        ({"op": "in", "threshold": [[1]]}, "threshold", "number, string"),
        ({"op": "gt", "threshold": 1, "message": "{value:.0f"}, "message", "bad template"),
        ({"op": "gt", "threshold": 1, "message": "{value:d}"}, "message", "bad template"),
        ({"op": "gt", "threshold": 1, "message": "at {0}"}, "message", "name its fields"),
        ({"op": "gt", "threshold": 1, "message": "{host!x}"}, "message", "conversion"),
        ({"op": "gt", "threshold": 1, "for": -1}, "for", ">= 0"),
        ({"op": "gt", "threshold": 1, "for": "1m"}, "for", "seconds"),
        ({"op": "gt", "threshold": 1, "severity": "loud"}, "severity", "is not one of"),
        (
            {"op": "gt", "threshold": 1, "window": {"agg": "avg", "secs": 5}},
            "window.secs",
            "unknown key",
        ),
        (
            {"op": "gt", "threshold": 1, "window": {"agg": "p99", "seconds": 5}},
            "window.agg",
            "is not one of",
        ),
        (
            {"op": "gt", "threshold": 1, "window": {"agg": "avg", "seconds": 0}},
            "window.seconds",
            "> 0",
        ),
        (
            {"op": "eq", "threshold": "up", "window": {"agg": "avg", "seconds": 5}},
            "threshold",
            "number with a window",
        ),
        ({"op": "gt", "threshold": 1, "group_by": "source"}, "group_by", "list"),
        ({"op": "gt", "threshold": 1, "where": {"mount": 5}}, "where.mount", "string"),
        ({"op": "gt", "threshold": 1, "labels": {"team": 1}}, "labels.team", "string"),
        ({"op": "gt", "threshold": 1, "topic": "metrics.>.x"}, "topic", "last token"),
        ({"op": "gt", "threshold": 1, "absent_for": 30}, "absent_for", "only applies"),
        ({"op": "absent"}, "absent_for", "absent_for > 0"),
        ({"op": "absent", "absent_for": 30, "threshold": 1}, "threshold", "does not apply"),
        ({"op": "absent", "absent_for": 30, "for": 10}, "for", "does not apply"),
        ({"op": "gt", "threshold": 1, "field": None}, "field", "is required"),
        ({"op": "gt", "threshold": 1, "name": "CPU High"}, "name", "must match"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_mistake_names_file_rule_and_key(
    tmp_path: Path, keys: dict[str, object], key: str, words: str
) -> None:
    keys = {"name": "broken", **keys}
    text = rule_toml(name="fine", op="gt", threshold=1) + "\n" + rule_toml(**keys)
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_rules([path])
    message = str(caught.value)
    rule = keys["name"]
    assert message.startswith(f"{path}: rule {rule!r}: key {key!r}: "), message
    assert words in message


def test_a_rule_without_a_name_is_named_by_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "noname.toml",
        rule_toml(op="gt", threshold=1)
        + """
        [[rule]]
        topic = "t.>"
        op = "gt"
    """,
    )
    with pytest.raises(ConfigError, match=r"noname\.toml: rule '#2': key 'name': is required"):
        load_rules([path])


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    text = rule_toml(name="twice", op="gt", threshold=1) * 2
    path = write(tmp_path, "dup.toml", text)
    with pytest.raises(ConfigError, match=r"dup\.toml: rule 'twice': key 'name': duplicate"):
        load_rules([path])


def test_duplicate_names_across_files_name_both(tmp_path: Path) -> None:
    first = write(tmp_path, "one.toml", rule_toml(name="twice", op="gt", threshold=1))
    second = write(tmp_path, "two.toml", rule_toml(name="twice", op="lt", threshold=1))
    with pytest.raises(ConfigError) as caught:
        load_rules([first, second])
    assert str(caught.value).startswith(f"{second}: rule 'twice': key 'name': duplicate")
    assert str(first) in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.toml", "[[rule]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"syntax\.toml: not valid TOML"):
        load_rules([path])


def test_keys_outside_rule_tables_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "top.toml", "version = 2\n")
    with pytest.raises(ConfigError, match=r"top\.toml: key 'version'"):
        load_rules([path])


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules"):
        load_rules([tmp_path / "absent.toml"])
