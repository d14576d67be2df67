"""Payment risk rules in TOML: the shared rule language (``sysmonstm.rules``) plus an action.

A rule file holds an optional ``[ruleset]`` table and any number of ``[[rule]]`` tables::

    [ruleset]
    name = "default"                   # optional (default: the file's stem); names decisions

    [[rule]]
    name = "large_transaction"         # unique, [a-z0-9_]+
    action = "review"                  # allow | review | block
    field = "amount_in_usd"            # a transaction field (see FIELDS), or a list of
                                       #   fields: the rule fires when any one matches
    op = "gt"                          # gt gte lt lte eq ne in not_in between (shared ops)
    threshold = 10000                  # as in the shared rules; or instead:
    other = "card_country"             # compare with another field of the same transaction
    window = { agg = "count", seconds = 60 }   # distinct payments on the card in (t-60 s, t]
    group_by = ["card_fingerprint"]    # required with a window: the only window there is
    where = { status = ["authorized", "captured"] }   # fnmatch globs, as in shared rules
    message = "{amount_in_usd:.2f} USD"   # optional explanation (shared template syntax)

Operators, thresholds, ``where`` and message templates are parsed and checked by the shared
loader and compiled by ``sysmonstm.rules.conditions``, so a condition means here what it
means in every other rule file. What payment decisions cannot use is refused: ``topic``
(rules read the transaction being decided), ``clear``, ``for``, ``keep_firing_for``,
``absent_for`` (a decision is one instant, not an alert lifecycle), ``severity`` and ``labels``
(the action says how serious it is), op ``absent``, and windows other than a count per card.

A field the transaction does not carry (an empty country, no card) never matches, on either
side of ``other``. Every mistake is a ``ConfigError`` naming the file, the line of the rule's
``[[rule]]`` header, the rule and the key.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysmonstm.domains.payments.model import Action
from sysmonstm.errors import ConfigError
from sysmonstm.rules.conditions import NUMERIC_OPS, RuleError
from sysmonstm.rules.loader import parse_rule
from sysmonstm.rules.model import Aggregate, Operator, Rule

DEFAULT_RULES = Path(__file__).with_name("risk_rules.toml")
TOPIC = "transactions.processed"  # what the shared Rule needs; payment rules read one tx
CARD = "card_fingerprint"

NUMBER_FIELDS = ("amount", "amount_base")  # major units; plus amount_in_<base currency>
TEXT_FIELDS = (
    "currency",
    "base_currency",
    "status",
    "processor",
    "source",
    "card_fingerprint",
    "card_bin",
    "card_country",
    "country",
    "ip_country",
    "ip",
    "email",
    "email_domain",
)
_AMOUNT_IN = re.compile(r"amount_in_[a-z]{3}")
_METADATA = re.compile(r"metadata\.[A-Za-z0-9_.\-]+")
_ACTIONS = {"allow": Action.APPROVE, "review": Action.REVIEW, "block": Action.BLOCK}
_NOT_FOR_PAYMENTS = ("topic", "clear", "for", "keep_firing_for", "absent_for", "severity", "labels")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")


def is_number_field(name: str) -> bool:
    return name in NUMBER_FIELDS or bool(_AMOUNT_IN.fullmatch(name))


def is_known_field(name: str) -> bool:
    return is_number_field(name) or name in TEXT_FIELDS or bool(_METADATA.fullmatch(name))


@dataclass(frozen=True, slots=True)
class RiskRule:
    """One payment rule: the shared ``rule`` (op, threshold, window, where, message) and
    what it decides. ``fields`` is empty for the card count window; ``other`` names the
    field compared with instead of a threshold; ``custom_message`` is false when the rule
    gave none (the decider then explains with the values alone)."""

    rule: Rule
    action: Action
    fields: tuple[str, ...]
    other: str | None
    custom_message: bool
    line: int

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules in file order; ``version`` is a hash of the text, so a decision names exactly
    the rules that made it (``label``)."""

    name: str
    version: str
    rules: tuple[RiskRule, ...]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def lookback_ms(self) -> int:
        """The longest window: how much history before a transaction its decision reads."""
        return max((r.rule.window.ms for r in self.rules if r.rule.window), default=0)


def _header_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1) if _RULE_HEADER.match(line)]


def _fields(label: str, value: object) -> tuple[str, ...]:
    given: list[object] = value if isinstance(value, list) else [value]
    if not given:
        raise RuleError(label, "field", "needs at least one field name")
    names: list[str] = []
    for name in given:
        if not isinstance(name, str) or not is_known_field(name):
            known = ", ".join((*NUMBER_FIELDS, "amount_in_<currency>", *TEXT_FIELDS))
            raise RuleError(label, "field", f"unknown field {name!r}; known: {known}, metadata.*")
        names.append(name)
    if len({is_number_field(n) for n in names}) > 1:
        raise RuleError(label, "field", f"mixes number and text fields: {names}")
    return tuple(names)


def _action(label: str, value: object) -> Action:
    if isinstance(value, str) and value in _ACTIONS:
        return _ACTIONS[value]
    raise RuleError(label, "action", f"{value!r} is not one of: {' '.join(_ACTIONS)}")


