"""The simulator's traffic: realistic webhook bodies for Stripe, PayPal and the bank feed, with
fraud patterns mixed in (card testing bursts, large amounts, country mismatches, retries of
the same event, and sloppy payloads that carry a full test card number).

``EventPlan`` is an endless, seeded stream of ``SimEvent`` in send order. Bodies are built
when asked for, so their times are current; signing happens at send time (``simulate``), so a
retry of an event is the same body signed again, as the processors retry.
"""

from __future__ import annotations

import collections
import enum
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sysmonstm.domains.payments.simulate_cards import SimCard, make_cards

PROCESSORS = ("stripe", "paypal", "bank")

# ISO 4217: minor-unit exponent and numeric code of the currencies the simulator uses
CURRENCIES: dict[str, tuple[int, str]] = {
    "USD": (2, "840"),
    "EUR": (2, "978"),
    "GBP": (2, "826"),
    "CAD": (2, "124"),
    "AUD": (2, "036"),
    "CHF": (2, "756"),
    "SEK": (2, "752"),
    "JPY": (0, "392"),
}
_HOME_CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "ES": "EUR", "JP": "JPY", "CA": "CAD"}
_RISKY_COUNTRIES = ("NG", "RU", "BR", "VN", "ID", "RO")
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Donald", "Frances")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman", "Knuth")


class Pattern(enum.StrEnum):
    NORMAL = "normal"
    CARD_TESTING = "card_testing"  # many small charges on one card within seconds
    LARGE = "large"  # above the large-transaction threshold (USD 10,000)
    COUNTRY_MISMATCH = "country_mismatch"  # billing and IP country differ from the card's
    RETRY = "retry"  # the same event delivered again
    PAN_LEAK = "pan_leak"  # a full card number in a field a sloppy integration sends
    FOLLOW_UP = "follow_up"  # a later event about an earlier payment (refund)


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the traffic (the rest is normal), and the processors' shares."""

    card_testing: float = 0.01  # chance that a burst starts (each burst is many events)
    burst: int = 8  # charges per card-testing burst
    large: float = 0.03
    country_mismatch: float = 0.05
    retry: float = 0.05
    pan_leak: float = 0.02
    follow_up: float = 0.03
    processors: tuple[float, float, float] = (0.6, 0.25, 0.15)  # stripe, paypal, bank


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One webhook delivery to make: ``body`` goes to ``processor``'s adapter as is."""

    processor: str
    event_id: str  # the processor's own event id
    kind: str  # its event type (charge.succeeded, PAYMENT.CAPTURE.COMPLETED, bank.entry)
    body: bytes
    pattern: Pattern
    pan: str = ""  # the card number the body carries ("" unless a sloppy payload)
    repeat: bool = False  # an event already delivered once

    @property
    def key(self) -> str:
        """The hub's idempotency key for it."""
        return f"{self.processor}:{self.event_id}"


@dataclass(frozen=True, slots=True)
class Payment:
    processor: str
    transaction_id: str
    amount_minor: int
    currency: str
    card: SimCard | None
    country: str
    ip: str
    ip_country: str
    email: str
    name: str
    created_s: int


def _decimal(amount_minor: int, currency: str) -> str:
    exp = CURRENCIES[currency][0]
    if exp == 0:
        return str(amount_minor)
    whole, frac = divmod(amount_minor, 10**exp)
    return f"{whole}.{frac:0{exp}d}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def stripe_body(event_id: str, kind: str, p: Payment, pan: str, refunded: bool = False) -> bytes:
    """A Stripe ``charge.*`` event as Stripe sends it (API version 2024-06-20)."""
    card: dict[str, object] = {}
    if p.card is not None:
        card = {
            "brand": p.card.brand,
            "country": p.card.country,
            "exp_month": 12,
            "exp_year": 2030,
            "fingerprint": p.card.processor_fingerprint,
            "funding": "credit",
            "iin": p.card.bin,
            "last4": p.card.last4,
            "network": p.card.brand,
        }
    metadata = {"order_id": f"ord_{p.transaction_id[3:11]}", "ip": p.ip}
    if pan and len(pan) % 2:  # sloppy integrations leak it in different places
        metadata["card_number"] = pan
    elif pan:
        card["number"] = pan
    charge = {
        "id": p.transaction_id,
        "object": "charge",
        "amount": p.amount_minor,
        "amount_captured": p.amount_minor,
        "amount_refunded": p.amount_minor if refunded else 0,
        "captured": True,
        "created": p.created_s,
        "currency": p.currency.lower(),
        "livemode": False,
        "paid": True,
        "refunded": refunded,
        "status": "succeeded",
        "payment_intent": "pi_" + p.transaction_id[3:],
        "billing_details": {
            "address": {"country": p.country},
            "email": p.email,
            "name": p.name,
        },
        "payment_method_details": {"type": "card", "card": card},
        "metadata": metadata,
        "description": f"Order {metadata['order_id']}",
    }
    return _dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "data": {"object": charge},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
    )


