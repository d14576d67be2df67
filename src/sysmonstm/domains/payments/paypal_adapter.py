"""PayPal webhook events (already verified) → ``Transaction``.

============================== ==========
``PAYMENT.AUTHORIZATION.CREATED`` authorized
``PAYMENT.CAPTURE.COMPLETED``     captured
``PAYMENT.CAPTURE.REFUNDED``      refunded
``CUSTOMER.DISPUTE.CREATED``      disputed
``PAYMENT.CAPTURE.DENIED``        failed
============================== ==========

Other types return ``None``. Amounts are PayPal's decimal strings (``amount.value`` +
``currency_code``, or v1's ``total`` + ``currency``; a dispute's ``dispute_amount``), parsed
exactly, with PayPal's own decimals (none for HUF, JPY, TWD) as the limit. ``transaction_id``
ties the events of one payment together: the order id of ``supplementary_data.related_ids``,
else its authorization id, else for a refund the capture it refunds (the ``up`` link), for a
dispute the seller transaction disputed, else the resource id. PayPal sends no card
fingerprint; ``payment_source.card`` gives the last four, BIN and country, and a card number
found anywhere is fingerprinted and scrubbed. The payer's IP is taken from ``custom_id`` when
the merchant's integration puts one there (it is kept only if it parses as an IP address).
"""

from __future__ import annotations

from typing import Any

from sysmonstm.domains.payments import money
from sysmonstm.domains.payments.model import Status, Transaction
from sysmonstm.domains.payments.payload import (
    country,
    dig,
    email,
    ip_text,
    iso_ms,
    metadata,
    pan_in,
    required,
    text,
)
from sysmonstm.errors import InvalidInputError

PROCESSOR = "paypal"
STATUSES = {
    "PAYMENT.AUTHORIZATION.CREATED": Status.AUTHORIZED,
    "PAYMENT.CAPTURE.COMPLETED": Status.CAPTURED,
    "PAYMENT.CAPTURE.REFUNDED": Status.REFUNDED,
    "CUSTOMER.DISPUTE.CREATED": Status.DISPUTED,
    "PAYMENT.CAPTURE.DENIED": Status.FAILED,
}


def _amount(resource: dict[str, Any]) -> tuple[int, str]:
    for path, value_key, code_key in (
        (("amount",), "value", "currency_code"),
        (("amount",), "total", "currency"),
        (("dispute_amount",), "value", "currency_code"),
    ):
        holder = dig(resource, *path)
        if isinstance(dig(holder, value_key), str):
            code = money.currency(required(holder, code_key))
            places = money.processor_exponent(PROCESSOR, code)
            return money.parse_decimal(required(holder, value_key), code, places=places), code
    raise InvalidInputError("resource.amount (value and currency_code) is missing")


def _up_link(resource: dict[str, Any]) -> str:
    links = resource.get("links")
    for link in links if isinstance(links, list) else []:
        if dig(link, "rel") == "up" and isinstance(href := dig(link, "href"), str):
            return href.rstrip("/").rpartition("/")[2][:255]
    return ""


def _transaction_id(event_type: str, resource: dict[str, Any]) -> str:
    related = dig(resource, "supplementary_data", "related_ids")
    for key in ("order_id", "authorization_id"):
        if found := text(related, key, limit=255):
            return found
    if event_type == "PAYMENT.CAPTURE.REFUNDED" and (up := _up_link(resource)):
        return up
    disputed = resource.get("disputed_transactions")
    first = disputed[0] if isinstance(disputed, list) and disputed else None
    if found := text(first, "seller_transaction_id", limit=255):
        return found
    return required(resource, "id") if "id" in resource else required(resource, "dispute_id")


def normalize(event: dict[str, Any], card_key: bytes, source: str = "") -> Transaction | None:
    """The transaction an event reports, or ``None`` for a type not listed above."""
    event_type = required(event, "event_type")
    status = STATUSES.get(event_type)
    if status is None:
        return None
    resource = event.get("resource")
    if not isinstance(resource, dict):
        raise InvalidInputError("resource is missing or not an object")
    amount, currency = _amount(resource)
    payer = resource.get("payer")
    disputed = resource.get("disputed_transactions")
    buyer = dig(disputed[0], "buyer") if isinstance(disputed, list) and disputed else None
    card = dig(resource, "payment_source", "card")
    fingerprint, card_bin = "", text(card, "bin_details", "bin")
    last4 = text(card, "last_digits")
    if (found := pan_in(event, card_key)) is not None:
        fingerprint, card_bin, last4 = found.fingerprint, found.bin, found.last4
    given, surname = text(payer, "name", "given_name"), text(payer, "name", "surname")
    return Transaction(
        event_id=f"{PROCESSOR}:{required(event, 'id')}",
        processor=PROCESSOR,
        transaction_id=_transaction_id(event_type, resource),
        status=status,
        amount_minor=amount,
        currency=currency,
        time_ms=iso_ms(required(event, "create_time"), "create_time"),
        card_fingerprint=fingerprint,
        card_bin=card_bin if card_bin.isdigit() and len(card_bin) in (6, 8) else "",
        card_last4=last4 if last4.isdigit() and len(last4) == 4 else "",
        card_country=country(card, "bin_details", "bin_country_code"),
        ip=ip_text(resource, "custom_id"),
        country=country(payer, "address", "country_code"),
        email=email(payer, "email_address") or email(buyer, "email"),
        customer_name=" ".join(p for p in (given, surname) if p) or text(buyer, "name"),
        description=text(event, "summary"),
        metadata=metadata(
            {"custom_id": custom} if (custom := text(resource, "custom_id")) else None,
            {"paypal_type": event_type, "paypal_resource": text(resource, "id")},
        ),
        source=source,
    )
