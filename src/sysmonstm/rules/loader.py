"""Rules from TOML: ``[[rule]]`` tables, every mistake a ``ConfigError`` naming file, rule, key.

A file holds any number of ``[[rule]]`` tables and nothing else::

    [[rule]]
    name = "cpu_high"                 # unique across all files loaded together, [a-z0-9_]+
    topic = "metrics.>"               # topic pattern of the events the rule evaluates
    field = "cpu.used"                # the observation field tested
    op = "gt"                         # gt gte lt lte eq ne in not_in between absent
    threshold = 80                    # number | string | bool | list (in, not_in) | [lo, hi]
    clear = 70                        # optional hysteresis (gt gte lt lte between only)
    window = { agg = "avg", seconds = 60 }   # avg min max count sum rate
    group_by = ["source"]             # default: the observation key
    where = { mount = "/*" }          # fnmatch glob, or a list of globs of which one matches;
                                      #   an observation without the field never matches
    for = 60                          # seconds the condition must hold before firing
    keep_firing_for = 0               # seconds a firing alert outlives its clear condition
    absent_for = 30                   # op "absent" only: seconds of silence before firing
    severity = "warning"              # info success warning critical (default warning)
    labels = { team = "ops" }
    message = "CPU on {host} at {value:.0f}%"   # see sysmonstm.rules.template; has a default

Only name, topic and op are always required; field too unless the window is a count.
Durations are seconds (int or float) and become milliseconds. Semantics are in
``sysmonstm.rules.conditions`` (operators, hysteresis) and ``sysmonstm.rules.runtime``
(lifecycle, timing).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sysmonstm.errors import ConfigError, InvalidInputError
from sysmonstm.events.topics import TopicPattern
from sysmonstm.rules.conditions import RuleError, compile_condition
from sysmonstm.rules.model import Aggregate, Operator, Rule, Scalar, Severity, Threshold, Window
from sysmonstm.rules.template import check_template

_E = TypeVar("_E", Operator, Aggregate, Severity)
_NAME_RE = re.compile(r"[a-z0-9_]+")
_KEYS = (
    "name",
    "topic",
    "field",
    "op",
    "threshold",
    "clear",
    "window",
    "group_by",
    "where",
    "for",
    "keep_firing_for",
    "absent_for",
    "severity",
    "labels",
    "message",
)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(label: str, key: str, value: object, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise RuleError(label, key, f"must be a non-empty string, not {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise RuleError(label, key, f"{value!r} must match {pattern.pattern}")
    return value


def _choice(label: str, key: str, value: object, enum: type[_E]) -> _E:
    members: dict[object, _E] = {str(e): e for e in enum}
    if isinstance(value, str) and value in members:
        return members[value]
    raise RuleError(label, key, f"{value!r} is not one of: {' '.join(map(str, members))}")


def _seconds_ms(label: str, key: str, value: object) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf:
        return round(value * 1000)
    raise RuleError(label, key, f"must be a number of seconds >= 0, not {value!r}")


def _scalar(label: str, key: str, value: object) -> Scalar:
    if _is_number(value):
        assert isinstance(value, int | float)
        if math.isnan(value):
            raise RuleError(label, key, "must not be nan")
        return float(value)
    if isinstance(value, str | bool):
        return value
    raise RuleError(label, key, f"must be a number, string, bool or list, not {value!r}")


def _threshold(label: str, key: str, value: object) -> Threshold:
    if isinstance(value, list):
        return tuple(_scalar(label, key, v) for v in value)
    return _scalar(label, key, value)


def _table(label: str, key: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RuleError(label, key, f"must be a table, not {value!r}")
    return value


def _window(label: str, value: object) -> Window:
    table = _table(label, "window", value)
    for sub in table:
        if sub not in ("agg", "seconds"):
            raise RuleError(label, f"window.{sub}", "unknown key; known: agg, seconds")
    if "agg" not in table or "seconds" not in table:
        raise RuleError(label, "window", "needs both agg and seconds")
    agg = _choice(label, "window.agg", table["agg"], Aggregate)
    ms = _seconds_ms(label, "window.seconds", table["seconds"])
    if ms <= 0:
        raise RuleError(label, "window.seconds", "must be > 0")
    return Window(agg, ms)


def _group_by(label: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RuleError(label, "group_by", f"must be a list of field names, not {value!r}")
    names = tuple(_text(label, "group_by", v) for v in value)
    if len(set(names)) != len(names):
        raise RuleError(label, "group_by", f"names a field twice: {list(names)}")
    return names


def _where(label: str, value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for name, globs in _table(label, "where", value).items():
        key = f"where.{name}"
        items = globs if isinstance(globs, list) else [globs]
        if not items:
            raise RuleError(label, key, "needs at least one glob")
        out.append((name, tuple(_text(label, key, g) for g in items)))
    return tuple(out)


def _labels(label: str, value: object) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, _text(label, f"labels.{name}", text))
        for name, text in _table(label, "labels", value).items()
    )


def _topic(label: str, value: object) -> str:
    topic = _text(label, "topic", value)
    try:
        TopicPattern.parse(topic)
    except InvalidInputError as exc:
        raise RuleError(label, "topic", exc.reason) from exc
    return topic


def _default_message(rule: Rule) -> str:
    if rule.op is Operator.ABSENT:
        return f"{rule.name}: nothing from {{key}} for {rule.absent_for_ms / 1000:g} s"
    return f"{rule.name}: {{key}} at {{value}} (threshold {{threshold}})"


_Parser = Callable[[str, object], Any]
_PARSERS: dict[str, tuple[str, _Parser]] = {
    # TOML key -> (Rule attribute, parser)
    "topic": ("topic", _topic),
    "field": ("field", lambda label, v: _text(label, "field", v)),
    "op": ("op", lambda label, v: _choice(label, "op", v, Operator)),
    "threshold": ("threshold", lambda label, v: _threshold(label, "threshold", v)),
    "clear": ("clear", lambda label, v: _threshold(label, "clear", v)),
    "window": ("window", _window),
    "group_by": ("group_by", _group_by),
    "where": ("where", _where),
    "for": ("for_ms", lambda label, v: _seconds_ms(label, "for", v)),
    "keep_firing_for": (
        "keep_firing_for_ms",
        lambda label, v: _seconds_ms(label, "keep_firing_for", v),
    ),
    "absent_for": ("absent_for_ms", lambda label, v: _seconds_ms(label, "absent_for", v)),
    "severity": ("severity", lambda label, v: _choice(label, "severity", v, Severity)),
    "labels": ("labels", _labels),
    "message": ("message", lambda label, v: _text(label, "message", v)),
}


def _parse_rule(table: Mapping[str, Any], label: str, origin: str) -> Rule:
    for key in table:
        if key not in _KEYS:
            raise RuleError(label, key, f"unknown key; known: {', '.join(_KEYS)}")
    for key in ("name", "topic", "op"):
        if key not in table:
            raise RuleError(label, key, "is required")
    values: dict[str, Any] = {"name": _text(label, "name", table["name"], pattern=_NAME_RE)}
    for key, raw in table.items():
        if key != "name":
            attribute, parse = _PARSERS[key]
            values[attribute] = parse(label, raw)
    rule = Rule(origin=origin, **values)
    compile_condition(rule)
    if "message" not in values:
        values["message"] = _default_message(rule)
        rule = Rule(origin=origin, **values)
    check_template(rule)
    return rule


def parse_rule(table: Mapping[str, Any], label: str, origin: str = "<string>") -> Rule:
    """One ``[[rule]]`` table as a checked ``Rule`` (``label`` names it in errors); raises
    ``RuleError``. For domains that read the same rule language with keys of their own
    (payment risk rules), so a condition means the same everywhere."""
    return _parse_rule(table, label, origin)


def parse_rules(text: str, origin: str = "<string>") -> list[Rule]:
    """The rules declared in TOML ``text``; ``origin`` names it in errors (a file path).

    Raises ``ConfigError`` whose message starts with ``origin``, then the rule (its name, or
    ``#n`` when it has none) and the key at fault.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    for key in doc:
        if key != "rule":
            raise ConfigError(f"{origin}: key {key!r}: unknown; rules go in [[rule]] tables")
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{origin}: key 'rule': must be [[rule]] tables")
    rules: list[Rule] = []
    names: set[str] = set()
    for number, table in enumerate(tables, start=1):
        name = table.get("name")
        label = name if isinstance(name, str) and name else f"#{number}"
        try:
            rule = _parse_rule(table, label, origin)
        except RuleError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
        if rule.name in names:
            raise ConfigError(f"{origin}: rule {rule.name!r}: key 'name': duplicate name")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _files(path: Path) -> list[Path]:
    return sorted(path.glob("*.toml")) if path.is_dir() else [path]


def load_rules(paths: Iterable[str | os.PathLike[str]]) -> list[Rule]:
    """The rules of every file in ``paths`` (a directory means its ``*.toml``, sorted).

    Names must be unique across all of them; a clash names both files.
    """
    rules: list[Rule] = []
    where: dict[str, str] = {}
    for given in paths:
        for path in _files(Path(given)):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read rules: {exc}") from exc
            for rule in parse_rules(text, str(path)):
                if rule.name in where:
                    raise ConfigError(
                        f"{path}: rule {rule.name!r}: key 'name': duplicate name (also in "
                        f"{where[rule.name]})"
                    )
                where[rule.name] = str(path)
                rules.append(rule)
    return rules
