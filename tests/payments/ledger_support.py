"""Helpers for ledger tests: transactions, simple deciders, a ledger on each backend."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sysmonstm.domains.payments.ledger import RiskView
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.ledgers import open_ledger
from sysmonstm.domains.payments.model import Action, Decision, RuleHit, Status, Transaction
from sysmonstm.domains.payments.pii import PiiCipher

PII_KEY = base64.b64encode(bytes(range(32))).decode()
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def tx(n: int, **changes: object) -> Transaction:
    """Event ``stripe:evt_<n>`` of payment ``pi_<n>``, 10.00 USD, at ``T0 + n`` seconds."""
    fields: dict[str, object] = {
        "event_id": f"stripe:evt_{n}",
        "processor": "stripe",
        "transaction_id": f"pi_{n}",
        "status": Status.CAPTURED,
        "amount_minor": 1000,
        "currency": "USD",
        "time_ms": T0 + n * 1000,
        "card_fingerprint": "ab" * 32,
        "card_bin": "42424242",
        "card_last4": "4242",
        "card_country": "US",
        "country": "US",
        "ip_country": "US",
        "ip": "192.0.2.1",
        "email": f"payer{n}@example.com",
        "customer_name": f"Payer {n}",
        "source": "stripe-1",
        "amount_base_minor": 1000,
    }
    fields.update(changes)
    return Transaction(**fields)  # type: ignore[arg-type]


async def approve_all(t: Transaction, view: RiskView) -> Decision:
    """Approves everything (the decider of tests about storage, not rules)."""
    return Decision(t.event_id, t.transaction_id, Action.APPROVE, (), T0, "test-approve-all")


class Counting:
    """Reviews amounts over 100.00 base, and records the card count each decision saw."""

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.calls = 0

    async def __call__(self, t: Transaction, view: RiskView) -> Decision:
        self.calls += 1
        seen = await view.card_count(t.card_fingerprint, t.time_ms - 60_000, t.time_ms)
        self.counts.append(seen)
        hits: tuple[RuleHit, ...] = ()
        action = Action.APPROVE
        if t.amount_base_minor > 10_000:
            action = Action.REVIEW
            hit = RuleHit("large", Action.REVIEW, "over 100", {"amount": t.amount_base_minor})
            hits = (hit,)
        return Decision(t.event_id, t.transaction_id, action, hits, T0, "test-counting")


def ledger_url(backend: str, tmp_path: Path, pg_dsn: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'warm.db'}"
    assert pg_dsn is not None
    return pg_dsn


@asynccontextmanager
async def opened_ledger(url: str) -> AsyncIterator[SqlLedger]:
    ledger = open_ledger(url, PiiCipher(base64.b64decode(PII_KEY)))
    await ledger.open()
    try:
        yield ledger
    finally:
        await ledger.close()
