"""Operators compiled into predicates, and the consistency checks a rule must pass.

A condition has two predicates. ``trigger`` starts an alert (the operator applied to the
threshold). ``sustain`` keeps a firing alert firing: the operator applied to ``clear`` when
given, else to the threshold, so the clear condition is ``not sustain``. For ``gt`` with
threshold 80 and clear 70 an alert fires above 80 and resolves at or below 70; for ``gte``
it resolves below 70; ``lt``/``lte`` mirror that (clear at or above the threshold). For
``between`` the clear band ``[lo, hi]`` must contain the threshold band: firing starts inside
the threshold band and resolves outside the clear band. Only these five operators accept
``clear``.

Numeric operators (``gt gte lt lte between``) evaluate numbers only (bools and NaN are not
numbers); an observation whose field holds anything else is ignored by the rule. ``eq ne in
not_in`` compare type-strictly: numbers with numbers (1 == 1.0), strings with strings, bools
with bools, so ``ne "x"`` holds for the string "y" but ``eq 5`` never matches the string "5".
Values that are not scalars are ignored.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sysmonstm.errors import ConfigError
from sysmonstm.rules.model import Aggregate, Operator, Rule, Scalar, Threshold

NUMERIC_OPS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.BETWEEN})
_CLEAR_OPS = NUMERIC_OPS
_DECAY_SAFE_OPS = frozenset({Operator.GT, Operator.GTE})


class RuleError(ConfigError):
    """A rule that cannot work as declared; names the rule and the offending key."""

    def __init__(self, rule: str, key: str, problem: str) -> None:
        super().__init__(f"rule {rule!r}: key {key!r}: {problem}")
        self.rule = rule
        self.key = key
        self.problem = problem


def as_number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (not a bool, not NaN), else ``None``."""
    kind = type(value)
    if kind is int:
        return float(value)
    if kind is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def as_scalar(value: Any) -> Scalar | None:
    """``value`` as a number (float), string or bool; ``None`` for anything else."""
    if isinstance(value, str | bool):
        return value
    return as_number(value)


def _key(value: Scalar) -> tuple[int, Scalar]:
    """A type-strict comparison key (``True`` must not equal ``1``)."""
    if isinstance(value, bool):
        return (2, value)
    return (1, value) if isinstance(value, str) else (0, float(value))