def paypal_body(event_id: str, kind: str, p: Payment, pan: str) -> bytes:
    """A PayPal ``PAYMENT.CAPTURE.*`` webhook event (v2 capture resource)."""
    source: dict[str, object] = {}
    if p.card is not None:
        card: dict[str, object] = {
            "brand": p.card.brand.upper(),
            "last_digits": p.card.last4,
            "type": "CREDIT",
            "bin_details": {
                "bin": p.card.bin,
                "bin_country_code": p.card.country,  # PayPal's name for it
                "issuing_country_code": p.card.country,  # the name our adapter reads
            },
        }
        if pan:
            card["number"] = pan
        source = {"card": card}
    given, _, surname = p.name.partition(" ")
    status = "REFUNDED" if kind.endswith("REFUNDED") else "COMPLETED"
    value = _decimal(p.amount_minor, p.currency)
    resource = {
        "id": p.transaction_id,
        "status": status,
        "amount": {"currency_code": p.currency, "value": value},
        "final_capture": True,
        "create_time": _iso(p.created_s),
        "update_time": _iso(time.time()),
        "payment_source": source,
        "payer": {
            "email_address": p.email,
            "name": {"given_name": given, "surname": surname},
            "address": {"country_code": p.country},
        },
        "supplementary_data": {"related_ids": {"order_id": "O-" + p.transaction_id[-10:]}},
        "custom_id": p.ip,
    }
    return _dumps(
        {
            "id": event_id,
            "event_version": "1.0",
            "create_time": _iso(time.time()),
            "resource_type": "capture",
            "resource_version": "2.0",
            "event_type": kind,
            "summary": f"Payment {status.lower()} for {p.currency} {value}",
            "resource": resource,
        }
    )


def bank_body(entry_ref: str, p: Payment, pan: str = "") -> bytes:
    """One entry of the bank's JSON statement feed (camt.053's entry as JSON): ISO 4217
    numeric currency code, amount as a decimal string, booking time, counterparty (a sloppy
    feed pastes the card number into the remittance text)."""
    remittance = f"Invoice {p.transaction_id[-8:]}" + (f" card {pan}" if pan else "")
    return _dumps(
        {
            "entries": [
                {
                    "entry_ref": entry_ref,
                    "acct_svcr_ref": entry_ref,
                    "transaction_id": p.transaction_id,
                    "booking_time": _iso(p.created_s),
                    "value_date": _iso(p.created_s)[:10],
                    "amount": _decimal(p.amount_minor, p.currency),
                    "currency": CURRENCIES[p.currency][1],
                    "credit_debit": "CRDT",
                    "status": "BOOK",
                    "counterparty": {"name": p.name, "country": p.country},
                    "remittance_info": remittance,
                }
            ]
        }
    )