def _check_types(label: str, rule: Rule, fields: tuple[str, ...], other: str | None) -> None:
    if not fields:
        return
    number = is_number_field(fields[0])
    if other is not None:
        if is_number_field(other) != number:
            raise RuleError(label, "other", f"{other!r} is not the same kind as {fields[0]!r}")
        return
    if rule.op in NUMERIC_OPS and not number:
        raise RuleError(label, "op", f"{rule.op!s} needs a number field, not {fields[0]!r}")
    values = rule.threshold if isinstance(rule.threshold, tuple) else (rule.threshold,)
    for value in values:
        if isinstance(value, bool) or isinstance(value, float) != number:
            want = "a number" if number else "text"
            raise RuleError(label, "threshold", f"{fields[0]!r} holds {want}, not {value!r}")


def _window_checks(label: str, rule: Rule, table: dict[str, Any]) -> None:
    if rule.window is None:
        if rule.group_by:
            raise RuleError(label, "group_by", "only applies with a window")
        return
    if rule.window.agg is not Aggregate.COUNT:
        raise RuleError(label, "window.agg", "payment rules count payments: use agg = 'count'")
    if rule.group_by != (CARD,):
        raise RuleError(label, "group_by", f"a count window needs group_by = [{CARD!r}]")
    if "field" in table:
        raise RuleError(label, "field", "a count window counts payments on the card; omit it")


def _parse(table: dict[str, Any], label: str, origin: str) -> RiskRule:
    for key in _NOT_FOR_PAYMENTS:
        if key in table:
            raise RuleError(label, key, "does not apply to payment risk rules")
    if "action" not in table:
        raise RuleError(label, "action", "is required (allow, review or block)")
    window = table.get("window")
    if isinstance(window, dict) and window.get("agg", "count") != "count":
        raise RuleError(label, "window.agg", "payment rules count payments: use agg = 'count'")
    shared = {k: v for k, v in table.items() if k not in ("action", "field", "other")}
    shared["topic"] = TOPIC
    fields = _fields(label, table["field"]) if "field" in table else ()
    if fields:
        shared["field"] = fields[0]
    other = table.get("other")
    if other is not None:
        if not isinstance(other, str) or not is_known_field(other):
            raise RuleError(label, "other", f"unknown field {other!r}")
        if "threshold" in table:
            raise RuleError(label, "other", "give a threshold or another field, not both")
        if table.get("op") not in ("eq", "ne", "gt", "gte", "lt", "lte"):
            raise RuleError(label, "other", "works with ops eq ne gt gte lt lte")
        # a stand-in of the field's kind, so the shared checks run; replaced per transaction
        shared["threshold"] = 0 if is_number_field(other) else ""
    rule = parse_rule(shared, label, origin)
    if rule.op is Operator.ABSENT:
        raise RuleError(label, "op", "'absent' does not apply to payment risk rules")
    _window_checks(label, rule, table)
    if not fields and rule.window is None:
        raise RuleError(label, "field", "is required (only a count window may omit it)")
    _check_types(label, rule, fields, other)
    return RiskRule(
        rule=rule,
        action=_action(label, table["action"]),
        fields=fields,
        other=other,
        custom_message="message" in table,
        line=0,
    )


def _ruleset_name(doc: dict[str, Any], origin: str, default: str) -> str:
    meta = doc.get("ruleset", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{origin}: key 'ruleset': must be a table")
    for key in meta:
        if key not in ("name", "description"):
            raise ConfigError(f"{origin}: [ruleset] key {key!r}: unknown; known: name, description")
    name = meta.get("name", default)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise ConfigError(f"{origin}: [ruleset] key 'name': {name!r} must match [A-Za-z0-9_.-]+")
    return name


def parse_ruleset(text: str, origin: str = "<string>", name: str = "rules") -> RuleSet:
    """The rule set declared in TOML ``text``; ``ConfigError`` on any mistake, its message
    starting ``<origin>:<line>:`` and naming the rule and key (``name`` is the default
    rule set name)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    for key in doc:
        if key not in ("rule", "ruleset"):
            raise ConfigError(f"{origin}: key {key!r}: unknown; use [ruleset] and [[rule]] tables")
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{origin}: key 'rule': must be [[rule]] tables")
    lines = _header_lines(text)
    rules: list[RiskRule] = []
    seen: dict[str, int] = {}
    for number, table in enumerate(tables, start=1):
        line = lines[number - 1] if number <= len(lines) else 0
        where = f"{origin}:{line}" if line else origin
        given = table.get("name")
        label = given if isinstance(given, str) and given else f"#{number}"
        try:
            parsed = _parse(table, label, origin)
        except RuleError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        except ConfigError as exc:  # the shared checks wrap some of theirs
            raise ConfigError(f"{where}: rule {label!r}: {exc}") from exc
        if parsed.name in seen:
            raise ConfigError(
                f"{where}: rule {parsed.name!r}: key 'name': duplicate (first on line "
                f"{seen[parsed.name]})"
            )
        seen[parsed.name] = line
        rules.append(
            RiskRule(
                rule=parsed.rule,
                action=parsed.action,
                fields=parsed.fields,
                other=parsed.other,
                custom_message=parsed.custom_message,
                line=line,
            )
        )
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return RuleSet(_ruleset_name(doc, origin, name), version, tuple(rules))


def load_ruleset(path: str | os.PathLike[str] | None = None) -> RuleSet:
    """The rule set in ``path`` (default: the shipped ``risk_rules.toml``)."""
    file = Path(path) if path is not None else DEFAULT_RULES
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read risk rules: {exc}") from exc
    default = "default" if path is None else file.stem
    return parse_ruleset(text, str(file), default)
