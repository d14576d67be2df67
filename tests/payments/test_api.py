"""The payment API over a real ledger (SQLite and PostgreSQL): transactions with their
decisions in each role's view, the review queue and its answers, lists, the audit trail and
its own audited reads; exact answers, and 4xx JSON for what a role may not do."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from sysmonstm.domains.payments.model import Action
from sysmonstm.domains.payments.resources import ledger
from sysmonstm.runtime import Core
from tests.payments.api_fixtures import (
    FP_LARGE,
    FP_SMALL,
    LARGE,
    LARGER,
    SMALL,
    T0,
    USERS,
    YEN,
    call,
    client,
    core,
    ok,
    warm_url,
)

__all__ = ["client", "core", "warm_url"]  # fixtures
RANGE = {"from": str(T0 - 1), "to": str(T0 + 10_000)}


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["event_id"] for r in rows]


async def refused(
    client: httpx.AsyncClient, method: str, path: str, role: str | None, status: int, **kw: Any
) -> str:
    response = await call(client, method, path, role, **kw)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message"}
    message: str = error["message"]
    return message


async def test_viewer_sees_masked_transactions_with_their_decisions(
    client: httpx.AsyncClient,
) -> None:
    """No e-mail, name, IP or metadata for a viewer; the card as BIN, last 4 and a
    fingerprint prefix; every transaction in the range with its decision."""
    page = await ok(client, "GET", "/transactions", "viewer", params=RANGE)
    assert page["next"] is None
    assert ids(page["transactions"]) == [
        SMALL.event_id,
        YEN.event_id,
        LARGE.event_id,
        LARGER.event_id,
    ]
    small = page["transactions"][0]
    assert small == {
        "event_id": "stripe:evt_small",
        "processor": "stripe",
        "transaction_id": "pi_evt_small",
        "status": "captured",
        "amount_minor": 10_000,
        "currency": "USD",
        "exponent": 2,
        "amount_base_minor": 10_000,
        "base_currency": "USD",
        "time_ms": T0,
        "card": {"fingerprint": FP_SMALL[:12], "bin": "424242", "last4": "4242", "country": "US"},
        "country": "US",
        "ip_country": "US",
        "ip": "",
        "email": "",
        "customer_name": "",
        "description": "order 17",
        "metadata": {},
        "source": "stripe-1",
        "masked": True,
        "decision": {
            "action": "approve",
            "decided_ms": small["decision"]["decided_ms"],
            "ruleset": small["decision"]["ruleset"],
            "hits": [],
        },
    }
    assert page["transactions"][1]["exponent"] == 0  # JPY
    text = str(page)
    for secret in ("jane.doe@example.com", "Jane", "203.0.113.7", FP_SMALL, FP_LARGE):
        assert secret not in text


async def test_analyst_sees_what_a_review_needs_and_admins_everything(
    client: httpx.AsyncClient,
) -> None:
    """Analysts get e-mail, IP, full fingerprint and metadata, the name as initials;
    auditors and admins get the name too (decrypted from the ledger)."""
    analyst = await ok(client, "GET", f"/transactions/{SMALL.event_id}", "analyst")
    assert (analyst["email"], analyst["ip"], analyst["customer_name"]) == (
        "jane.doe@example.com",
        "203.0.113.7",
        "J. Q. D.",
    )
    assert analyst["card"]["fingerprint"] == FP_SMALL
    assert analyst["metadata"] == {"order": "17"}
    assert analyst["masked"] is True
    for role in ("auditor", "admin"):
        full = await ok(client, "GET", f"/transactions/{SMALL.event_id}", role)
        assert full["customer_name"] == "Jane Q Doe"
        assert full["email"] == "jane.doe@example.com"
        assert full["masked"] is False


async def test_one_transaction_carries_its_decision_explanation(
    client: httpx.AsyncClient,
) -> None:
    """A transaction over 10,000 USD: decided review by large_transaction, with the values
    the rule saw."""
    got = await ok(client, "GET", f"/transactions/{LARGE.event_id}", "viewer")
    decision = got["decision"]
    assert decision["action"] == "review"
    assert [h["rule"] for h in decision["hits"]] == ["large_transaction"]
    assert decision["hits"][0] == {
        "rule": "large_transaction",
        "action": "review",
        "reason": "amount_in_usd 12000 > 10000",
        "values": {"amount_in_usd": 12000.0, "threshold": 10000.0},
    }
    message = await refused(client, "GET", "/transactions/stripe:evt_nope", "viewer", 404)
    assert "stripe:evt_nope" in message


async def test_transactions_filter_by_action_and_card_and_page_with_after(
    client: httpx.AsyncClient,
) -> None:
    """``action`` and ``card`` narrow the list; ``limit`` with ``after`` pages through it."""
    reviews = await ok(
        client, "GET", "/transactions", "viewer", params={**RANGE, "action": "review"}
    )
    assert ids(reviews["transactions"]) == [LARGE.event_id, LARGER.event_id]
    card = await ok(client, "GET", "/transactions", "analyst", params={**RANGE, "card": FP_SMALL})
    assert ids(card["transactions"]) == [SMALL.event_id, YEN.event_id]
    seen, after = [], None
    while True:
        params = {**RANGE, "limit": "3"} | ({"after": after} if after else {})
        page = await ok(client, "GET", "/transactions", "viewer", params=params)
        seen += ids(page["transactions"])
        after = page["next"]
        if after is None:
            break
    assert seen == [SMALL.event_id, YEN.event_id, LARGE.event_id, LARGER.event_id]


async def test_bad_transaction_queries_get_a_clear_400(client: httpx.AsyncClient) -> None:
    """An unknown action, an unreadable time and an empty range are refused, naming why."""
    message = await refused(
        client, "GET", "/transactions", "viewer", 400, params={**RANGE, "action": "maybe"}
    )
    assert "approve, review, block" in message
    assert "from" in await refused(
        client, "GET", "/transactions", "viewer", 400, params={"from": "yesterday-ish"}
    )
    assert "before" in await refused(
        client, "GET", "/transactions", "viewer", 400, params={"from": str(T0), "to": str(T0)}
    )
    await refused(client, "GET", "/transactions", "viewer", 422, params={"limit": "0"})


async def test_analyst_answers_a_review_once_and_it_leaves_the_queue(
    client: httpx.AsyncClient, core: Core
) -> None:
    """The queue holds what was decided review; an answer is stored under the analyst's user,
    audited, put in the outbox, and a second answer is a 409."""
    queue = await ok(client, "GET", "/reviews", "analyst")
    assert ids(queue["reviews"]) == [LARGE.event_id, LARGER.event_id]
    assert queue["reviews"][0]["review"] is None
    answer = await ok(
        client,
        "POST",
        f"/reviews/{LARGE.event_id}",
        "analyst",
        json={"verdict": "approve", "note": "known customer"},
    )
    assert answer["event_id"] == LARGE.event_id
    assert answer["review"]["verdict"] == "approve"
    assert answer["review"]["analyst"] == USERS["analyst"]
    assert answer["review"]["note"] == "known customer"
    assert ids((await ok(client, "GET", "/reviews", "admin"))["reviews"]) == [LARGER.event_id]

    again = await refused(
        client, "POST", f"/reviews/{LARGE.event_id}", "admin", 409, json={"verdict": "decline"}
    )
    assert "already answered" in again
    assert "not sent for review" in await refused(
        client, "POST", f"/reviews/{SMALL.event_id}", "analyst", 409, json={"verdict": "approve"}
    )
    await refused(
        client, "POST", "/reviews/stripe:evt_nope", "analyst", 404, json={"verdict": "approve"}
    )
    await refused(
        client, "POST", f"/reviews/{LARGER.event_id}", "analyst", 422, json={"verdict": "maybe"}
    )

    stored = await ledger(core)
    reviews = [e for e in await stored.audit(1, 1000) if e.kind == "review"]
    assert [(e.actor, e.subject) for e in reviews] == [(USERS["analyst"], LARGE.event_id)]
    topics = [e.topic for e in await stored.outbox(1000)]
    assert topics.count("payments.review.approve") == 1
    larger = await stored.get(LARGER.event_id)
    assert larger is not None
    assert larger.decision.action is Action.REVIEW


async def test_roles_below_analyst_cannot_read_or_answer_reviews(
    client: httpx.AsyncClient, core: Core
) -> None:
    """A viewer gets 403 on the queue and on answering; an auditor reads the queue but does
    not answer; nothing is stored by a refused answer."""
    assert "viewer" in await refused(client, "GET", "/reviews", "viewer", 403)
    for role in ("viewer", "auditor"):
        message = await refused(
            client, "POST", f"/reviews/{LARGE.event_id}", role, 403, json={"verdict": "approve"}
        )
        assert "answer reviews" in message
    await ok(client, "GET", "/reviews", "auditor")
    queue = await (await ledger(core)).review_queue()
    assert [i.tx.event_id for i in queue] == [LARGE.event_id, LARGER.event_id]


async def test_lists_are_read_by_analysts_and_changed_by_admins(
    client: httpx.AsyncClient,
) -> None:
    """PUT stores the value normalised under the admin's user; DELETE removes it (404 the
    second time); analysts read, but neither they nor auditors change."""
    assert (await ok(client, "GET", "/lists", "analyst"))["entries"] == []
    entry = {
        "mode": "block",
        "kind": "email",
        "value": " Fraud@Example.COM ",
        "note": "chargebacks",
    }
    for role in ("analyst", "auditor"):
        await refused(client, "PUT", "/lists", role, 403, json=entry)
    await refused(client, "GET", "/lists", "viewer", 403)
    stored = await ok(client, "PUT", "/lists", "admin", json=entry)
    assert {k: stored[k] for k in ("mode", "kind", "value", "note", "added_by")} == {
        "mode": "block",
        "kind": "email",
        "value": "fraud@example.com",
        "note": "chargebacks",
        "added_by": USERS["admin"],
    }
    listed = (await ok(client, "GET", "/lists", "analyst"))["entries"]
    assert [(e["mode"], e["kind"], e["value"]) for e in listed] == [
        ("block", "email", "fraud@example.com")
    ]
    assert "e-mail" in await refused(
        client, "PUT", "/lists", "admin", 400, json={**entry, "value": "not-an-address"}
    )
    where = {"mode": "block", "kind": "email", "value": "FRAUD@example.com"}
    removed = await ok(client, "DELETE", "/lists", "admin", params=where)
    assert removed == {"removed": {"mode": "block", "kind": "email", "value": "fraud@example.com"}}
    await refused(client, "DELETE", "/lists", "admin", 404, params=where)
    assert (await ok(client, "GET", "/lists", "analyst"))["entries"] == []


async def test_audit_reads_are_audited_and_verify_reports_the_chain(
    client: httpx.AsyncClient,
) -> None:
    """Auditors and admins read the trail with its chain fields; each read is appended
    first under the reader's user; verify says the chain is intact; others get 403."""
    for role in ("viewer", "analyst"):
        await refused(client, "GET", "/audit", role, 403)
        await refused(client, "GET", "/audit/verify", role, 403)
    first = await ok(client, "GET", "/audit", "auditor", params={"limit": "1000"})
    entries = first["entries"]
    assert first["next_seq"] is None
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    for before, after in itertools.pairwise(entries):
        assert after["prev_hash"] == before["hash"]
    last = entries[-1]
    assert (last["kind"], last["actor"], last["body"]) == (
        "audit_read",
        USERS["auditor"],
        {"from_seq": 1, "limit": 1000},
    )
    second = await ok(client, "GET", "/audit", "admin", params={"from_seq": str(last["seq"])})
    assert [(e["kind"], e["actor"]) for e in second["entries"]] == [
        ("audit_read", USERS["auditor"]),
        ("audit_read", USERS["admin"]),
    ]
    assert await ok(client, "GET", "/audit/verify", "auditor") == {"intact": True}
    page = await ok(client, "GET", "/audit", "auditor", params={"limit": "2"})
    assert [e["seq"] for e in page["entries"]] == [1, 2]
    assert page["next_seq"] == 3


async def test_me_and_currencies_answer_any_role(client: httpx.AsyncClient) -> None:
    """``/me`` names the token's user and role; ``/currencies`` the exponents the page uses."""
    assert await ok(client, "GET", "/me", "auditor") == {
        "user": USERS["auditor"],
        "role": "auditor",
    }
    exponents = (await ok(client, "GET", "/currencies", "viewer"))["exponents"]
    assert (exponents["USD"], exponents["JPY"], exponents["KWD"]) == (2, 0, 3)