Predicate = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule tests: ``coerce`` turns a field value into the value tested (``None``:
    the rule ignores it), ``trigger`` starts an alert, ``sustain`` keeps one firing."""

    coerce: Callable[[Any], Scalar | None]
    trigger: Predicate
    sustain: Predicate


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(rule: Rule, key: str, value: Threshold) -> float:
    if not _is_number(value):
        raise RuleError(rule.name, key, f"must be a number, not {value!r}")
    assert isinstance(value, int | float)
    return float(value)


def _band(rule: Rule, key: str, value: Threshold) -> tuple[float, float]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise RuleError(rule.name, key, f"must be [lo, hi] for op 'between', not {value!r}")
    lo, hi = (_number(rule, key, v) for v in value)
    if lo > hi:
        raise RuleError(rule.name, key, f"lo must not exceed hi in {value!r}")
    return lo, hi


def _scalar(rule: Rule, key: str, value: object, numeric_only: bool) -> Scalar:
    if numeric_only and not _is_number(value):
        raise RuleError(rule.name, key, f"must be a number with a window, not {value!r}")
    if not isinstance(value, int | float | str | bool):
        raise RuleError(rule.name, key, f"must be a number, string or bool, not {value!r}")
    return float(value) if _is_number(value) else value


def _compare(op: Operator, limit: float) -> Predicate:
    # ``v > limit`` is ``limit < v``: a partial of a C comparison, no Python frame per test.
    # Only numbers reach it (``as_number`` coerces), for which comparisons return a bool.
    if op is Operator.GT:
        return partial(operator.lt, limit)
    if op is Operator.GTE:
        return partial(operator.le, limit)
    if op is Operator.LT:
        return partial(operator.gt, limit)
    return partial(operator.ge, limit)


def _ordered(rule: Rule) -> Condition:
    threshold = _number(rule, "threshold", rule.threshold)
    clear = threshold if rule.clear is None else _number(rule, "clear", rule.clear)
    above = rule.op in (Operator.GT, Operator.GTE)
    if (above and clear > threshold) or (not above and clear < threshold):
        side = "at or below" if above else "at or above"
        raise RuleError(
            rule.name,
            "clear",
            f"must be {side} the threshold {threshold:g} for op '{rule.op}', not {clear:g}",
        )
    return Condition(as_number, _compare(rule.op, threshold), _compare(rule.op, clear))


def _between(rule: Rule) -> Condition:
    lo, hi = _band(rule, "threshold", rule.threshold)
    clo, chi = (lo, hi) if rule.clear is None else _band(rule, "clear", rule.clear)
    if clo > lo or chi < hi:
        raise RuleError(
            rule.name,
            "clear",
            f"band [{clo:g}, {chi:g}] must contain the threshold band [{lo:g}, {hi:g}]",
        )
    return Condition(as_number, lambda v: bool(lo <= v <= hi), lambda v: bool(clo <= v <= chi))


def _equality(rule: Rule, numeric_only: bool) -> Condition:
    if rule.op in (Operator.EQ, Operator.NE):
        want = _key(_scalar(rule, "threshold", rule.threshold, numeric_only))
        if rule.op is Operator.EQ:
            test: Predicate = lambda v: _key(v) == want  # noqa: E731 - one-line predicates
        else:
            test = lambda v: _key(v) != want  # noqa: E731
    else:
        if not isinstance(rule.threshold, tuple) or not rule.threshold:
            raise RuleError(rule.name, "threshold", f"must be a non-empty list for op '{rule.op}'")
        members = frozenset(
            _key(_scalar(rule, "threshold", v, numeric_only)) for v in rule.threshold
        )
        if rule.op is Operator.IN:
            test = lambda v: _key(v) in members  # noqa: E731
        else:
            test = lambda v: _key(v) not in members  # noqa: E731
    if rule.clear is not None:
        raise RuleError(rule.name, "clear", f"only applies to ops {_ops(_CLEAR_OPS)}")
    return Condition(as_number if numeric_only else as_scalar, test, test)


def _ops(ops: frozenset[Operator]) -> str:
    return ", ".join(sorted(ops))


def _check_absent(rule: Rule) -> None:
    if rule.absent_for_ms <= 0:
        raise RuleError(rule.name, "absent_for", "op 'absent' needs absent_for > 0 seconds")
    for key, present in (
        ("threshold", rule.threshold is not None),
        ("clear", rule.clear is not None),
        ("window", rule.window is not None),
        ("for", rule.for_ms != 0),
        ("keep_firing_for", rule.keep_firing_for_ms != 0),
    ):
        if present:
            raise RuleError(rule.name, key, "does not apply to op 'absent' (use absent_for)")
    if rule.field is None:
        raise RuleError(rule.name, "field", "op 'absent' needs the field whose absence fires")


def _check_common(rule: Rule) -> None:
    if rule.absent_for_ms:
        raise RuleError(rule.name, "absent_for", "only applies to op 'absent'")
    if rule.threshold is None:
        raise RuleError(rule.name, "threshold", f"op '{rule.op}' needs a threshold")
    counting = rule.window is not None and rule.window.agg is Aggregate.COUNT
    if rule.field is None and not counting:
        raise RuleError(rule.name, "field", "is required (only a count window may omit it)")
    if rule.window is not None and rule.window.ms <= 0:
        raise RuleError(rule.name, "window", "seconds must be > 0")
    for key, ms in (("for", rule.for_ms), ("keep_firing_for", rule.keep_firing_for_ms)):
        if ms < 0:
            raise RuleError(rule.name, key, "must be >= 0 seconds")


def compile_condition(rule: Rule) -> Condition | None:
    """The rule's condition (``None`` for ``absent``); ``RuleError`` if inconsistent."""
    if rule.op is Operator.ABSENT:
        _check_absent(rule)
        return None
    _check_common(rule)
    if rule.op is Operator.BETWEEN:
        return _between(rule)
    if rule.op in NUMERIC_OPS:
        return _ordered(rule)
    return _equality(rule, numeric_only=rule.window is not None)


def decay_may_trigger(rule: Rule) -> bool:
    """Whether time alone (samples leaving a count or sum window) can start an alert.

    A count only falls with time, and so does a sum of the non-negative values it is meant
    for (amounts, durations), so under ``gt``/``gte`` decay can only end an alert. Rules for
    which this returns true are re-evaluated for every group on each tick; the others only
    for groups holding an alert.
    """
    if rule.window is None or rule.window.agg not in (Aggregate.COUNT, Aggregate.SUM):
        return False
    return rule.op not in _DECAY_SAFE_OPS
