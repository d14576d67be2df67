"""Backtesting: replay stored transactions through a draft rule set, report what changes.

Each stored event with ``from_ms <= time < to_ms`` is decided again by the draft rules with a
``RiskView`` over the stored history as of that event: the card counts see the events stored
with an earlier time (or the same time and an earlier place in the ledger's (time, event id)
order) and the event itself, as the ledger's own view does when events arrive in time order;
history from ``lookback`` before ``from_ms`` (the draft's longest window) is read for that.
Lists are the ledger's lists as they stand now. A decision *changes* when the draft's action
differs from the stored one; the report lists exactly those, with both explanations.

Known limit: a transaction whose first event lies before the lookback counts, for a later
event of it, as first seen at that later event.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sysmonstm.domains.payments.ledger import Ledger, Recorded
from sysmonstm.domains.payments.lists import ListIndex
from sysmonstm.domains.payments.model import Action, Decision, ListKind, ListMode, Transaction
from sysmonstm.domains.payments.risk import RiskDecider
from sysmonstm.domains.payments.risk_rules import RuleSet

PAGE = 1000


class HistoryView:
    """A ``RiskView`` over transactions added in memory: the card counts as of the last one
    added (add in time order), the lists from a ``ListIndex``."""

    def __init__(self, lists: ListIndex | None = None) -> None:
        self._lists = lists or ListIndex()
        self._first: dict[str, dict[str, int]] = {}  # card -> transaction id -> first time
        self._times: dict[str, list[int]] = {}  # card -> those first times, sorted

    def add(self, tx: Transaction) -> None:
        """Record ``tx``'s event; its payment is first seen at its earliest event's time."""
        if not tx.card_fingerprint:
            return
        first = self._first.setdefault(tx.card_fingerprint, {})
        times = self._times.setdefault(tx.card_fingerprint, [])
        known = first.get(tx.transaction_id)
        if known is not None and known <= tx.time_ms:
            return
        if known is not None:
            del times[bisect.bisect_left(times, known)]
        first[tx.transaction_id] = tx.time_ms
        bisect.insort(times, tx.time_ms)

    async def card_count(self, fingerprint: str, since_ms: int, until_ms: int) -> int:
        times = self._times.get(fingerprint, [])
        return bisect.bisect_right(times, until_ms) - bisect.bisect_right(times, since_ms)

    async def listed(self, kind: ListKind, value: str) -> ListMode | None:
        return self._lists.listed(kind, value)


def _explain(decision: Decision) -> list[dict[str, Any]]:
    return [
        {"rule": h.rule, "action": h.action.label, "reason": h.reason, "values": dict(h.values)}
        for h in decision.hits
    ]


@dataclass(frozen=True, slots=True)
class Change:
    """One event whose decision the draft would change."""

    tx: Transaction
    before: Decision
    after: Decision

    def to_json(self) -> dict[str, Any]:
        tx = self.tx
        return {
            "event_id": tx.event_id,
            "transaction_id": tx.transaction_id,
            "time_ms": tx.time_ms,
            "amount_minor": tx.amount_minor,
            "currency": tx.currency,
            "before": {
                "action": self.before.action.label,
                "ruleset": self.before.ruleset,
                "hits": _explain(self.before),
            },
            "after": {
                "action": self.after.action.label,
                "ruleset": self.after.ruleset,
                "hits": _explain(self.after),
            },
        }


@dataclass(slots=True)
class Report:
    """The outcome: how many events were replayed, the changes, and the changes counted by
    (before, after) action."""

    ruleset: str
    from_ms: int
    to_ms: int
    replayed: int = 0
    changes: list[Change] = field(default_factory=list)

    def transitions(self) -> dict[str, int]:
        """``"approve->block": n`` per kind of change, sorted by the pair."""
        counted = Counter((c.before.action, c.after.action) for c in self.changes)
        return {f"{b.label}->{a.label}": n for (b, a), n in sorted(counted.items())}

    def to_json(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "replayed": self.replayed,
            "changed": len(self.changes),
            "transitions": self.transitions(),
            "changes": [c.to_json() for c in self.changes],
        }


async def _stored(ledger: Ledger, from_ms: int, to_ms: int) -> AsyncIterator[Recorded]:
    after: str | None = None
    while True:
        page = await ledger.transactions(from_ms, to_ms, limit=PAGE, after_event=after)
        for rec in page:
            yield rec
        if len(page) < PAGE:
            return
        after = page[-1].tx.event_id


async def backtest(
    ledger: Ledger,
    ruleset: RuleSet,
    from_ms: int,
    to_ms: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Replay the stored events in ``[from_ms, to_ms)`` through ``ruleset`` (see the module
    docstring); ``progress`` is told how many events were read so far."""
    view = HistoryView(ListIndex(await ledger.list_entries()))
    # The replay must not read the clock: decided_ms is not compared, and the events' own
    # time keeps a report identical from one run to the next.
    decider = RiskDecider(ruleset, clock=lambda: 0)
    report = Report(ruleset.label, from_ms, to_ms)
    read = 0
    async for rec in _stored(ledger, from_ms - ruleset.lookback_ms, to_ms):
        view.add(rec.tx)
        read += 1
        if progress is not None:
            progress(read)
        if rec.tx.time_ms < from_ms:
            continue
        report.replayed += 1
        after = await decider(rec.tx, view)
        if after.action is not rec.decision.action:
            report.changes.append(Change(rec.tx, rec.decision, after))
    return report


def changed_actions(report: Report) -> dict[str, tuple[Action, Action]]:
    """Event id → (stored action, draft action) for every change (handy for assertions)."""
    return {c.tx.event_id: (c.before.action, c.after.action) for c in report.changes}
