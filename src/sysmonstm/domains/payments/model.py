"""The payment hub's values. Money is integer minor units plus an ISO 4217 code; times are
UTC Unix milliseconds; a card is only ever a keyed fingerprint, a BIN and a last four."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

DOMAIN = "payments"


class Status(enum.Enum):
    """One lifecycle for every processor's statuses."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    FAILED = "failed"


class Action(enum.IntEnum):
    """A decision; a larger value is stricter, and the strictest matching rule wins."""

    APPROVE = 0
    REVIEW = 1
    BLOCK = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Transaction:
    """One processor event about one payment, normalized (the wire's ``Transaction``).

    ``amount_base_minor`` is the amount in the hub's base currency (USD by default) from the
    configured rate table, filled by the hub's normalize stage; rules read it."""

    event_id: str  # idempotency key, "<processor>:<processor's event id>"
    processor: str
    transaction_id: str
    status: Status
    amount_minor: int
    currency: str
    time_ms: int
    card_fingerprint: str = ""
    card_bin: str = ""
    card_last4: str = ""
    card_country: str = ""
    country: str = ""
    ip_country: str = ""
    ip: str = ""
    email: str = ""
    customer_name: str = ""
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # the adapter instance that delivered it first
    amount_base_minor: int = 0
    base_currency: str = "USD"


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that matched, with the values it saw (its explanation)."""

    rule: str
    action: Action
    reason: str
    values: Mapping[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The hub's one decision about one transaction event."""

    event_id: str
    transaction_id: str
    action: Action
    hits: tuple[RuleHit, ...]
    decided_ms: int
    ruleset: str  # the rule set's name and version (hash) that decided


class ListKind(enum.Enum):
    CARD = "card"  # card fingerprint
    EMAIL = "email"
    IP = "ip"
    COUNTRY = "country"
    BIN = "bin"


class ListMode(enum.Enum):
    ALLOW = "allow"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class ListEntry:
    mode: ListMode
    kind: ListKind
    value: str
    note: str = ""
    added_by: str = ""
    added_ms: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the tamper-evident log: ``hash = sha256(prev_hash + canonical JSON of
    (seq, time_ms, kind, actor, subject, body))``."""

    seq: int
    time_ms: int
    kind: str  # transaction | status | decision | review | list | audit_read | ...
    actor: str  # "hub", an adapter, or the user behind a token
    subject: str  # the event or transaction id, list entry, ...
    body: Mapping[str, object]
    prev_hash: str
    hash: str


class Verdict(enum.Enum):
    """An analyst's answer to a transaction sent for review."""

    APPROVE = "approve"
    DECLINE = "decline"
