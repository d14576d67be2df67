"""Stripe events (already verified) → ``Transaction``.

Event types and their lifecycle status:

=========================================== ==================================
``payment_intent.succeeded``                captured
``charge.succeeded``                        captured (authorized when ``captured`` is false)
``charge.captured``                         captured
``payment_intent.amount_capturable_updated`` authorized (amount: ``amount_capturable``)
``charge.refunded``                         refunded (amount: ``amount_refunded``)
``charge.dispute.created``                  disputed (amount: the dispute's)
``payment_intent.payment_failed``           failed
``charge.failed``                           failed
=========================================== ==================================

Other types return ``None``: acknowledged, not forwarded. ``transaction_id`` is the payment
intent when there is one (every event of one payment shares it), else the charge. Amounts
are Stripe's integers in Stripe's unit (``money.from_processor_minor``). The card is Stripe's
``payment_method_details.card``: its ``fingerprint`` keyed through our HMAC, ``iin`` as the
BIN when present, ``last4``, ``country``. Stripe never sends a card number; if one appears
anywhere in the event anyway, it is fingerprinted (when the card is otherwise unknown) and
scrubbed from every kept text. The payer's IP comes from ``metadata.ip`` (Stripe does not
send it in webhooks; integrations that want IP rules put it there).
"""

from __future__ import annotations

from typing import Any

from sysmonstm.domains.payments import money
from sysmonstm.domains.payments.card import from_processor_fingerprint
from sysmonstm.domains.payments.model import Status, Transaction
from sysmonstm.domains.payments.payload import (
    country,
    dig,
    email,
    integer,
    ip_text,
    metadata,
    pan_in,
    required,
    text,
)
from sysmonstm.errors import InvalidInputError

PROCESSOR = "stripe"
STATUSES = {
    "payment_intent.succeeded": Status.CAPTURED,
    "charge.succeeded": Status.CAPTURED,
    "charge.captured": Status.CAPTURED,
    "payment_intent.amount_capturable_updated": Status.AUTHORIZED,
    "charge.refunded": Status.REFUNDED,
    "charge.dispute.created": Status.DISPUTED,
    "payment_intent.payment_failed": Status.FAILED,
    "charge.failed": Status.FAILED,
}
_AMOUNT_FIELD = {
    "charge.refunded": "amount_refunded",
    "payment_intent.amount_capturable_updated": "amount_capturable",
}


def _charge_of(obj: dict[str, Any]) -> object:
    """The charge holding card details: the object itself, or a payment intent's expanded
    ``latest_charge`` (or ``charges.data[0]`` of older API versions)."""
    if obj.get("object") == "charge":
        return obj
    latest = obj.get("latest_charge")
    if isinstance(latest, dict):
        return latest
    listed = dig(obj, "charges", "data")
    return listed[0] if isinstance(listed, list) and listed else None


def _transaction_id(obj: dict[str, Any]) -> str:
    kind = obj.get("object")
    if kind == "payment_intent":
        return required(obj, "id")
    for key in ("payment_intent", "charge"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value[:255]
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return required(value, "id")
    return required(obj, "id")


def normalize(event: dict[str, Any], card_key: bytes, source: str = "") -> Transaction | None:
    """The transaction an event reports, or ``None`` for a type not listed above.
    ``InvalidInputError`` (naming the field) when a listed event is malformed."""
    event_type = required(event, "type")
    status = STATUSES.get(event_type)
    if status is None:
        return None
    event_id = required(event, "id")
    obj = dig(event, "data", "object")
    if not isinstance(obj, dict):
        raise InvalidInputError("data.object is missing or not an object")
    if event_type == "charge.succeeded" and obj.get("captured") is False:
        status = Status.AUTHORIZED
    currency = money.currency(required(obj, "currency"))
    amount = money.from_processor_minor(
        PROCESSOR, integer(obj, _AMOUNT_FIELD.get(event_type, "amount")), currency
    )
    created = integer(event, "created")
    charge = _charge_of(obj)
    card = dig(charge, "payment_method_details", "card")
    fingerprint, card_bin, last4 = "", "", ""
    if isinstance(card, dict):
        if stripe_fp := text(card, "fingerprint"):
            fingerprint = from_processor_fingerprint(PROCESSOR, stripe_fp, card_key)
        iin = text(card, "iin")
        card_bin = iin if iin.isdigit() and len(iin) in (6, 8) else ""
        last4 = text(card, "last4") if text(card, "last4").isdigit() else ""
    if not fingerprint and (found := pan_in(event, card_key)) is not None:
        fingerprint, card_bin, last4 = found.fingerprint, found.bin, found.last4
    billing = dig(charge, "billing_details") or dig(obj, "billing_details")
    extras = {"stripe_type": event_type, "stripe_object": text(obj, "id")}
    if brand := text(card, "brand"):
        extras["card_brand"] = brand
    return Transaction(
        event_id=f"{PROCESSOR}:{event_id}",
        processor=PROCESSOR,
        transaction_id=_transaction_id(obj),
        status=status,
        amount_minor=amount,
        currency=currency,
        time_ms=created * 1000,
        card_fingerprint=fingerprint,
        card_bin=card_bin,
        card_last4=last4,
        card_country=country(card, "country"),
        country=country(billing, "address", "country")
        or country(obj, "shipping", "address", "country"),
        ip=ip_text(obj, "metadata", "ip"),
        email=email(billing, "email") or email(obj, "receipt_email"),
        customer_name=text(billing, "name"),
        description=text(obj, "description"),
        metadata=metadata(obj.get("metadata"), extras),
        source=source,
    )
