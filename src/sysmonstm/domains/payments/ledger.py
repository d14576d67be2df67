"""The ledger seam: transactions, decisions, reviews, lists, the audit chain and the outbox,
written exactly once (SQLite embedded, PostgreSQL in production; the warm tier's URL).

Exactly once: ``record`` inserts each event under a unique ``event_id``; for the new ones it
asks ``decide`` for the decision (inside the same transaction, so the velocity count it reads
and the row it writes cannot race), appends the audit entries and the outgoing bus events
(the outbox), and commits all of it together. Replays, retries and a crash before the commit
leave nothing twice; a crash after it leaves the outbox to publish (publishing is at least
once, with the event id as the bus message id, so the bus drops the repeat).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sysmonstm.domains.payments.model import (
    Action,
    AuditEntry,
    Decision,
    ListEntry,
    ListKind,
    ListMode,
    Transaction,
    Verdict,
)


class RiskView(Protocol):
    """What a decision may read, as of the transaction being decided (inside ``record``)."""

    async def card_count(self, fingerprint: str, since_ms: int, until_ms: int) -> int:
        """Distinct payments (transaction ids) on the card first seen in (since, until],
        the one being decided included."""
        ...

    async def listed(self, kind: ListKind, value: str) -> ListMode | None: ...


class Decider(Protocol):
    async def __call__(self, tx: Transaction, view: RiskView) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Recorded:
    """A transaction event stored for the first time, with its decision."""

    tx: Transaction
    decision: Decision


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    topic: str  # transactions.processed | risk.decision.<action> | payments.review.<verdict>
    message_id: str  # stable: the bus drops a repeat
    payload: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ReviewItem:
    tx: Transaction
    decision: Decision
    verdict: Verdict | None = None
    analyst: str = ""
    note: str = ""
    reviewed_ms: int = 0


@dataclass(frozen=True, slots=True)
class Broken:
    """The first audit entry whose stored hash or link does not hold."""

    seq: int
    reason: str


class Ledger(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def record(
        self, txs: Sequence[Transaction], decide: Decider, actor: str
    ) -> list[Recorded]:
        """Store the events not stored yet, each with one decision, audit entries and outbox
        events, in one transaction; events already stored are left out of the result."""
        ...

    async def seen(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events are stored (the slow, exact duplicate check)."""
        ...

    async def get(self, event_id: str) -> Recorded | None: ...

    async def transactions(
        self,
        from_ms: int,
        to_ms: int,
        *,
        action: Action | None = None,
        card: str | None = None,
        limit: int = 1000,
        after_event: str | None = None,
    ) -> list[Recorded]: ...

    async def review_queue(self, limit: int = 100) -> list[ReviewItem]:
        """Transactions decided REVIEW that no analyst has answered, oldest first."""
        ...

    async def resolve_review(
        self, event_id: str, verdict: Verdict, analyst: str, note: str, now_ms: int
    ) -> ReviewItem:
        """Answer a review once (a second answer is refused); audited and put in the outbox
        in the same transaction."""
        ...

    async def list_entries(self) -> list[ListEntry]: ...

    async def set_list_entry(self, entry: ListEntry, actor: str) -> None: ...

    async def remove_list_entry(
        self, mode: ListMode, kind: ListKind, value: str, actor: str
    ) -> bool: ...

    async def audit(self, from_seq: int = 1, limit: int = 1000) -> list[AuditEntry]: ...

    async def append_audit(
        self, kind: str, actor: str, subject: str, body: Mapping[str, object], now_ms: int
    ) -> AuditEntry:
        """One entry outside ``record`` (an audit read, an export)."""
        ...

    async def verify_audit(self) -> Broken | None:
        """Walk the chain from the first entry; ``None`` when every link holds."""
        ...

    async def outbox(self, limit: int = 1000) -> list[OutboxEvent]: ...

    async def outbox_done(self, ids: Sequence[int]) -> None: ...
