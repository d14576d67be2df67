"""How audit entries and ledger rows look in the archive: Arrow schemas and conversions.

Audit entries keep every chain field (``body`` as the canonical JSON the hash covers), so an
archived month re-verifies on its own (``audit.ChainWalk`` seeded with its first entry's
``seq`` and ``prev_hash``). Ledger rows keep the transaction and its decision; the personal
fields (e-mail, name), encrypted at rest in the warm tier, are not archived at all: the audit
asks for the payment and its decision, not the payer's address book. Columns hold no nulls
(``ContentHash`` requires it): absent text is ``""``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from sysmonstm.domains.payments.audit import canonical_json
from sysmonstm.domains.payments.ledger import Recorded
from sysmonstm.domains.payments.model import AuditEntry


def _fields(spec: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=False) for n, t in spec])


AUDIT_SCHEMA = _fields(
    [
        ("seq", pa.int64()),
        ("time_ms", pa.int64()),
        ("kind", pa.string()),
        ("actor", pa.string()),
        ("subject", pa.string()),
        ("body", pa.string()),
        ("prev_hash", pa.string()),
        ("hash", pa.string()),
    ]
)

_LEDGER_TEXT = (
    "event_id",
    "processor",
    "transaction_id",
    "status",
    "currency",
    "card_fingerprint",
    "card_bin",
    "card_last4",
    "card_country",
    "country",
    "ip_country",
    "ip",
    "description",
    "metadata",  # JSON object
    "source",
    "base_currency",
    "action",
    "hits",  # JSON list of {rule, action, reason, values}
    "ruleset",
)
_LEDGER_INT = ("amount_minor", "time_ms", "amount_base_minor", "decided_ms")
LEDGER_SCHEMA = _fields(
    [(n, pa.string()) for n in _LEDGER_TEXT] + [(n, pa.int64()) for n in _LEDGER_INT]
)


def audit_table(entries: Sequence[AuditEntry]) -> pa.Table:
    """``entries`` (in ``seq`` order) as a table of ``AUDIT_SCHEMA``."""
    columns: dict[str, list[Any]] = {
        "seq": [e.seq for e in entries],
        "time_ms": [e.time_ms for e in entries],
        "kind": [e.kind for e in entries],
        "actor": [e.actor for e in entries],
        "subject": [e.subject for e in entries],
        "body": [canonical_json(dict(e.body)) for e in entries],
        "prev_hash": [e.prev_hash for e in entries],
        "hash": [e.hash for e in entries],
    }
    return pa.table(columns, schema=AUDIT_SCHEMA)


def audit_entries(table: pa.Table) -> list[AuditEntry]:
    """The entries an ``AUDIT_SCHEMA`` table holds, in its order."""
    rows = table.to_pylist()
    return [
        AuditEntry(
            seq=r["seq"],
            time_ms=r["time_ms"],
            kind=r["kind"],
            actor=r["actor"],
            subject=r["subject"],
            body=json.loads(r["body"]),
            prev_hash=r["prev_hash"],
            hash=r["hash"],
        )
        for r in rows
    ]


def _ledger_row(r: Recorded) -> dict[str, Any]:
    tx, d = r.tx, r.decision
    hits = [
        {"rule": h.rule, "action": h.action.label, "reason": h.reason, "values": dict(h.values)}
        for h in d.hits
    ]
    return {
        "event_id": tx.event_id,
        "processor": tx.processor,
        "transaction_id": tx.transaction_id,
        "status": tx.status.value,
        "currency": tx.currency,
        "card_fingerprint": tx.card_fingerprint,
        "card_bin": tx.card_bin,
        "card_last4": tx.card_last4,
        "card_country": tx.card_country,
        "country": tx.country,
        "ip_country": tx.ip_country,
        "ip": tx.ip,
        "description": tx.description,
        "metadata": canonical_json(dict(tx.metadata)),
        "source": tx.source,
        "base_currency": tx.base_currency,
        "action": d.action.label,
        "hits": canonical_json(hits),
        "ruleset": d.ruleset,
        "amount_minor": tx.amount_minor,
        "time_ms": tx.time_ms,
        "amount_base_minor": tx.amount_base_minor,
        "decided_ms": d.decided_ms,
    }


def ledger_table(rows: Sequence[Recorded]) -> pa.Table:
    """``rows`` as a table of ``LEDGER_SCHEMA``, sorted by (time, event id)."""
    found = sorted((_ledger_row(r) for r in rows), key=lambda x: (x["time_ms"], x["event_id"]))
    columns = {name: [row[name] for row in found] for name in LEDGER_SCHEMA.names}
    return pa.table(columns, schema=LEDGER_SCHEMA)
