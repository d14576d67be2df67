"""Allow and block lists: how a value is written down, which of a transaction's values are
looked up, and what a match decides.

Values are normalised once, when an entry is stored (the API, the CLI), and a transaction's
values the same way when they are looked up, so an entry matches however either was typed:
e-mails trimmed and lower-cased, countries upper-case ISO 3166 alpha-2, IPs in their
canonical form (``ipaddress``), BINs 6 to 8 digits (spaces and dashes dropped), card
fingerprints trimmed (hex lower-cased).

Which values of a transaction are looked up: its card fingerprint; its e-mail; its IP; each
of its countries (the transaction's, the IP's and the card's); its BIN and the BIN's 6- and
7-digit prefixes (an entry of 6 digits covers every 8-digit BIN under it).

What a match decides (``sysmonstm.domains.payments.risk``): any allow match approves at once,
before any rule; any block match blocks. A value on both lists counts as blocked
(``ListIndex``), the safe side of a contradiction.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sysmonstm.domains.payments.ledger import Ledger, RiskView
from sysmonstm.domains.payments.model import (
    Action,
    ListEntry,
    ListKind,
    ListMode,
    RuleHit,
    Transaction,
)

ALLOW_RULE = "allow_list"
BLOCK_RULE = "block_list"
_COUNTRY = re.compile(r"[A-Z]{2}")
_BIN = re.compile(r"[0-9]{6,8}")
_FINGERPRINT = re.compile(r"[A-Za-z0-9_:+/=.\-]{8,200}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize(kind: ListKind, value: str) -> str:
    """``value`` as entries and lookups compare it; ``ValueError`` saying why it cannot be
    one of ``kind``."""
    text = value.strip()
    if kind is ListKind.EMAIL:
        text = text.lower()
        if not _EMAIL.fullmatch(text):
            raise ValueError(f"{value!r} is not an e-mail address")
        return text
    if kind is ListKind.COUNTRY:
        text = text.upper()
        if not _COUNTRY.fullmatch(text):
            raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code")
        return text
    if kind is ListKind.IP:
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    if kind is ListKind.BIN:
        digits = text.replace(" ", "").replace("-", "")
        if not _BIN.fullmatch(digits):
            raise ValueError(f"{value!r} is not a BIN (6 to 8 digits)")
        return digits
    if not _FINGERPRINT.fullmatch(text):
        raise ValueError(f"{value!r} is not a card fingerprint")
    return text.lower() if _HEX.fullmatch(text) else text


def _normalized(kind: ListKind, value: str) -> str | None:
    if not value:
        return None
    try:
        return normalize(kind, value)
    except ValueError:
        return None  # a malformed value on a transaction matches no entry


def lookups(tx: Transaction) -> Iterator[tuple[ListKind, str, str]]:
    """(kind, normalised value, the transaction's field) for every value of ``tx`` a list
    may hold, each once, in a fixed order (decisions must be deterministic)."""
    fields: list[tuple[ListKind, str, str]] = [
        (ListKind.CARD, "card_fingerprint", tx.card_fingerprint),
        (ListKind.EMAIL, "email", tx.email),
        (ListKind.IP, "ip", tx.ip),
        (ListKind.COUNTRY, "country", tx.country),
        (ListKind.COUNTRY, "ip_country", tx.ip_country),
        (ListKind.COUNTRY, "card_country", tx.card_country),
    ]
    seen: set[tuple[ListKind, str]] = set()
    for kind, field, raw in fields:
        value = _normalized(kind, raw)
        if value is not None and (kind, value) not in seen:
            seen.add((kind, value))
            yield kind, value, field
    card_bin = _normalized(ListKind.BIN, tx.card_bin)
    if card_bin is not None:
        for size in range(len(card_bin), 5, -1):
            yield ListKind.BIN, card_bin[:size], "card_bin"


@dataclass(frozen=True, slots=True)
class ListMatch:
    mode: ListMode
    kind: ListKind
    value: str
    field: str

    def hit(self) -> RuleHit:
        """The match as a decision's explanation (fingerprints shortened, as in payloads)."""
        allow = self.mode is ListMode.ALLOW
        shown = mask(self.kind, self.value)
        return RuleHit(
            rule=ALLOW_RULE if allow else BLOCK_RULE,
            action=Action.APPROVE if allow else Action.BLOCK,
            reason=f"{self.field} {shown} is on the {self.mode.value} list",
            values={"kind": self.kind.value, "value": shown, "field": self.field},
        )


async def matches(tx: Transaction, view: RiskView) -> list[ListMatch]:
    """Every listed value of ``tx``, in ``lookups`` order."""
    found = []
    for kind, value, field in lookups(tx):
        mode = await view.listed(kind, value)
        if mode is not None:
            found.append(ListMatch(mode, kind, value, field))
    return found


def mask(kind: ListKind, value: str) -> str:
    """What an explanation shows of a listed value: a card fingerprint's first 12 characters
    (as bus payloads do), an e-mail's first letter and domain; the rest as they are."""
    if kind is ListKind.CARD:
        return value[:12] + "…" if len(value) > 12 else value
    if kind is ListKind.EMAIL and "@" in value:
        local, domain = value.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    return value


class ListIndex:
    """Entries held in memory, answering ``RiskView.listed`` (backtests, tests)."""

    def __init__(self, entries: Iterable[ListEntry] = ()) -> None:
        self._modes: dict[tuple[ListKind, str], ListMode] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: ListEntry) -> None:
        key = (entry.kind, normalize(entry.kind, entry.value))
        if self._modes.get(key) is not ListMode.BLOCK:
            self._modes[key] = entry.mode

    def listed(self, kind: ListKind, value: str) -> ListMode | None:
        return self._modes.get((kind, value))


async def add_entry(ledger: Ledger, entry: ListEntry, actor: str) -> ListEntry:
    """Store ``entry`` with its value normalised (``ValueError`` if it cannot be one);
    returns the entry as stored."""
    stored = ListEntry(
        mode=entry.mode,
        kind=entry.kind,
        value=normalize(entry.kind, entry.value),
        note=" ".join(entry.note.split()),
        added_by=entry.added_by or actor,
        added_ms=entry.added_ms,
    )
    await ledger.set_list_entry(stored, actor)
    return stored


async def remove_entry(
    ledger: Ledger, mode: ListMode, kind: ListKind, value: str, actor: str
) -> bool:
    """Remove the entry (its value normalised first); whether the list held it."""
    return await ledger.remove_list_entry(mode, kind, normalize(kind, value), actor)
