"""The payment review page in headless Chromium against a real ``sysmonstm up`` (issue 5,
Done-when 6).

Adapters are played by the test: TransactionBatches over gRPC to the aggregator, exactly
what ``sysmonstm payments adapter …`` sends. The hub decides them with the default rules
(over 10,000 USD → review); the analyst signs in on /payments with a token, sees them in the
queue, approves one with a note; it leaves the queue without a reload, and the audit trail
(read by an auditor over the API) holds the review under the analyst's user. A viewer's
token sees masked data and cannot review; no token is a 401.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from playwright.async_api import Browser, Page, expect

from sysmonstm.domains.payments.cli_tokens import append_token
from sysmonstm.domains.payments.tokens import Role
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.payments_pb2 import Transaction, TransactionBatch
from sysmonstm.v1.payments_pb2_grpc import PaymentsIngestStub
from tests.conftest import free_port
from tests.e2e.processes import SYSMONSTM, Proc, base_env, spawn, stop

pytestmark = pytest.mark.e2e

TOKENS = {"ana": ("analyst", "tok-e2e-analyst"), "vic": ("viewer", "tok-e2e-viewer")}
TOKENS["aud"] = ("auditor", "tok-e2e-auditor")
WAIT_MS = 15_000
LIVE_MS = 1_000  # a decision shows on the open page within 1 s of being published


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def payment(n: int, amount_minor: int, currency: str = "USD", **fields: Any) -> Transaction:
    """Stripe event ``evt_e2e_<n>`` of a payment by one card, in the US."""
    values: dict[str, Any] = {
        "event_id": f"stripe:evt_e2e_{n}",
        "processor": "stripe",
        "transaction_id": f"pi_e2e_{n}",
        "status": "captured",
        "amount_minor": amount_minor,
        "currency": currency,
        "time_unix_ms": now_ms(),
        "card_fingerprint": f"{n:02d}" * 32,
        "card_bin": "424242",
        "card_last4": f"{4240 + n}",
        "card_country": "US",
        "country": "US",
        "ip_country": "US",
        "ip": "198.51.100.23",
        "email": f"payer{n}@example.com",
        "customer_name": f"Payer Number{n}",
        "description": "e2e order",
    }
    values.update(fields)
    return Transaction(**values)


@dataclass
class Adapter:
    """One scripted adapter: batches over gRPC with growing sequences."""

    grpc: str
    seq: int = 0

    async def send(self, *txs: Transaction) -> None:
        """Stream one batch and wait until the hub acknowledges it stored."""
        self.seq += 1
        batch = TransactionBatch(
            source=SourceIdentity(machine_id="stripe-e2e", hostname="e2e"),
            sequence=self.seq,
            transactions=list(txs),
        )
        async with grpc.aio.insecure_channel(self.grpc) as channel:
            call = PaymentsIngestStub(channel).Stream(iter([batch]))
            async for ack in call:
                if ack.stored_through >= self.seq:
                    call.cancel()
                    return
        raise AssertionError(f"the hub never acknowledged batch {self.seq}")


@dataclass
class Hub:
    proc: Proc
    base: str
    adapter: Adapter

    def api(self, method: str, path: str, who: str | None, body: Any = None) -> tuple[int, Any]:
        """``(status, JSON body)`` of a payment API call as ``who`` (``None``: no token)."""
        request = urllib.request.Request(  # noqa: S310 - a test URL
            f"{self.base}/api/v1/payments{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        if who is not None:
            request.add_header("Authorization", f"Bearer {TOKENS[who][1]}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("payreview")
    tokens = data / "tokens.toml"
    for user, (role, token) in TOKENS.items():
        append_token(tokens, user, Role(role), token)
    http, grpc_listen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = base_env(
        data,
        payments__tokens_file=str(tokens),
        payments__pii_key=base64.b64encode(bytes(range(32))).decode(),
        payments__rates=json.dumps({"USD": 1.0, "JPY": 0.0067}),
    )
    proc = spawn(
        [SYSMONSTM, "up", "--no-collect", "--http", http, "--grpc", grpc_listen],
        env,
        data / "up.log",
    )
    try:
        proc.wait_log("sysmonstm is up")
        yield Hub(proc, f"http://{http}", Adapter(grpc_listen))
    finally:
        stop(proc)
    assert "aggregator stopped" in proc.text(), "SIGTERM must end in a clean flush"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    await context.close()
    assert errors == [], errors


async def sign_in(page: Page, hub: Hub, who: str) -> None:
    await page.goto(f"{hub.base}/payments")
    await page.fill("#pay-token", TOKENS[who][1])
    await page.click(".pay-token button[type=submit]")
    await expect(page.locator("#pay-who")).to_have_text(f"{who} · {TOKENS[who][0]}")


def queue_item(page: Page, event_id: str) -> Any:
    return page.locator(f'#pay-queue .pay-item[data-event-id="{event_id}"]')


async def test_an_analyst_approves_a_review_in_the_page_and_the_audit_trail_shows_it(
    hub: Hub, page: Page
) -> None:
    """Over 10,000 USD goes to the queue; approved in the page, it leaves the queue without a
    reload; the audit trail holds the review under the analyst's user."""
    t = now_ms()
    big = payment(1, 1_200_000, time_unix_ms=t - 4000)
    small = payment(3, 4_999, time_unix_ms=t - 3000)
    yen = payment(4, 500_000, "JPY", time_unix_ms=t - 2000)
    bigger = payment(2, 2_500_050, time_unix_ms=t - 1000)
    await hub.adapter.send(big, small, yen, bigger)

    await sign_in(page, hub, "ana")
    await page.evaluate("window.__stillHere = true")  # gone if the page reloads
    await expect(queue_item(page, big.event_id)).to_be_visible(timeout=WAIT_MS)
    await expect(queue_item(page, bigger.event_id)).to_be_visible()
    await expect(page.locator("#pay-queue .pay-item")).to_have_count(2)
    item = queue_item(page, big.event_id)
    await expect(item.locator(".pay-amount")).to_have_text("12,000.00 USD")
    await expect(item.locator('.pay-hits li[data-rule="large_transaction"]')).to_contain_text(
        "amount_in_usd 12000 > 10000"
    )
    await expect(item).to_contain_text("payer1@example.com")  # an analyst sees the e-mail

    feed = page.locator("#pay-feed tbody tr")
    await expect(feed).to_have_count(4)
    await expect(feed.first).to_have_attribute("data-event-id", bigger.event_id)  # newest first
    yen_row = page.locator(f'#pay-feed tr[data-event-id="{yen.event_id}"]')
    await expect(yen_row).to_contain_text("500,000 JPY")
    await expect(yen_row.locator(".pay-badge")).to_have_text("approve")
    big_row = page.locator(f'#pay-feed tr[data-event-id="{big.event_id}"]')
    await expect(big_row.locator(".pay-badge")).to_have_text("review")

    await big_row.click()
    await expect(page.locator("#pay-detail .pay-hits")).to_contain_text("large_transaction")

    await item.locator(".pay-note").fill("called the customer")
    await item.locator("button.pay-approve-btn").click()
    await expect(item).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator("#pay-queue .pay-item")).to_have_count(1)
    await expect(big_row).to_have_attribute("data-verdict", "approve", timeout=WAIT_MS)
    assert await page.evaluate("window.__stillHere") is True

    status, queue = hub.api("GET", "/reviews", "ana")
    assert status == 200
    assert [r["event_id"] for r in queue["reviews"]] == [bigger.event_id]
    status, trail = hub.api("GET", "/audit?limit=1000", "aud")
    assert status == 200
    reviews = [e for e in trail["entries"] if e["kind"] == "review"]
    assert [
        (e["actor"], e["subject"], e["body"]["verdict"], e["body"]["note"]) for e in reviews
    ] == [("ana", big.event_id, "approve", "called the customer")]
    assert trail["entries"][-1]["kind"] == "audit_read"
    assert trail["entries"][-1]["actor"] == "aud"
    assert hub.api("GET", "/audit/verify", "aud") == (200, {"intact": True})


