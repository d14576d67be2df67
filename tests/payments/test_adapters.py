"""Done-when 1: webhooks signed exactly as Stripe and PayPal sign them reach the spool; every
mutation of body, header, timestamp or secret is refused with a clear 4xx and spools nothing.
Then the whole way: a real adapter (uvicorn) → a real hub (gRPC) → one ledger row."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI

from sysmonstm.domains.payments import adapter_app, card, stripe_sig
from sysmonstm.domains.payments.adapter_app import AdapterContext, TxSpool
from sysmonstm.domains.payments.adapter_run import run_adapter
from sysmonstm.domains.payments.paypal_sig import CertCache, PaypalVerifier
from sysmonstm.domains.payments.resources import ledger
from sysmonstm.transport.spool import Spool
from sysmonstm.v1 import payments_pb2 as pb
from tests.aggregator_fixtures import running_aggregator
from tests.conftest import free_port
from tests.payments.paypal_pki import WEBHOOK_ID, PaypalPki, paypal_pki
from tests.payments.wire import eventually, hub_settings

KEY = b"c" * 32
NEW, OLD = "whsec_new_5f0e9d8c7b6a", "whsec_old_0a1b2c3d4e5f"
PAN = "4000056655665556"
TOKEN = "bank-feed-token-123"  # noqa: S105 - a test token


def stripe_event(event_id: str = "evt_1", **charge: Any) -> bytes:
    obj = {
        "id": "ch_1", "object": "charge", "amount": 2599, "currency": "eur", "captured": True,
        "payment_intent": "pi_1", "description": "Order 77",
        "billing_details": {"email": "jane@example.com", "name": "Jane Doe",
                            "address": {"country": "DE"}},
        "payment_method_details": {"type": "card", "card": {
            "brand": "visa", "country": "US", "last4": "4242", "fingerprint": "Xt5EWLLDS7FJjR1c",
            "iin": "424242"}},
        "metadata": {"ip": "203.0.113.7", "order": "77"},
    }  # fmt: skip
    obj.update(charge)
    event = {"id": event_id, "object": "event", "type": "charge.succeeded",
             "created": int(time.time()), "data": {"object": obj}}  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def paypal_event(event_id: str = "WH-1") -> bytes:
    event = {
        "id": event_id, "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "create_time": "2024-05-01T10:00:00Z", "summary": "Payment completed",
        "resource": {"id": "CAP-1", "amount": {"currency_code": "JPY", "value": "1500"},
                     "supplementary_data": {"related_ids": {"order_id": "O-1"}},
                     "payer": {"email_address": "p@example.com",
                               "name": {"given_name": "Pat", "surname": "Lee"},
                               "address": {"country_code": "JP"}}},
    }  # fmt: skip
    return json.dumps(event).encode()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    made = Spool(tmp_path / "spool")
    yield made
    made.close()


def ctx_of(spool: Spool) -> AdapterContext:
    return AdapterContext(TxSpool(spool, "stripe-test"), KEY, "stripe-test")


def signed(body: bytes, secrets: str | list[str]) -> dict[str, str]:
    """The Stripe-Signature header of ``body`` signed now with ``secrets``."""
    return {"Stripe-Signature": stripe_sig.sign(body, secrets)}


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://adapter")


def spooled(spool: Spool) -> list[pb.Transaction]:
    out: list[pb.Transaction] = []
    for _, data in spool.pending(0):
        out.extend(pb.TransactionBatch.FromString(data).transactions)
    return out


async def test_stripe_webhook_is_verified_normalized_and_spooled(spool: Spool) -> None:
    """A webhook signed as Stripe signs it (Stripe's library agrees) is answered 200 only
    after it is in the spool, with exactly the normalized transaction."""
    body = stripe_event()
    header = stripe_sig.sign(body, NEW)
    assert stripe.WebhookSignature.verify_header(body.decode(), header, NEW, 300)
    async with client(adapter_app.stripe_app(ctx_of(spool), [OLD, NEW], 300)) as c:
        r = await c.post(adapter_app.STRIPE_PATH, content=body,
                         headers={"Stripe-Signature": header})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"received": ["stripe:evt_1"], "sequence": spool.last_sequence}
    (tx,) = spooled(spool)
    assert (tx.event_id, tx.processor, tx.transaction_id, tx.status) == (
        "stripe:evt_1", "stripe", "pi_1", "captured")  # fmt: skip
    assert (tx.amount_minor, tx.currency, tx.card_bin, tx.card_last4) == (2599, "EUR", "424242",
                                                                        "4242")  # fmt: skip
    assert tx.card_fingerprint == card.from_processor_fingerprint("stripe", "Xt5EWLLDS7FJjR1c", KEY)
    assert (tx.card_country, tx.country, tx.ip, tx.email, tx.customer_name) == (
        "US", "DE", "203.0.113.7", "jane@example.com", "Jane Doe")  # fmt: skip
    assert dict(tx.metadata) == {
        "ip": "203.0.113.7",
        "order": "77",
        "card_brand": "visa",
        "stripe_type": "charge.succeeded",
        "stripe_object": "ch_1",
    }


def _mutations(body: bytes, now: int) -> list[tuple[str, bytes, dict[str, str]]]:
    good = stripe_sig.sign(body, NEW, now)
    return [
        ("body changed", body.replace(b"2599", b"2590"), {"Stripe-Signature": good}),
        ("body appended", body + b"\n", {"Stripe-Signature": good}),
        ("header missing", body, {}),
        ("header garbled", body, {"Stripe-Signature": "t=abc,v1=zz"}),
        ("signature flipped", body, {"Stripe-Signature": good[:-1] + ("0" if good[-1] != "0"
                                                                     else "1")}),
        ("scheme v0 only", body, {"Stripe-Signature": good.replace("v1=", "v0=")}),
        ("timestamp swapped", body, {"Stripe-Signature": good.replace(f"t={now}",
                                                                     f"t={now - 1}")}),
        # 300 s is the tolerance; 330 leaves room for a slow run crossing a few seconds
        ("too old", body, {"Stripe-Signature": stripe_sig.sign(body, NEW, now - 330)}),
        ("from the future", body, {"Stripe-Signature": stripe_sig.sign(body, NEW, now + 330)}),
        ("wrong secret", body, {"Stripe-Signature": stripe_sig.sign(body, "whsec_x", now)}),
    ]  # fmt: skip


async def test_every_stripe_mutation_is_refused_and_spools_nothing(spool: Spool) -> None:
    """Body, header, timestamp (outside tolerance either way) and secret mutations: 400 with
    a JSON error naming the reason; the spool stays empty; the adapter keeps serving."""
    body, now = stripe_event(), int(time.time())
    async with client(adapter_app.stripe_app(ctx_of(spool), [OLD, NEW], 300)) as c:
        for name, sent, headers in _mutations(body, now):
            r = await c.post(adapter_app.STRIPE_PATH, content=sent, headers=headers)
            assert r.status_code == 400, name
            error = r.json()["error"]
            assert error["code"] in {
                "invalid_signature",
                "missing_signature",
                "malformed_signature",
                "timestamp_out_of_tolerance",
            }, name
            assert NEW not in r.text
            assert OLD not in r.text
        assert spool.last_sequence == 0
        assert spool.pending_count == 0
        assert list(spool.directory.glob("*.seg")) == []
        ok = await c.post(adapter_app.STRIPE_PATH, content=body, headers=signed(body, NEW))
        assert ok.status_code == 200
        assert spool.pending_count == 1


async def test_rotation_either_secret_verifies(spool: Spool) -> None:
    """During a rotation both secrets verify, alone or side by side in one header."""
    app = adapter_app.stripe_app(ctx_of(spool), [OLD, NEW], 300)
    async with client(app) as c:
        for i, secrets in enumerate((OLD, NEW, [OLD, NEW])):
            body = stripe_event(f"evt_r{i}")
            r = await c.post(adapter_app.STRIPE_PATH, content=body, headers=signed(body, secrets))
            assert r.status_code == 200, r.text
    assert [t.event_id for t in spooled(spool)] == ["stripe:evt_r0", "stripe:evt_r1",
                                                    "stripe:evt_r2"]  # fmt: skip


async def test_signed_but_bad_payloads_are_refused_and_unknown_types_ignored(spool: Spool) -> None:
    """A valid signature over an unusable event is a 400 naming the problem; an event type
    the hub does not take is acknowledged and not spooled; neither writes anything."""
    cases = [
        (stripe_event(currency="xyz"), 400, "unknown currency"),
        (stripe_event(amount=-5), 400, "amount is missing or not a non-negative integer"),
        (b"not json", 400, "not JSON"),
    ]
    ignored = json.dumps({"id": "evt_c", "type": "customer.created", "data": {}}).encode()
    async with client(adapter_app.stripe_app(ctx_of(spool), [NEW], 300)) as c:
        for body, status, message in cases:
            r = await c.post(adapter_app.STRIPE_PATH, content=body, headers=signed(body, NEW))
            assert r.status_code == status
            assert message in r.json()["error"]["message"]
            assert r.json()["error"]["code"] == "invalid_payload"
        r = await c.post(adapter_app.STRIPE_PATH, content=ignored, headers=signed(ignored, NEW))
        assert r.json() == {"ignored": "customer.created"}
    assert spool.last_sequence == 0


async def test_a_card_number_in_a_payload_never_reaches_the_spool(spool: Spool) -> None:
    """A PAN a sloppy integration put in metadata and the description is scrubbed; the
    transaction still carries Stripe's keyed fingerprint."""
    body = stripe_event(metadata={"card_number": PAN}, description=f"paid with {PAN}")
    async with client(adapter_app.stripe_app(ctx_of(spool), [NEW], 300)) as c:
        r = await c.post(adapter_app.STRIPE_PATH, content=body, headers=signed(body, NEW))
    assert r.status_code == 200
    raw = b"".join(data for _, data in spool.pending(0))
    assert PAN.encode() not in raw
    assert b"5556" in raw
    for seg in spool.directory.glob("*.seg"):
        assert PAN.encode() not in seg.read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaypalPki]:
    with paypal_pki(tmp_path_factory.mktemp("paypal")) as made:
        yield made


