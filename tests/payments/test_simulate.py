"""The payments simulator: realistic processor payloads with fraud patterns mixed in, signed as
each processor signs (Stripe's own package verifies the Stripe ones), paced, summarized.
The HTTP side runs against a real uvicorn server on a free port."""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import stripe
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sysmonstm.domains.payments import bank_adapter, paypal_adapter, stripe_adapter
from sysmonstm.domains.payments.card import luhn_ok
from sysmonstm.domains.payments.paypal_sig import PaypalSigner, message
from sysmonstm.domains.payments.simulate import SimOptions, Simulator, Target
from sysmonstm.domains.payments.simulate_events import EventPlan, Mix, Pattern, SimEvent
from tests.conftest import free_port

SECRET = "whsec_simulator_test"  # noqa: S105 - a test secret
WEBHOOK_ID = "WH-TEST-0001"
BANK_TOKEN = "bank-token-test"  # noqa: S105
CARD_KEY = b"card-key-for-tests-0123456789"


def events(seed: int, n: int, mix: Mix | None = None) -> list[SimEvent]:
    return list(itertools.islice(EventPlan(seed=seed, mix=mix or Mix()), n))


def test_plan_is_seeded_and_mixes_every_pattern() -> None:
    """The same seed gives the same deliveries; a few thousand hold every fraud pattern and
    all three processors."""
    first, again = events(7, 3000), events(7, 3000)
    assert [(e.key, e.pattern) for e in first] == [(e.key, e.pattern) for e in again]
    assert {e.pattern for e in first} == set(Pattern)
    assert {e.processor for e in first} == {"stripe", "paypal", "bank"}
    assert events(8, 50) != first[:50]


def test_every_payload_normalizes_through_the_adapters_and_no_pan_survives() -> None:
    """Each body is a payload the adapters accept; those carrying a full card number (a sloppy
    integration) yield a fingerprint, BIN and last four, and the number is nowhere in the
    transaction."""
    leaked = 0
    for e in events(3, 3000):
        body = json.loads(e.body)
        if e.processor == "stripe":
            txs = [stripe_adapter.normalize(body, CARD_KEY)]
        elif e.processor == "paypal":
            txs = [paypal_adapter.normalize(body, CARD_KEY)]
        else:
            txs = list(bank_adapter.from_feed(body, CARD_KEY))
        assert len(txs) == 1
        tx = txs[0]
        assert tx is not None
        assert tx.event_id == e.key
        if e.pan:
            leaked += 1
            assert luhn_ok(e.pan)
            assert e.pan.encode() in e.body
            assert e.pan not in repr(tx)
            assert tx.card_last4 == e.pan[-4:]
            assert len(tx.card_fingerprint) == 64
    assert leaked >= 20


def test_card_testing_bursts_put_many_small_charges_on_one_card() -> None:
    """A card-testing burst is more than five small charges on one card, back to back."""
    plan = events(11, 4000, Mix(card_testing=0.02, burst=8))
    groups = [(k, list(g)) for k, g in itertools.groupby(plan, key=lambda e: e.pattern)]
    runs = [g for k, g in groups[:-1] if k is Pattern.CARD_TESTING]  # the last may be cut
    assert len(runs) > 10
    for burst in runs:
        assert len(burst) % 8 == 0
        for chunk in (burst[i : i + 8] for i in range(0, len(burst), 8)):
            assert {e.processor for e in chunk} == {"stripe"}
            bodies = [json.loads(e.body)["data"]["object"] for e in chunk]
            cards = {b["payment_method_details"]["card"]["fingerprint"] for b in bodies}
            assert len(cards) == 1
            assert all(b["amount"] <= 200 for b in bodies)
            assert len({e.event_id for e in chunk}) == 8