@dataclass
class EventPlan:
    """An endless, seeded stream of webhook deliveries (see the module doc)."""

    seed: int = 0
    mix: Mix = field(default_factory=Mix)
    currencies: Sequence[str] = ("USD", "EUR", "GBP", "JPY")
    cards: int = 500
    _rng: random.Random = field(init=False)
    _cards: list[SimCard] = field(init=False)
    _queue: collections.deque[SimEvent] = field(init=False)
    _recent: collections.deque[SimEvent] = field(init=False)
    _paid: collections.deque[Payment] = field(init=False)
    _n: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.currencies = [c for c in self.currencies if c in CURRENCIES] or ["USD"]
        self._rng = random.Random(self.seed)
        self._cards = make_cards(self._rng, self.cards)
        self._queue = collections.deque()
        self._recent = collections.deque(maxlen=500)
        self._paid = collections.deque(maxlen=500)

    def __iter__(self) -> Iterator[SimEvent]:
        return self

    def __next__(self) -> SimEvent:
        if not self._queue:
            self._queue.extend(self._roll())
        event = self._queue.popleft()
        if not event.repeat:
            self._recent.append(event)
        return event

    # -- building blocks ---------------------------------------------------------------------

    def _id(self, prefix: str, length: int = 24) -> str:
        self._n += 1
        tail = "".join(self._rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        return f"{prefix}{self._n:0{length - 8}d}{tail}"

    def _currency(self, country: str) -> str:
        home = _HOME_CURRENCY.get(country, "USD")
        return home if home in self.currencies else self._rng.choice(list(self.currencies))

    def _amount(self, currency: str, low_usd: float, high_usd: float) -> int:
        usd = self._rng.uniform(low_usd, high_usd)
        exp = CURRENCIES[currency][0]
        per_usd = 150.0 if currency == "JPY" else 1.0  # only the order of magnitude matters
        return max(1, round(usd * per_usd * 10.0**exp))

    def _payment(self, processor: str, card: SimCard | None, pattern: Pattern) -> Payment:
        rng = self._rng
        country = card.country if card else rng.choice(("US", "GB", "DE", "JP"))
        ip_country = country
        if pattern is Pattern.COUNTRY_MISMATCH:
            country = ip_country = rng.choice(_RISKY_COUNTRIES)
        if pattern is Pattern.LARGE:
            currency = "USD" if "USD" in self.currencies else self.currencies[0]
            amount = self._amount(currency, 12_000, 60_000)
        elif pattern is Pattern.CARD_TESTING:
            currency = "USD" if "USD" in self.currencies else self.currencies[0]
            amount = self._amount(currency, 0.5, 2.0)
        else:
            currency = self._currency(country)
            amount = self._amount(currency, 5, 400)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        prefix = {"stripe": "ch_", "paypal": "", "bank": "BK"}[processor]
        return Payment(
            processor=processor,
            transaction_id=self._id(prefix, 17 if processor == "paypal" else 24),
            amount_minor=amount,
            currency=currency,
            card=card,
            country=country,
            ip=f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            ip_country=ip_country,
            email=f"{first}.{last}{rng.randrange(1000)}@example.com".lower(),
            name=f"{first} {last}",
            created_s=int(time.time()),
        )

    def _deliver(self, p: Payment, pattern: Pattern, pan: str = "") -> SimEvent:
        if p.processor == "stripe":
            eid = self._id("evt_")
            body = stripe_body(eid, "charge.succeeded", p, pan)
            return SimEvent("stripe", eid, "charge.succeeded", body, pattern, pan)
        if p.processor == "paypal":
            eid = self._id("WH-", 30)
            kind = "PAYMENT.CAPTURE.COMPLETED"
            return SimEvent("paypal", eid, kind, paypal_body(eid, kind, p, pan), pattern, pan)
        ref = self._id("NTRY")
        return SimEvent("bank", ref, "bank.entry", bank_body(ref, p, pan), pattern, pan)

    # -- patterns ------------------------------------------------------------------------------

    def _roll(self) -> list[SimEvent]:
        rng, mix = self._rng, self.mix
        processor = rng.choices(PROCESSORS, weights=mix.processors)[0]
        carded = processor != "bank"
        roll = rng.random()
        if processor == "stripe" and roll < mix.card_testing:  # PayPal sends no card to count
            card = rng.choice(self._cards)
            return [
                self._deliver(
                    self._payment(processor, card, Pattern.CARD_TESTING), Pattern.CARD_TESTING
                )
                for _ in range(mix.burst)
            ]
        roll -= mix.card_testing
        if roll < mix.retry and self._recent:
            first = rng.choice(self._recent)
            return [
                SimEvent(
                    first.processor,
                    first.event_id,
                    first.kind,
                    first.body,
                    Pattern.RETRY,
                    first.pan,
                    repeat=True,
                )
            ]
        roll -= mix.retry
        if roll < mix.follow_up and self._paid:
            return [self._refund(rng.choice(self._paid))]
        roll -= mix.follow_up
        pattern = Pattern.NORMAL
        for share, candidate in (
            (mix.large, Pattern.LARGE),
            (mix.country_mismatch, Pattern.COUNTRY_MISMATCH),
            (mix.pan_leak, Pattern.PAN_LEAK),
        ):
            if roll < share:
                pattern = candidate
                break
            roll -= share
        if not carded and pattern is Pattern.COUNTRY_MISMATCH:
            pattern = Pattern.NORMAL  # a bank entry has no card and no payer IP
        picked = rng.choice(self._cards) if carded else None
        payment = self._payment(processor, picked, pattern)
        if processor != "bank":
            self._paid.append(payment)
        pan = ""
        if pattern is Pattern.PAN_LEAK:
            pan = (picked or rng.choice(self._cards)).pan
        return [self._deliver(payment, pattern, pan)]

    def _refund(self, p: Payment) -> SimEvent:
        if p.processor == "stripe":
            eid = self._id("evt_")
            body = stripe_body(eid, "charge.refunded", p, "", refunded=True)
            return SimEvent("stripe", eid, "charge.refunded", body, Pattern.FOLLOW_UP)
        eid = self._id("WH-", 30)
        kind = "PAYMENT.CAPTURE.REFUNDED"
        return SimEvent("paypal", eid, kind, paypal_body(eid, kind, p, ""), Pattern.FOLLOW_UP)
