"""Wire ``TransactionBatch`` → ``PaymentBatch``, or ``InvalidInputError`` naming what is wrong.

Checks what one batch can show by itself, and refuses the batch whole on the first fault:
the adapter's identity and sequence, counts, the event id (``<processor>:<id>``), the
processor and lifecycle status names, the currency (ISO 4217, upper case), the amount (an
integer within ``0..max_amount_minor``), the time (within ``[now - max_past, now +
max_future]``), countries (ISO 3166-1 alpha-2 shape), card fields (64 hex digits, a BIN of
6 or 8 digits, 4 last digits), the IP, string lengths, and that no free-text field holds
something that looks like a card number (``card.find_pans``: digits passing Luhn; ids are
exempt, a bank's reference may be a long digit run).
The message of a refusal never repeats such a number.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sysmonstm.domains.payments.card import find_pans
from sysmonstm.domains.payments.model import Status, Transaction
from sysmonstm.domains.payments.money import currency as iso_currency
from sysmonstm.errors import InvalidInputError
from sysmonstm.transport.identity import MACHINE_ID, MACHINE_ID_RULE
from sysmonstm.v1 import payments_pb2 as pb

MAX_SEQUENCE = 2**63 - 1
PROCESSORS = frozenset({"stripe", "paypal", "bank"})
_STATUSES = {s.value: s for s in Status}
_COUNTRY = re.compile(r"[A-Z]{2}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_BIN = re.compile(r"[0-9]{6}(?:[0-9]{2})?")
_LAST4 = re.compile(r"[0-9]{4}")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class PaymentLimits:
    """What one batch may hold; beyond it a batch is refused whole."""

    max_transactions: int = 10_000
    max_id: int = 255  # characters of an event or transaction id
    max_text: int = 1_000  # of a description, a name, an e-mail
    max_metadata: int = 50  # entries
    max_metadata_text: int = 500  # characters of a metadata key or value
    max_amount_minor: int = 10**15  # a quadrillion minor units: beyond any real payment
    max_future_ms: int = 300_000
    max_past_ms: int = 400 * 86_400_000  # bank statements and disputes arrive late


@dataclass(frozen=True, slots=True)
class PaymentBatch:
    """A validated batch: the adapter instance, its sequence, the transactions in order."""

    source: str
    sequence: int
    txs: tuple[Transaction, ...]


def _text(value: str, what: str, limit: int, *, free: bool = True) -> str:
    """``value`` if printable within ``limit``; free text (not a processor's id, which may
    hold long digit runs by design) must not look like it holds a card number."""
    if len(value) > limit or not value.isprintable():
        raise InvalidInputError(f"{what} must be printable, at most {limit} characters")
    if free and any(True for _ in find_pans(value)):
        raise InvalidInputError(f"{what} looks like it holds a card number; none may be sent")
    return value


def _shaped(value: str, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if value and not pattern.fullmatch(value):
        raise InvalidInputError(f"{what} must be {rule} or empty")
    return value


def _metadata(raw: Mapping[str, str], at: str, lim: PaymentLimits) -> dict[str, str]:
    if len(raw) > lim.max_metadata:
        raise InvalidInputError(f"{at}metadata holds at most {lim.max_metadata} entries")
    out: dict[str, str] = {}
    for key in sorted(raw):
        _text(key, f"{at}metadata key", lim.max_metadata_text)
        out[key] = _text(raw[key], f"{at}metadata[{key!r}]", lim.max_metadata_text)
    return out


def _ids(raw: pb.Transaction, at: str, lim: PaymentLimits) -> tuple[str, str]:
    if raw.processor not in PROCESSORS:
        raise InvalidInputError(f"{at}processor must be one of {', '.join(sorted(PROCESSORS))}")
    event_id = _text(raw.event_id, f"{at}event_id", lim.max_id, free=False)
    prefix = raw.processor + ":"
    if not event_id.startswith(prefix) or len(event_id) == len(prefix):
        raise InvalidInputError(f"{at}event_id must be {prefix!r} followed by the processor's id")
    if not raw.transaction_id:
        raise InvalidInputError(f"{at}transaction_id is required")
    return event_id, _text(raw.transaction_id, f"{at}transaction_id", lim.max_id, free=False)


def _money(raw: pb.Transaction, at: str, lim: PaymentLimits) -> tuple[int, str]:
    if not _CURRENCY.fullmatch(raw.currency):
        raise InvalidInputError(f"{at}currency must be an upper-case ISO 4217 code")
    try:
        code = iso_currency(raw.currency)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{at}{exc.reason}") from None
    if not 0 <= raw.amount_minor <= lim.max_amount_minor:
        raise InvalidInputError(
            f"{at}amount_minor must be within 0..{lim.max_amount_minor} (minor units)"
        )
    return raw.amount_minor, code


def _ip(value: str, at: str) -> str:
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidInputError(f"{at}ip must be an IPv4 or IPv6 address or empty") from None


def _email(value: str, at: str, lim: PaymentLimits) -> str:
    text = _text(value, f"{at}email", min(lim.max_text, 254))
    if text and (text.count("@") != 1 or text.startswith("@") or text.endswith("@")):
        raise InvalidInputError(f"{at}email must be an address (one @) or empty")
    return text


def _transaction(raw: pb.Transaction, i: int, source: str, now_ms: int,
                 lim: PaymentLimits) -> Transaction:  # fmt: skip
    at = f"transaction {i}: "
    event_id, transaction_id = _ids(raw, at, lim)
    status = _STATUSES.get(raw.status)
    if status is None:
        raise InvalidInputError(f"{at}status must be one of {', '.join(_STATUSES)}")
    amount, code = _money(raw, at, lim)
    t = raw.time_unix_ms
    if not now_ms - lim.max_past_ms <= t <= now_ms + lim.max_future_ms:
        raise InvalidInputError(
            f"{at}time {t} ms is not within {lim.max_past_ms // 86_400_000} days before and"
            f" {lim.max_future_ms // 1000} s after now"
        )
    countries = [
        _shaped(getattr(raw, f), _COUNTRY, f"{at}{f}", "an upper-case ISO 3166-1 alpha-2 code")
        for f in ("card_country", "country", "ip_country")
    ]
    return Transaction(
        event_id=event_id,
        processor=raw.processor,
        transaction_id=transaction_id,
        status=status,
        amount_minor=amount,
        currency=code,
        time_ms=t,
        card_fingerprint=_shaped(
            raw.card_fingerprint, _FINGERPRINT, f"{at}card_fingerprint", "64 lower-case hex digits"
        ),
        card_bin=_shaped(raw.card_bin, _BIN, f"{at}card_bin", "6 or 8 digits"),
        card_last4=_shaped(raw.card_last4, _LAST4, f"{at}card_last4", "4 digits"),
        card_country=countries[0],
        country=countries[1],
        ip_country=countries[2],
        ip=_ip(raw.ip, at),
        email=_email(raw.email, at, lim),
        customer_name=_text(raw.customer_name, f"{at}customer_name", lim.max_text),
        description=_text(raw.description, f"{at}description", lim.max_text),
        metadata=_metadata(raw.metadata, at, lim),
        source=source,
    )


def transaction_batch(
    raw: object, now_ms: int, limits: PaymentLimits | None = None
) -> PaymentBatch:
    """The validated batch of ``raw`` (a wire ``TransactionBatch``) at wall time ``now_ms``.
    Amounts in the base currency are the hub's normalize step, not filled here."""
    lim = limits or PaymentLimits()
    if not isinstance(raw, pb.TransactionBatch):
        raise InvalidInputError("expected a TransactionBatch")
    if not raw.HasField("source") or not raw.source.machine_id:
        raise InvalidInputError("source.machine_id (the adapter instance) is required")
    source = raw.source.machine_id
    if not MACHINE_ID.fullmatch(source):
        raise InvalidInputError(f"source.machine_id must be {MACHINE_ID_RULE}")
    if not 1 <= raw.sequence <= MAX_SEQUENCE:
        raise InvalidInputError(f"sequence must be within 1..{MAX_SEQUENCE}")
    if not 1 <= len(raw.transactions) <= lim.max_transactions:
        raise InvalidInputError(
            f"a batch holds 1..{lim.max_transactions} transactions, not {len(raw.transactions)}",
            code="RESOURCE_EXHAUSTED" if raw.transactions else "INVALID_ARGUMENT",
        )
    txs = tuple(_transaction(t, i, source, now_ms, lim) for i, t in enumerate(raw.transactions))
    return PaymentBatch(source, raw.sequence, txs)
