"""Alert message templates: ``str.format`` syntax with named fields only.

A template may name any field of the observation (dotted names such as ``{cpu.used:.1f}``
are looked up whole before attribute access is tried), the group fields, and ``value``,
``threshold``, ``clear``, ``rule``, ``field``, ``key``, ``state`` and ``severity``. Syntax
errors, positional fields, unknown conversions and format specs that do not suit the value
are refused when the rule is loaded; a field missing at run time falls back to the raw
template, so a message can never stop the engine.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sysmonstm.rules.conditions import NUMERIC_OPS, RuleError
from sysmonstm.rules.model import Operator, Rule


class _Formatter(string.Formatter):
    def get_field(
        self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[Any, str]:
        # Field names such as "cpu.used" are plain keys, not attribute access on "cpu".
        if field_name in kwargs:
            return kwargs[field_name], field_name
        found: tuple[Any, str] = super().get_field(field_name, args, kwargs)
        return found


_FORMATTER = _Formatter()


def render(template: str, context: Mapping[str, Any]) -> str:
    """``template`` filled from ``context``, or the template itself if it cannot be filled."""
    try:
        return _FORMATTER.vformat(template, (), context)
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        return template


class _Anything:
    """Stands in for fields whose type is unknown at load time: accepts any format spec."""

    def __format__(self, spec: str) -> str:
        return ""

    def __getattr__(self, name: str) -> _Anything:
        return self

    def __getitem__(self, key: object) -> _Anything:
        return self


class _Sample(Mapping[str, Any]):
    """Every key is present; the typed ones carry a sample of their run-time type."""

    def __init__(self, typed: dict[str, Any]) -> None:
        self._typed = typed

    def __getitem__(self, key: str) -> Any:
        return self._typed.get(key, _Anything())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(self._typed)

    def __len__(self) -> int:
        return len(self._typed)


def _walk(template: str) -> Iterator[tuple[str, str | None, str]]:
    """Field name, conversion and spec of every replacement field, nested specs included."""
    for _, name, spec, conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        yield name, conversion, spec or ""
        if spec and "{" in spec:
            yield from _walk(spec)


def check_template(rule: Rule) -> None:
    """Raise ``RuleError`` (key ``message``) unless ``rule.message`` can be rendered."""
    template = rule.message
    try:
        fields = list(_walk(template))
    except ValueError as exc:
        raise RuleError(rule.name, "message", f"bad template {template!r}: {exc}") from exc
    for name, conversion, _ in fields:
        if name == "" or name.split(".")[0].split("[")[0].isdigit():
            raise RuleError(
                rule.name,
                "message",
                f"template {template!r} must name its fields, e.g. {{host}} or {{value}}",
            )
        if conversion not in (None, "r", "s", "a"):
            raise RuleError(
                rule.name, "message", f"template {template!r}: unknown conversion !{conversion}"
            )
    numeric = rule.op in NUMERIC_OPS or rule.window is not None
    typed: dict[str, Any] = {"rule": rule.name, "key": "", "state": "", "severity": ""}
    if numeric:
        typed["value"] = 0.0
    if rule.op not in (Operator.BETWEEN, Operator.IN, Operator.NOT_IN, Operator.ABSENT):
        typed["threshold"] = rule.threshold
    if rule.clear is not None and rule.op is not Operator.BETWEEN:
        typed["clear"] = rule.clear
    try:
        _FORMATTER.vformat(template, (), _Sample(typed))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise RuleError(rule.name, "message", f"bad template {template!r}: {exc}") from exc