async def test_a_new_review_reaches_the_open_queue_live(hub: Hub, page: Page) -> None:
    """A transaction decided review while the page is open joins the queue without a reload."""
    await sign_in(page, hub, "ana")
    await expect(page.locator("#pay-feed tbody tr").first).to_be_visible(timeout=WAIT_MS)
    await page.evaluate("window.__stillHere = true")
    late = payment(5, 1_000_001)
    await hub.adapter.send(late)
    await expect(queue_item(page, late.event_id)).to_be_visible(timeout=WAIT_MS)
    row = page.locator(f'#pay-feed tr[data-event-id="{late.event_id}"]')
    await expect(row.locator(".pay-badge")).to_have_text("review", timeout=LIVE_MS)
    assert await page.evaluate("window.__stillHere") is True


async def test_a_viewer_sees_masked_data_and_cannot_review(hub: Hub, page: Page) -> None:
    """Viewer: masked transactions, no queue in the page, 403 on the queue and on answering;
    no token: 401."""
    probe = payment(6, 1_100_000)
    await hub.adapter.send(probe)
    status, got = hub.api("GET", f"/transactions/{probe.event_id}", "vic")
    assert status == 200
    assert (got["email"], got["customer_name"], got["ip"]) == ("", "", "")
    assert got["card"]["fingerprint"] == probe.card_fingerprint[:12]
    assert got["decision"]["action"] == "review"
    status, refused = hub.api("POST", f"/reviews/{probe.event_id}", "vic", {"verdict": "approve"})
    assert status == 403
    assert refused["error"]["code"] == "forbidden"
    assert hub.api("GET", "/reviews", "vic")[0] == 403
    assert hub.api("GET", "/transactions", None)[0] == 401
    assert hub.api("GET", "/reviews", "ana")[1]["reviews"][-1]["review"] is None

    await sign_in(page, hub, "vic")
    row = page.locator(f'#pay-feed tr[data-event-id="{probe.event_id}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".pay-queue-panel")).to_be_hidden()
    await row.click()
    await expect(page.locator("#pay-detail")).to_contain_text("large_transaction")
    await expect(page.locator("#pay-detail")).not_to_contain_text("payer6@example.com")
    text = await page.locator("main").inner_text()
    assert "payer6@example.com" not in text
    assert "198.51.100.23" not in text


async def test_a_bad_token_in_the_page_asks_again(hub: Hub, page: Page) -> None:
    """An unknown token is refused in the page, forgotten, and the token form shown again."""
    await page.goto(f"{hub.base}/payments")
    await page.fill("#pay-token", "tok-not-a-real-one")
    await page.click(".pay-token button[type=submit]")
    await expect(page.locator(".pay-status")).to_contain_text("unknown or revoked token")
    await expect(page.locator("#pay-token")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
