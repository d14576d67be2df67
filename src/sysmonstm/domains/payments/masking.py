"""What each role sees of a transaction and its decision (the API's JSON shapes).

- **viewer**: no e-mail, name, IP or metadata; the card as fingerprint prefix, BIN and last
  four; rule values that repeat one of those hidden fields are masked too.
- **analyst**: what a review needs: the full fingerprint (to list a card), e-mail, IP,
  countries, metadata; the customer's name only as initials.
- **auditor**, **admin**: everything.

The ledger hands transactions over with their personal fields decrypted (``pii.py`` at
rest); this is where they are withheld from the roles that may not see them. A viewer's
fingerprint prefix is as long as the bus payloads' (``ledger_rows.FINGERPRINT_SHOWN``).
"""

from __future__ import annotations

from typing import Any

from sysmonstm.domains.payments.ledger import Recorded, ReviewItem
from sysmonstm.domains.payments.ledger_rows import FINGERPRINT_SHOWN as FINGERPRINT_PREFIX
from sysmonstm.domains.payments.model import Decision, ListEntry, Transaction
from sysmonstm.domains.payments.tokens import Role

HIDDEN = ""


def fingerprint_prefix(fingerprint: str) -> str:
    return fingerprint[:FINGERPRINT_PREFIX]


def initials(name: str) -> str:
    """``"Jane Q. Doe"`` → ``"J. Q. D."``."""
    return " ".join(f"{part[0]}." for part in name.split() if part[:1].isalpha())


def exponent_of(currency: str) -> int:
    """The ISO 4217 minor-unit exponent (money.py's table; 2 for a code it does not know)."""
    from sysmonstm.domains.payments.money import EXPONENTS

    return EXPONENTS.get(currency, 2)


class Masker:
    """Renders transactions, decisions and reviews for one role."""

    def __init__(self, role: Role) -> None:
        self.role = role

    @property
    def full(self) -> bool:
        return self.role in (Role.AUDITOR, Role.ADMIN)

    def transaction(self, tx: Transaction) -> dict[str, Any]:
        viewer = self.role is Role.VIEWER
        name = HIDDEN if viewer else tx.customer_name if self.full else initials(tx.customer_name)
        return {
            "event_id": tx.event_id,
            "processor": tx.processor,
            "transaction_id": tx.transaction_id,
            "status": tx.status.value,
            "amount_minor": tx.amount_minor,
            "currency": tx.currency,
            "exponent": exponent_of(tx.currency),
            "amount_base_minor": tx.amount_base_minor,
            "base_currency": tx.base_currency,
            "time_ms": tx.time_ms,
            "card": {
                "fingerprint": fingerprint_prefix(tx.card_fingerprint)
                if viewer
                else tx.card_fingerprint,
                "bin": tx.card_bin,
                "last4": tx.card_last4,
                "country": tx.card_country,
            },
            "country": tx.country,
            "ip_country": tx.ip_country,
            "ip": HIDDEN if viewer else tx.ip,
            "email": HIDDEN if viewer else tx.email,
            "customer_name": name,
            "description": tx.description,
            "metadata": {} if viewer else dict(tx.metadata),
            "source": tx.source,
            "masked": not self.full,
        }

    def _secrets_of(self, tx: Transaction) -> dict[str, str]:
        """Values a viewer must not see in a rule's explanation, with what to show instead."""
        if self.role is not Role.VIEWER:
            return {}
        hide = {v: "…" for v in (tx.email, tx.ip, tx.customer_name) if v}
        if tx.card_fingerprint:
            hide[tx.card_fingerprint] = fingerprint_prefix(tx.card_fingerprint)
        return hide

    def decision(self, decision: Decision, tx: Transaction) -> dict[str, Any]:
        hide = self._secrets_of(tx)

        def value(v: object) -> object:
            return hide.get(v, v) if isinstance(v, str) else v

        return {
            "action": decision.action.label,
            "decided_ms": decision.decided_ms,
            "ruleset": decision.ruleset,
            "hits": [
                {
                    "rule": hit.rule,
                    "action": hit.action.label,
                    "reason": hit.reason,
                    "values": {k: value(v) for k, v in hit.values.items()},
                }
                for hit in decision.hits
            ],
        }

    def recorded(self, rec: Recorded) -> dict[str, Any]:
        return {**self.transaction(rec.tx), "decision": self.decision(rec.decision, rec.tx)}

    def review(self, item: ReviewItem) -> dict[str, Any]:
        return {
            **self.transaction(item.tx),
            "decision": self.decision(item.decision, item.tx),
            "review": review_answer(item),
        }


def review_answer(item: ReviewItem) -> dict[str, Any] | None:
    if item.verdict is None:
        return None
    return {
        "verdict": item.verdict.value,
        "analyst": item.analyst,
        "note": item.note,
        "reviewed_ms": item.reviewed_ms,
    }


def list_entry(entry: ListEntry) -> dict[str, Any]:
    return {
        "mode": entry.mode.value,
        "kind": entry.kind.value,
        "value": entry.value,
        "note": entry.note,
        "added_by": entry.added_by,
        "added_ms": entry.added_ms,
    }