def paypal_app(spool: Spool, pki: PaypalPki, webhook_id: str = WEBHOOK_ID) -> FastAPI:
    certs = CertCache([pki.host.host], pki.host.ca_file)
    return adapter_app.paypal_app(ctx_of(spool), PaypalVerifier(webhook_id, certs))


async def test_paypal_webhook_is_verified_and_spooled(spool: Spool, pki: PaypalPki) -> None:
    """A PayPal-signed delivery (certificate from the allowed local host) is spooled with
    PayPal's decimal JPY amount exact."""
    body = paypal_event()
    headers = pki.host.signer(pki.key).headers(body, WEBHOOK_ID)
    async with client(paypal_app(spool, pki)) as c:
        r = await c.post(adapter_app.PAYPAL_PATH, content=body, headers=headers)
    assert r.status_code == 200, r.text
    (tx,) = spooled(spool)
    assert (tx.event_id, tx.transaction_id, tx.status, tx.amount_minor, tx.currency) == (
        "paypal:WH-1", "O-1", "captured", 1500, "JPY")  # fmt: skip
    assert (tx.email, tx.customer_name, tx.country) == ("p@example.com", "Pat Lee", "JP")


async def test_paypal_forgeries_are_refused_and_spool_nothing(spool: Spool, pki: PaypalPki) -> None:
    """A certificate URL on another host (never fetched), a tampered body (its CRC changes),
    a wrong webhook id, a foreign signing key: 400 each, nothing spooled."""
    from tests.payments.paypal_pki import signing_cert

    body = paypal_event()
    signer = pki.host.signer(pki.key)
    elsewhere = signer.headers(body, WEBHOOK_ID) | {"PAYPAL-CERT-URL": "https://evil.test/c.pem"}
    forged_key, _ = signing_cert(pki.ca)
    downloads = dict(pki.host.downloads)
    async with client(paypal_app(spool, pki)) as c:
        r = await c.post(adapter_app.PAYPAL_PATH, content=body, headers=elsewhere)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "cert_url_not_allowed")
        assert pki.host.downloads == downloads
        cases = [
            (body.replace(b"1500", b"1501"), signer.headers(body, WEBHOOK_ID)),
            (body, signer.headers(body, "SOME-OTHER-WEBHOOK")),
            (body, pki.host.signer(forged_key).headers(body, WEBHOOK_ID)),
        ]
        for sent, headers in cases:
            r = await c.post(adapter_app.PAYPAL_PATH, content=sent, headers=headers)
            assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_signature")
    async with client(paypal_app(spool, pki, webhook_id="OTHER")) as c:
        r = await c.post(adapter_app.PAYPAL_PATH, content=body,
                         headers=signer.headers(body, WEBHOOK_ID))  # fmt: skip
        assert r.status_code == 400
    assert spool.last_sequence == 0