def test_retries_repeat_an_earlier_event_byte_for_byte_and_large_ones_are_large() -> None:
    """A retry is an event already sent, same id and body; a large one is above USD 10,000;
    a country mismatch bills outside the card's country; bank entries use numeric codes."""
    plan = events(5, 3000)
    first_seen: dict[str, bytes] = {}
    retries = 0
    for e in plan:
        if e.repeat:
            retries += 1
            assert first_seen[e.key] == e.body
        else:
            assert e.key not in first_seen
            first_seen[e.key] = e.body
        body = json.loads(e.body)
        if e.pattern is Pattern.LARGE and e.processor == "stripe":
            assert body["data"]["object"]["amount"] > 1_000_000
            assert body["data"]["object"]["currency"] == "usd"
        if e.pattern is Pattern.COUNTRY_MISMATCH and e.processor == "stripe":
            obj = body["data"]["object"]
            card_country = obj["payment_method_details"]["card"]["country"]
            assert obj["billing_details"]["address"]["country"] != card_country
        if e.processor == "bank":
            assert body["entries"][0]["currency"] in {"840", "978", "826", "392"}
    assert retries > 50


@dataclass
class Received:
    at: list[float] = field(default_factory=list)
    verified: collections.Counter[str] = field(default_factory=collections.Counter)
    refused: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def sink_app(received: Received, paypal_key: rsa.RSAPublicKey) -> Starlette:
    """Receives the three processors' webhooks and checks each signature as the processor's
    own tooling would (Stripe: the stripe package)."""

    async def stripe_hook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            event = stripe.Webhook.construct_event(
                body.decode(), request.headers["Stripe-Signature"], SECRET
            )
        except (stripe.SignatureVerificationError, KeyError, ValueError) as exc:
            received.refused.append(f"stripe: {exc}")
            return JSONResponse({"error": "bad signature"}, status_code=400)
        return ok("stripe", event["id"])

    async def paypal_hook(request: Request) -> JSONResponse:
        body = await request.body()
        h = request.headers
        signed = message(
            h["PAYPAL-TRANSMISSION-ID"], h["PAYPAL-TRANSMISSION-TIME"], WEBHOOK_ID, body
        )
        try:
            paypal_key.verify(
                base64.b64decode(h["PAYPAL-TRANSMISSION-SIG"]),
                signed,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception as exc:
            received.refused.append(f"paypal: {exc!r}")
            return JSONResponse({"error": "bad signature"}, status_code=400)
        assert h["PAYPAL-AUTH-ALGO"] == "SHA256withRSA"
        return ok("paypal", json.loads(body)["id"])

    async def bank_feed(request: Request) -> JSONResponse:
        if request.headers.get("Authorization") != f"Bearer {BANK_TOKEN}":
            received.refused.append("bank: token")
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return ok("bank", json.loads(await request.body())["entries"][0]["entry_ref"])

    def ok(processor: str, event_id: str) -> JSONResponse:
        received.at.append(time.monotonic())
        received.verified[processor] += 1
        received.ids.append(f"{processor}:{event_id}")
        return JSONResponse({"received": True})

    return Starlette(
        routes=[
            Route("/stripe", stripe_hook, methods=["POST"]),
            Route("/paypal", paypal_hook, methods=["POST"]),
            Route("/bank", bank_feed, methods=["POST"]),
        ]
    )


@pytest.fixture
def paypal_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def sink(paypal_key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[str, Received]]:
    """A real uvicorn server on a free port running ``sink_app``."""
    received = Received()
    port = free_port()
    config = uvicorn.Config(
        sink_app(received, paypal_key.public_key()),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", received
    server.should_exit = True
    await task


async def test_simulator_signs_paces_and_summarizes_over_http(
    sink: tuple[str, Received], paypal_key: rsa.RSAPrivateKey
) -> None:
    """300 deliveries at 150/s: every signature verifies (Stripe's with Stripe's own package),
    nothing is sent faster than the pace, and the summary counts exactly what arrived."""
    base, received = sink
    targets = {
        "stripe": Target(f"{base}/stripe", stripe_secret=SECRET),
        "paypal": Target(
            f"{base}/paypal",
            paypal=PaypalSigner(paypal_key, "https://127.0.0.1/cert.pem"),
            paypal_webhook_id=WEBHOOK_ID,
        ),
        "bank": Target(f"{base}/bank", bank_token=BANK_TOKEN),
    }
    seen: list[tuple[str, int, int]] = []
    sim = Simulator(
        SimOptions(rate=150, count=300, seed=2),
        targets,
        on_sent=lambda e, sent, _answered, status: seen.append((e.key, sent, status)),
    )
    summary = await sim.run()

    assert received.refused == []
    assert summary.total == 300
    assert sum(received.verified.values()) == 300
    assert dict(summary.sent) == dict(received.verified)
    assert dict(summary.statuses) == {200: 300}
    assert summary.keys == set(received.ids) == summary.accepted
    assert len(seen) == 300
    assert sum(summary.patterns.values()) == 300
    assert summary.patterns[Pattern.RETRY.value] == 300 - len(summary.keys)
    # paced: the 300th delivery is not due before 299/150 s after the first
    sent = sorted(t for _, t, _ in seen)
    assert (sent[-1] - sent[0]) / 1e9 >= 299 / 150 - 0.05
    assert summary.seconds >= 299 / 150
    text = "\n".join(summary.lines())
    assert "sent 300 webhooks" in text
    assert not any(pan in text for pan in summary.pans)


async def test_simulator_stops_when_told_and_reports_refusals(sink: tuple[str, Received]) -> None:
    """A wrong secret is refused by the receiver and counted as such; setting ``stop`` ends
    an open-ended run with the answers in flight collected."""
    base, received = sink
    stop = asyncio.Event()
    sim = Simulator(
        SimOptions(rate=50, seed=4, mix=Mix(processors=(1.0, 0.0, 0.0))),
        {"stripe": Target(f"{base}/stripe", stripe_secret="whsec_wrong")},  # noqa: S106
    )
    run = asyncio.create_task(sim.run(stop))
    while sim.summary.total < 10:  # noqa: ASYNC110 - the summary is plain counters
        await asyncio.sleep(0.01)
    stop.set()
    summary = await run
    assert summary.total == sum(summary.statuses.values())
    assert set(summary.statuses) == {400}
    assert summary.accepted == set()
    assert len(received.refused) == summary.total
    assert summary.errors["stripe: HTTP 400"] == summary.total


async def test_simulate_command_sends_signs_with_settings_and_prints_a_summary(
    sink: tuple[str, Received], tmp_path: Path
) -> None:
    """``sysmonstm payments simulate`` signs with the secrets from settings (env), sends what
    it was asked to the URLs given, prints the summary and never a secret."""
    from tests.e2e.processes import SYSMONSTM, base_env

    base, received = sink
    env = base_env(
        tmp_path,
        PAYMENTS__STRIPE__WEBHOOK_SECRETS=json.dumps([SECRET]),
        PAYMENTS__BANK__API_TOKEN=BANK_TOKEN,
    )
    proc = await asyncio.create_subprocess_exec(
        *[SYSMONSTM, "payments", "simulate", "--rate", "100", "--count", "40"],
        *["--stripe", f"{base}/stripe", "--bank", f"{base}/bank", "--seed", "9"],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "sent 40 webhooks" in text
    assert "answers: 200: 40" in text
    assert received.refused == []
    assert set(received.verified) <= {"stripe", "bank"}
    assert sum(received.verified.values()) == 40
    assert SECRET not in text + err.decode()
    assert BANK_TOKEN not in text + err.decode()


async def test_simulate_command_refuses_paypal_without_a_signing_key(tmp_path: Path) -> None:
    """Asked for PayPal webhooks without a key to sign them, the command says so and exits 2
    before sending anything."""
    from tests.e2e.processes import SYSMONSTM, base_env

    proc = await asyncio.create_subprocess_exec(
        *[SYSMONSTM, "payments", "simulate", "--paypal", "http://127.0.0.1:9/webhooks/paypal"],
        env=base_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "--paypal-key and --paypal-cert-url" in err.decode()
