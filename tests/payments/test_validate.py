"""Wire TransactionBatch → PaymentBatch: what is accepted exactly as sent, and each fault
refused with a message naming the transaction and the field (never echoing a card number)."""

from __future__ import annotations

import pytest

from sysmonstm.domains.payments.model import Status, Transaction
from sysmonstm.domains.payments.validate import PaymentLimits, transaction_batch
from sysmonstm.errors import InvalidInputError
from tests.payments.wire import FINGERPRINT, batch, wire_tx

NOW = 1_796_000_000_000


def test_a_valid_batch_becomes_transactions_exactly() -> None:
    one = wire_tx(
        1, NOW - 10, event_id="paypal:WH-1", processor="paypal", metadata={"b": "2", "a": "1"},
        ip="2001:db8::1",
    )  # fmt: skip
    raw = batch("paypal-1", 7, [one])
    got = transaction_batch(raw, NOW)
    assert (got.source, got.sequence) == ("paypal-1", 7)
    assert got.txs == (
        Transaction(
            event_id="paypal:WH-1", processor="paypal", transaction_id="pi_1",
            status=Status.CAPTURED, amount_minor=1000, currency="USD", time_ms=NOW - 10,
            card_fingerprint=FINGERPRINT, card_bin="424242", card_last4="4242",
            card_country="US", country="US", ip_country="US", ip="2001:db8::1",
            email="payer1@example.com", customer_name="Payer 1", description="",
            metadata={"a": "1", "b": "2"}, source="paypal-1",
        ),
    )  # fmt: skip


def test_empty_optional_fields_and_a_bank_reference_of_digits_are_accepted() -> None:
    """No card (a bank transfer) leaves the card fields empty; a long digit reference in an id
    is the bank's, not a card number."""
    tx = wire_tx(
        1, NOW, event_id="bank:4242424242424242", processor="bank", card_fingerprint="",
        card_bin="", card_last4="", card_country="", ip="", email="", customer_name="",
    )  # fmt: skip
    got = transaction_batch(batch("bank-1", 1, [tx]), NOW).txs[0]
    assert (got.event_id, got.card_fingerprint, got.ip, got.email) == (
        "bank:4242424242424242", "", "", ""
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"transaction_id": ""}, "transaction_id is required"),
        ({"event_id": "stripe:"}, "event_id must be 'stripe:' followed by"),
        ({"event_id": "x" * 300}, "event_id must be printable, at most 255 characters"),
        ({"amount_minor": 10**15 + 1}, "amount_minor must be within 0..1000000000000000"),
        ({"currency": "EURO"}, "currency must be an upper-case ISO 4217 code"),
        ({"ip_country": "us"}, "ip_country must be an upper-case ISO 3166-1 alpha-2 code"),
        ({"card_bin": "4242"}, "card_bin must be 6 or 8 digits"),
        ({"email": "no-at-sign"}, "email must be an address (one @)"),
        ({"customer_name": "Jane\x00"}, "customer_name must be printable"),
        ({"customer_name": "5555555555554444"}, "customer_name looks like it holds a card"),
        ({"metadata": {str(i): "v" for i in range(51)}}, "metadata holds at most 50 entries"),
        ({"time_unix_ms": NOW + 300_001}, f"time {NOW + 300_001} ms is not within"),
    ],
)
def test_each_fault_is_named(change: dict[str, object], reason: str) -> None:
    raw = batch("stripe-1", 1, [wire_tx(1, NOW), wire_tx(2, NOW, **change)])
    with pytest.raises(InvalidInputError) as refused:
        transaction_batch(raw, NOW)
    assert refused.value.reason.startswith(f"transaction 1: {reason}")
    assert "5555555555554444" not in refused.value.reason


def test_batch_shape_faults() -> None:
    with pytest.raises(InvalidInputError, match="expected a TransactionBatch"):
        transaction_batch(object(), NOW)
    with pytest.raises(InvalidInputError, match=r"source\.machine_id must be"):
        transaction_batch(batch("bad id!", 1, [wire_tx(1, NOW)]), NOW)
    with pytest.raises(InvalidInputError, match="sequence must be within"):
        transaction_batch(batch("stripe-1", 0, [wire_tx(1, NOW)]), NOW)
    small = PaymentLimits(max_transactions=2)
    with pytest.raises(InvalidInputError) as big:
        transaction_batch(batch("stripe-1", 1, [wire_tx(i, NOW) for i in range(3)]), NOW, small)
    assert big.value.code == "RESOURCE_EXHAUSTED"
