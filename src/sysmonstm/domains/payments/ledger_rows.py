"""How the ledger's values become rows and bus payloads, the same for every backend.

Personal fields (e-mail, name) are sealed by a ``PiiCipher`` before they reach a row and
opened when read; with no key configured they are not kept at all (``NoPii``), never in
clear. Bus payloads and audit bodies carry masked card data only (BIN, last 4, the first
12 hex digits of the fingerprint) and no personal field.
"""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and placeholders

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sysmonstm.domains.payments.audit import canonical_json
from sysmonstm.domains.payments.ledger import OutboxEvent, Recorded, ReviewItem
from sysmonstm.domains.payments.model import (
    Action,
    Decision,
    RuleHit,
    Status,
    Transaction,
    Verdict,
)
from sysmonstm.errors import SysmonstmError

FINGERPRINT_SHOWN = 12  # hex digits of a card fingerprint in payloads and audit bodies

# the columns of pay_transactions in the order ``tx_row`` gives them
TX_COLUMNS = (
    "event_id",
    "processor",
    "transaction_id",
    "status",
    "amount_minor",
    "currency",
    "time_ms",
    "card_fingerprint",
    "card_bin",
    "card_last4",
    "card_country",
    "country",
    "ip_country",
    "ip",
    "email",
    "customer_name",
    "description",
    "metadata",
    "source",
    "amount_base_minor",
    "base_currency",
    "recorded_ms",
)
DECISION_COLUMNS = ("action", "hits", "decided_ms", "ruleset")
# a Recorded as one SELECT: the transaction's columns, then its decision's
RECORDED_SELECT = (
    "SELECT "
    + ", ".join(f"t.{c}" for c in TX_COLUMNS)
    + ", "
    + ", ".join(f"d.{c}" for c in DECISION_COLUMNS)
    + " FROM pay_transactions t JOIN pay_decisions d ON d.event_id = t.event_id"
)

Row = Sequence[Any]


UNREADABLE = "[unreadable]"  # a sealed field that does not open with the key (pii.py's)


class PiiCipher(Protocol):
    """Seals a personal field for storage and opens it again (``pii.PiiCipher``); ``aad``
    binds the sealed value to its row (the event id), so it cannot be moved to another."""

    def seal(self, plaintext: str, aad: str = "") -> str: ...

    def unseal(self, sealed: str, aad: str = "") -> str: ...


class NoPii:
    """No key configured: personal fields are dropped, never stored in clear."""

    def seal(self, plaintext: str, aad: str = "") -> str:
        return ""

    def unseal(self, sealed: str, aad: str = "") -> str:
        return ""


def _unsealed(pii: PiiCipher, sealed: str, aad: str) -> str:
    if not sealed:
        return ""
    try:
        return pii.unseal(sealed, aad)
    except SysmonstmError:  # another key, or an altered value: say so, do not fail the read
        return UNREADABLE


def masked_card(tx: Transaction) -> dict[str, str]:
    return {
        "bin": tx.card_bin,
        "last4": tx.card_last4,
        "fingerprint": tx.card_fingerprint[:FINGERPRINT_SHOWN],
        "country": tx.card_country,
    }


def tx_row(tx: Transaction, pii: PiiCipher, recorded_ms: int) -> tuple[object, ...]:
    """The pay_transactions row of ``tx`` (``TX_COLUMNS`` order), personal fields sealed."""
    return (
        tx.event_id,
        tx.processor,
        tx.transaction_id,
        tx.status.value,
        tx.amount_minor,
        tx.currency,
        tx.time_ms,
        tx.card_fingerprint,
        tx.card_bin,
        tx.card_last4,
        tx.card_country,
        tx.country,
        tx.ip_country,
        tx.ip,
        pii.seal(tx.email, tx.event_id) if tx.email else "",
        pii.seal(tx.customer_name, tx.event_id) if tx.customer_name else "",
        tx.description,
        canonical_json(dict(tx.metadata)),
        tx.source,
        tx.amount_base_minor,
        tx.base_currency,
        recorded_ms,
    )


