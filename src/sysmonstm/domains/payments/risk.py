"""The Decider: one transaction, its rule set and a ``RiskView`` in, one ``Decision`` out.

Order of evaluation, and what wins:

1. Allow lists (``lists``): any match approves at once; the matches are the explanation.
2. ``allow`` rules: the same, when one matches.
3. Block lists and every ``review``/``block`` rule: all matches are recorded, in file order
   (lists first); the strictest action wins (block > review); none approves.

A decision reads only the transaction, the rule set and the view (the card count in the
rule's window ending at the transaction's own time, and the lists), never the clock, so
deciding the same transaction against the same stored history always gives the same answer:
the ledger decides inside its transaction, a backtest replays the history. Only
``decided_ms`` comes from the clock.

Fields the rules read (``transaction_fields``): ``amount`` (major units of the transaction's
currency), ``amount_base`` and ``amount_in_<base>`` (e.g. ``amount_in_usd``: major units of
the base currency, from ``Transaction.amount_base_minor``), and the transaction's text fields
(countries upper-case, e-mail lower-case, ``email_domain``, ``metadata.<key>``); empty ones
are absent, so they match nothing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from sysmonstm.domains.payments import lists
from sysmonstm.domains.payments.ledger import RiskView
from sysmonstm.domains.payments.model import (
    Action,
    Decision,
    ListKind,
    ListMode,
    RuleHit,
    Transaction,
)
from sysmonstm.domains.payments.risk_rules import CARD, RiskRule, RuleSet, load_ruleset
from sysmonstm.rules.conditions import Condition, as_scalar, compile_condition
from sysmonstm.rules.engine import Clock, wall_clock_ms
from sysmonstm.rules.model import Operator
from sysmonstm.rules.template import render

Value = str | int | float | bool
_SYMBOLS = {
    Operator.GT: ">",
    Operator.GTE: ">=",
    Operator.LT: "<",
    Operator.LTE: "<=",
    Operator.EQ: "=",
    Operator.NE: "!=",
    Operator.IN: "in",
    Operator.NOT_IN: "not in",
    Operator.BETWEEN: "between",
}
# how an explanation shows personal values (the fingerprint as bus payloads shorten it)
_MASKED = {"card_fingerprint": ListKind.CARD, "email": ListKind.EMAIL}


def _major(minor: int, currency: str) -> float:
    from sysmonstm.domains.payments.money import EXPONENTS

    # Decimal keeps 1000001 cents exactly 10000.01 before the one rounding to float
    return float(Decimal(minor).scaleb(-EXPONENTS.get(currency.upper(), 2)))


def transaction_fields(tx: Transaction) -> dict[str, Any]:
    """What rules may read of ``tx`` (see the module docstring); empty fields are absent."""
    base = tx.base_currency.upper()
    base_minor = tx.amount_minor if tx.currency.upper() == base else tx.amount_base_minor
    amount_base = _major(base_minor, base)
    fields: dict[str, Any] = {
        "amount": _major(tx.amount_minor, tx.currency),
        "amount_base": amount_base,
        f"amount_in_{base.lower()}": amount_base,
    }
    email = tx.email.strip().lower()
    text = {
        "currency": tx.currency.upper(),
        "base_currency": base,
        "status": tx.status.value,
        "processor": tx.processor,
        "source": tx.source,
        "card_fingerprint": tx.card_fingerprint,
        "card_bin": tx.card_bin,
        "card_country": tx.card_country.strip().upper(),
        "country": tx.country.strip().upper(),
        "ip_country": tx.ip_country.strip().upper(),
        "ip": tx.ip,
        "email": email,
        "email_domain": email.rsplit("@", 1)[1] if "@" in email else "",
    }
    fields.update((k, v) for k, v in text.items() if v)
    fields.update((f"metadata.{k}", v) for k, v in tx.metadata.items() if v)
    return fields


def _shown(name: str, value: Any) -> Value:
    kind = _MASKED.get(name)
    if kind is not None and isinstance(value, str):
        return lists.mask(kind, value)
    if isinstance(value, tuple):
        return ", ".join(_text(v) for v in value)
    return value if isinstance(value, str | int | float | bool) else str(value)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".15g")  # 10000.01, not 1e+04 or 10000.0100000000002
    return str(value)


class RiskDecider:
    """Decides with ``ruleset`` (a ``ledger.Decider``); ``clock`` stamps ``decided_ms``."""

    def __init__(self, ruleset: RuleSet, *, clock: Clock = wall_clock_ms) -> None:
        self.ruleset = ruleset
        self._clock = clock
        self._conditions: dict[str, Condition | None] = {
            r.name: None if r.other is not None else compile_condition(r.rule)
            for r in ruleset.rules
        }

    async def __call__(self, tx: Transaction, view: RiskView) -> Decision:
        fields = transaction_fields(tx)
        found = await lists.matches(tx, view)
        allowed = [m.hit() for m in found if m.mode is ListMode.ALLOW]
        if not allowed:
            allowed = [
                hit
                for rule in self.ruleset.rules
                if rule.action is Action.APPROVE
                and (hit := await self._evaluate(rule, tx, fields, view)) is not None
            ]
        if allowed:
            return self._decision(tx, Action.APPROVE, allowed)
        hits = [m.hit() for m in found]
        for rule in self.ruleset.rules:
            if rule.action is not Action.APPROVE:
                hit = await self._evaluate(rule, tx, fields, view)
                if hit is not None:
                    hits.append(hit)
        action = max((h.action for h in hits), default=Action.APPROVE)
        return self._decision(tx, action, hits)

    def _decision(self, tx: Transaction, action: Action, hits: list[RuleHit]) -> Decision:
        return Decision(
            event_id=tx.event_id,
            transaction_id=tx.transaction_id,
            action=action,
            hits=tuple(hits),
            decided_ms=self._clock(),
            ruleset=self.ruleset.label,
        )

    async def _evaluate(
        self, rule: RiskRule, tx: Transaction, fields: Mapping[str, Any], view: RiskView
    ) -> RuleHit | None:
        for name, globs in rule.rule.where:
            value = fields.get(name)
            if value is None or not any(fnmatchcase(_text(value), g) for g in globs):
                return None
        if rule.rule.window is not None:
            return await self._count(rule, tx, fields, view)
        return self._compare(rule, fields)

    async def _count(
        self, rule: RiskRule, tx: Transaction, fields: Mapping[str, Any], view: RiskView
    ) -> RuleHit | None:
        window = rule.rule.window
        card = fields.get(CARD)
        condition = self._conditions[rule.name]
        if window is None or condition is None or not card:
            return None
        count = await view.card_count(card, tx.time_ms - window.ms, tx.time_ms)
        if not condition.trigger(float(count)):
            return None
        seconds = window.ms / 1000
        values: dict[str, Value] = {
            CARD: _shown(CARD, card),
            "count": count,
            "window_s": seconds,
            "threshold": _shown("threshold", rule.rule.threshold),
        }
        reason = (
            f"{count} payments on card {values[CARD]} in {_text(seconds)} s "
            f"{_SYMBOLS[rule.rule.op]} {_text(rule.rule.threshold)}"
        )
        return self._hit(rule, reason, values, {**fields, "value": float(count)})

    def _compare(self, rule: RiskRule, fields: Mapping[str, Any]) -> RuleHit | None:
        condition = self._conditions[rule.name]
        threshold: Any = rule.rule.threshold
        if rule.other is not None:
            threshold = as_scalar(fields.get(rule.other))
            if threshold is None:
                return None
            condition = compile_condition(dataclasses.replace(rule.rule, threshold=threshold))
        assert condition is not None
        matched = []
        for name in rule.fields:
            raw = fields.get(name)
            value = None if raw is None else condition.coerce(raw)
            if value is not None and condition.trigger(value):
                matched.append(name)
        if not matched:
            return None
        compared = rule.other or "threshold"
        values: dict[str, Value] = {n: _shown(n, fields[n]) for n in rule.fields if n in fields}
        values[compared] = _shown(compared, threshold)
        converted = fields["currency"] != fields.get("base_currency")
        if converted and any(n.startswith("amount_in_") or n == "amount_base" for n in matched):
            values["amount"] = fields["amount"]
            values["currency"] = fields["currency"]
        symbol = _SYMBOLS[rule.rule.op]
        reason = "; ".join(
            f"{n} {_text(values[n])} {symbol} "
            + (f"{rule.other} {_text(values[compared])}" if rule.other else _text(threshold))
            for n in matched
        )
        if len(rule.fields) > 1:
            values["matched"] = ", ".join(matched)
        return self._hit(rule, reason, values, {**fields, "value": fields[matched[0]]})

    @staticmethod
    def _hit(
        rule: RiskRule, reason: str, values: dict[str, Value], context: dict[str, Any]
    ) -> RuleHit:
        if rule.custom_message:
            shown = {k: _shown(k, v) for k, v in context.items()}
            reason = render(rule.rule.message, {**shown, **values, "rule": rule.name})
        return RuleHit(rule=rule.name, action=rule.action, reason=reason, values=values)


def load_decider(
    path: str | os.PathLike[str] | None = None, *, clock: Clock = wall_clock_ms
) -> RiskDecider:
    """A decider with the rules in ``path`` (default: the shipped rule set, or pass
    ``settings.payments.risk_rules``); raises ``ConfigError`` naming the file, line, rule and
    key of a mistake."""
    return RiskDecider(load_ruleset(path), clock=clock)