async def test_bank_feed_needs_its_token(spool: Spool) -> None:
    """No or a wrong bearer token: 401 with WWW-Authenticate, nothing spooled; the right
    one: the entries are spooled, camt uploads too."""
    body = json.dumps({"entries": [{"entry_ref": "BK1", "booking_time": "2024-05-01T10:00:00Z",
                                    "amount": "10.00", "currency": "978",
                                    "credit_debit": "CRDT"}]}).encode()  # fmt: skip
    async with client(adapter_app.bank_app(ctx_of(spool), TOKEN)) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            r = await c.post(adapter_app.FEED_PATH, content=body, headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["code"] == "unauthorized"
        assert spool.last_sequence == 0
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = await c.post(adapter_app.FEED_PATH, content=body, headers=auth)
        assert r.json()["received"] == ["bank:BK1"]
        from tests.payments.test_bank import CAMT054

        r = await c.post(adapter_app.STATEMENTS_PATH, content=CAMT054, headers=auth)
        assert r.json()["received"] == ["bank:N54-1"]
    assert [t.currency for t in spooled(spool)] == ["EUR", "USD"]


@pytest.fixture
async def hub(data_dir: Path) -> AsyncIterator[Any]:
    async with running_aggregator(hub_settings(data_dir)) as core:
        yield core


async def test_adapter_to_hub_to_ledger_exactly_once(hub: Any, tmp_path: Path) -> None:
    """A real Stripe adapter (uvicorn, its own spool) streams to a real hub: the webhook and
    two retries of it end as exactly one ledger row; a forged one leaves no row."""
    from sysmonstm.config import load_settings

    listen = f"127.0.0.1:{free_port()}"
    settings = load_settings({
        "data_dir": str(tmp_path / "adapter"),
        "payments": {"hub": [hub.settings.aggregator.listen], "card_key": "k" * 32,
                     "stripe": {"listen": listen, "webhook_secrets": [OLD, NEW]}},
    })  # fmt: skip
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_adapter("stripe", settings, stop, machine_id="m1", on_ready=lambda _: ready.set())
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        body = stripe_event("evt_e2e")
        async with httpx.AsyncClient(base_url=f"http://{listen}") as c:
            forged = await c.post(
                adapter_app.STRIPE_PATH,
                content=stripe_event("evt_forged"),
                headers=signed(body, NEW),
            )
            assert forged.status_code == 400
            for _ in range(3):  # Stripe retries until it sees a 2xx; here it sees three
                r = await c.post(adapter_app.STRIPE_PATH, content=body, headers=signed(body, NEW))
                assert r.status_code == 200
        book = await ledger(hub)

        async def recorded() -> bool:
            return await book.get("stripe:evt_e2e") is not None

        await eventually(recorded, what="the webhook's ledger row")
        rows = await book.transactions(0, 2**62)
        assert [(r.tx.event_id, r.tx.source, r.tx.amount_minor, r.tx.currency) for r in rows] == [
            ("stripe:evt_e2e", "stripe-m1", 2599, "EUR")]  # fmt: skip
        assert await book.get("stripe:evt_forged") is None
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