def tx_from_row(row: Row, pii: PiiCipher) -> Transaction:
    """The transaction of a row in ``TX_COLUMNS`` order (``row`` may hold more columns)."""
    v = dict(zip(TX_COLUMNS, row, strict=False))
    return Transaction(
        event_id=v["event_id"],
        processor=v["processor"],
        transaction_id=v["transaction_id"],
        status=Status(v["status"]),
        amount_minor=int(v["amount_minor"]),
        currency=v["currency"],
        time_ms=int(v["time_ms"]),
        card_fingerprint=v["card_fingerprint"],
        card_bin=v["card_bin"],
        card_last4=v["card_last4"],
        card_country=v["card_country"],
        country=v["country"],
        ip_country=v["ip_country"],
        ip=v["ip"],
        email=_unsealed(pii, v["email"], v["event_id"]),
        customer_name=_unsealed(pii, v["customer_name"], v["event_id"]),
        description=v["description"],
        metadata=json.loads(v["metadata"]),
        source=v["source"],
        amount_base_minor=int(v["amount_base_minor"]),
        base_currency=v["base_currency"],
    )


def hits_json(hits: Sequence[RuleHit]) -> list[dict[str, object]]:
    return [
        {"rule": h.rule, "action": h.action.label, "reason": h.reason, "values": dict(h.values)}
        for h in hits
    ]


def hits_from_json(text: str) -> tuple[RuleHit, ...]:
    return tuple(
        RuleHit(h["rule"], Action[h["action"].upper()], h["reason"], h["values"])
        for h in json.loads(text)
    )


def decision_row(d: Decision) -> tuple[object, ...]:
    """``(event_id, transaction_id, *DECISION_COLUMNS)`` of a decision."""
    return (
        d.event_id,
        d.transaction_id,
        int(d.action),
        canonical_json(hits_json(d.hits)),
        d.decided_ms,
        d.ruleset,
    )


def recorded_from_row(row: Row, pii: PiiCipher) -> Recorded:
    """A ``RECORDED_SELECT`` row."""
    tx = tx_from_row(row, pii)
    action, hits, decided_ms, ruleset = row[len(TX_COLUMNS) : len(TX_COLUMNS) + 4]
    decision = Decision(
        tx.event_id, tx.transaction_id, Action(int(action)), hits_from_json(hits),
        int(decided_ms), ruleset,
    )  # fmt: skip
    return Recorded(tx, decision)


def review_from_row(row: Row, pii: PiiCipher) -> ReviewItem:
    """A ``RECORDED_SELECT`` row followed by verdict, analyst, note, reviewed_ms."""
    rec = recorded_from_row(row, pii)
    verdict, analyst, note, reviewed_ms = row[len(TX_COLUMNS) + 4 :]
    return ReviewItem(
        rec.tx,
        rec.decision,
        Verdict(verdict) if verdict else None,
        analyst or "",
        note or "",
        int(reviewed_ms or 0),
    )


def decision_json(d: Decision) -> dict[str, object]:
    return {
        "action": d.action.label,
        "hits": hits_json(d.hits),
        "ruleset": d.ruleset,
        "decided_ms": d.decided_ms,
    }


def tx_payload(tx: Transaction) -> dict[str, object]:
    """A transaction as published and audited: masked card, no personal field."""
    return {
        "event_id": tx.event_id,
        "transaction_id": tx.transaction_id,
        "processor": tx.processor,
        "status": tx.status.value,
        "amount_minor": tx.amount_minor,
        "currency": tx.currency,
        "amount_base_minor": tx.amount_base_minor,
        "base_currency": tx.base_currency,
        "time_ms": tx.time_ms,
        "card": masked_card(tx),
        "country": tx.country,
        "ip_country": tx.ip_country,
        "source": tx.source,
    }


def processed_payload(rec: Recorded) -> dict[str, object]:
    """``transactions.processed`` and ``risk.decision.<action>``: the event and its decision."""
    return {**tx_payload(rec.tx), "decision": decision_json(rec.decision)}


def review_payload(item: ReviewItem) -> dict[str, object]:
    """``payments.review.<verdict>``."""
    assert item.verdict is not None
    return {
        **tx_payload(item.tx),
        "decision": decision_json(item.decision),
        "review": {
            "verdict": item.verdict.value,
            "analyst": item.analyst,
            "note": item.note,
            "reviewed_ms": item.reviewed_ms,
        },
    }


def outbox_from_row(row: Row) -> OutboxEvent:
    """``id, topic, message_id, payload`` → the event."""
    payload: Mapping[str, object] = json.loads(row[3])
    return OutboxEvent(int(row[0]), row[1], row[2], payload)
