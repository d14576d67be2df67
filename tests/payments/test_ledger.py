"""Ledger conformance: every backend (SQLite, PostgreSQL) stores each event once with one
decision, audit entries and outbox events, seals personal fields, and keeps a verifiable
chain."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.domains.payments.audit import GENESIS
from sysmonstm.domains.payments.backtest import HistoryView
from sysmonstm.domains.payments.ledger import Broken, RiskView
from sysmonstm.domains.payments.ledger_schema import SQLITE_TABLES
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.model import (
    Action,
    Decision,
    ListEntry,
    ListKind,
    ListMode,
    Transaction,
    Verdict,
)
from sysmonstm.errors import InvalidInputError
from tests.payments.ledger_support import (
    T0,
    Counting,
    approve_all,
    ledger_url,
    opened_ledger,
    tx,
)
from tests.payments.rawsql import ph, raw

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else None
    return ledger_url(request.param, tmp_path, dsn)


@pytest.fixture
async def ledger(url: str) -> AsyncIterator[SqlLedger]:
    async with opened_ledger(url) as opened:
        yield opened


async def count(url: str, table: str) -> int:
    return int((await raw(url, f"SELECT count(*) FROM {table}"))[0][0])


async def test_record_stores_each_event_once_with_one_decision(ledger: SqlLedger, url: str) -> None:
    """A replayed event (alone, or twice in one batch) is left out: nothing is decided,
    audited or queued for it again."""
    decide = Counting()
    first = await ledger.record([tx(1), tx(2), tx(1)], decide, "stripe-1")
    assert [r.tx.event_id for r in first] == ["stripe:evt_1", "stripe:evt_2"]
    again = await ledger.record([tx(2), tx(1)], decide, "stripe-2")
    assert again == []
    assert decide.calls == 2
    assert await count(url, "pay_transactions") == 2
    assert await count(url, "pay_decisions") == 2
    assert await count(url, "pay_audit") == 4  # transaction + decision per event
    assert await count(url, "pay_outbox") == 4  # processed + risk.decision per event
    assert await ledger.seen(["stripe:evt_1", "stripe:evt_3", "stripe:evt_2"]) == {
        "stripe:evt_1",
        "stripe:evt_2",
    }


async def test_get_returns_the_event_as_recorded_with_personal_fields_opened(
    ledger: SqlLedger,
) -> None:
    await ledger.record([tx(7, metadata={"order": "A-1"})], approve_all, "stripe-1")
    got = await ledger.get("stripe:evt_7")
    assert got is not None
    assert got.tx == tx(7, metadata={"order": "A-1"})
    assert got.decision.action is Action.APPROVE
    assert got.decision.ruleset == "test-approve-all"
    assert await ledger.get("stripe:evt_404") is None


async def test_personal_fields_are_sealed_at_rest(ledger: SqlLedger, url: str) -> None:
    """E-mail and name never reach a row in clear; the hot path's payloads omit them."""
    await ledger.record([tx(1)], approve_all, "stripe-1")
    [(email, name)] = await raw(url, "SELECT email, customer_name FROM pay_transactions")
    assert email.startswith("v1:")
    assert "payer1" not in email
    assert name.startswith("v1:")
    assert "Payer" not in name
    for table, column in (("pay_audit", "body"), ("pay_outbox", "payload")):
        texts = [r[0] for r in await raw(url, f"SELECT {column} FROM {table}")]
        assert texts
        assert not any("payer1" in t or "Payer 1" in t for t in texts)


async def test_a_ledger_without_a_pii_key_keeps_no_personal_fields(url: str) -> None:
    from sysmonstm.domains.payments.ledgers import open_ledger

    bare = open_ledger(url)
    await bare.open()
    try:
        await bare.record([tx(1)], approve_all, "stripe-1")
        got = await bare.get("stripe:evt_1")
    finally:
        await bare.close()
    assert got is not None
    assert (got.tx.email, got.tx.customer_name) == ("", "")
    assert await raw(url, "SELECT email, customer_name FROM pay_transactions") == [("", "")]


async def test_card_count_sees_earlier_events_of_the_same_record_and_counts_payments(
    ledger: SqlLedger,
) -> None:
    """Distinct payments first seen in (since, until], the decided one included: a second
    event of a payment does not count again, another card does not count at all."""
    decide = Counting()
    batch = [
        tx(1),
        tx(2),
        tx(3, transaction_id="pi_1"),  # the capture of payment pi_1
        tx(4, card_fingerprint="cd" * 32),
        tx(70),  # 69 s after the first: pi_1 and pi_2 are out of its 60 s window
    ]
    await ledger.record(batch, decide, "stripe-1")
    assert decide.counts == [1, 2, 2, 1, 1]


async def test_outbox_holds_both_events_in_order_until_done(ledger: SqlLedger) -> None:
    await ledger.record([tx(1), tx(2, amount_base_minor=20_000)], Counting(), "stripe-1")
    pending = await ledger.outbox()
    assert [(e.topic, e.message_id) for e in pending] == [
        ("transactions.processed", "stripe:evt_1/processed"),
        ("risk.decision.approve", "stripe:evt_1/decision"),
        ("transactions.processed", "stripe:evt_2/processed"),
        ("risk.decision.review", "stripe:evt_2/decision"),
    ]
    payload = pending[3].payload
    assert payload["decision"] == {
        "action": "review",
        "decided_ms": T0,
        "hits": [
            {"rule": "large", "action": "review", "reason": "over 100",
             "values": {"amount": 20_000}}
        ],
        "ruleset": "test-counting",
    }  # fmt: skip
    assert payload["card"] == {
        "bin": "42424242", "last4": "4242", "fingerprint": "ab" * 6, "country": "US"
    }  # fmt: skip
    await ledger.outbox_done([e.id for e in pending[:3]])
    assert [e.message_id for e in await ledger.outbox()] == ["stripe:evt_2/decision"]
    await ledger.outbox_done([pending[3].id, pending[3].id])
    assert await ledger.outbox() == []


async def test_a_review_is_answered_once_audited_and_published(ledger: SqlLedger, url: str) -> None:
    await ledger.record(
        [tx(1, amount_base_minor=50_000), tx(2), tx(3, amount_base_minor=60_000)],
        Counting(),
        "stripe-1",
    )
    queue = await ledger.review_queue()
    assert [i.tx.event_id for i in queue] == ["stripe:evt_1", "stripe:evt_3"]
    assert queue[0].verdict is None
    assert queue[0].decision.hits[0].rule == "large"
    done = await ledger.resolve_review("stripe:evt_1", Verdict.DECLINE, "ana", "stolen", T0 + 5)
    assert (done.verdict, done.analyst, done.note, done.reviewed_ms) == (
        Verdict.DECLINE, "ana", "stolen", T0 + 5
    )  # fmt: skip
    assert [i.tx.event_id for i in await ledger.review_queue()] == ["stripe:evt_3"]
    with pytest.raises(InvalidInputError, match="already answered decline by ana") as again:
        await ledger.resolve_review("stripe:evt_1", Verdict.APPROVE, "bob", "", T0 + 6)
    assert again.value.code == "FAILED_PRECONDITION"
    with pytest.raises(InvalidInputError) as approved:
        await ledger.resolve_review("stripe:evt_2", Verdict.APPROVE, "bob", "", T0 + 6)
    assert approved.value.code == "FAILED_PRECONDITION"
    with pytest.raises(InvalidInputError) as unknown:
        await ledger.resolve_review("stripe:evt_9", Verdict.APPROVE, "bob", "", T0 + 6)
    assert unknown.value.code == "NOT_FOUND"
    last = (await ledger.audit(1, 100))[-1]
    assert (last.kind, last.actor, last.subject) == ("review", "ana", "stripe:evt_1")
    assert last.body == {"verdict": "decline", "note": "stolen", "was": "review"}
    review_events = [e for e in await ledger.outbox() if e.topic.startswith("payments.")]
    assert [(e.topic, e.message_id) for e in review_events] == [
        ("payments.review.decline", "stripe:evt_1/review")
    ]
    assert await count(url, "pay_reviews") == 1
    assert await ledger.verify_audit() is None


async def test_lists_are_one_per_value_seen_by_decisions_and_audited(ledger: SqlLedger) -> None:
    seen: list[ListMode | None] = []

    async def decide(t, view):  # type: ignore[no-untyped-def]
        seen.append(await view.listed(ListKind.COUNTRY, t.country))
        return await approve_all(t, view)

    await ledger.set_list_entry(ListEntry(ListMode.BLOCK, ListKind.COUNTRY, "KP"), "admin")
    await ledger.set_list_entry(ListEntry(ListMode.ALLOW, ListKind.EMAIL, "a@x.io", "vip"), "ana")
    await ledger.set_list_entry(ListEntry(ListMode.ALLOW, ListKind.COUNTRY, "KP"), "admin")
    entries = await ledger.list_entries()
    assert [(e.mode, e.kind, e.value, e.added_by) for e in entries] == [
        (ListMode.ALLOW, ListKind.COUNTRY, "KP", "admin"),
        (ListMode.ALLOW, ListKind.EMAIL, "a@x.io", "ana"),
    ]
    await ledger.record([tx(1, country="KP"), tx(2)], decide, "stripe-1")
    assert seen == [ListMode.ALLOW, None]
    assert not await ledger.remove_list_entry(ListMode.BLOCK, ListKind.COUNTRY, "KP", "admin")
    assert await ledger.remove_list_entry(ListMode.ALLOW, ListKind.COUNTRY, "KP", "admin")
    assert [e.value for e in await ledger.list_entries()] == ["a@x.io"]
    kinds = [(e.kind, e.subject) for e in await ledger.audit()]
    assert kinds[:3] == [("list", "KP"), ("list", "a@x.io"), ("list", "KP")]
    assert kinds[-1] == ("list", "KP")
    assert await ledger.verify_audit() is None


async def test_transactions_filter_and_page_in_time_order(ledger: SqlLedger) -> None:
    await ledger.record(
        [tx(3), tx(1), tx(2, amount_base_minor=90_000, card_fingerprint="ef" * 32), tx(5)],
        Counting(),
        "stripe-1",
    )
    ids = [r.tx.event_id for r in await ledger.transactions(T0, T0 + 4000)]
    assert ids == ["stripe:evt_1", "stripe:evt_2", "stripe:evt_3"]
    page = await ledger.transactions(T0, T0 + 10_000, limit=2, after_event="stripe:evt_1")
    assert [r.tx.event_id for r in page] == ["stripe:evt_2", "stripe:evt_3"]
    review = await ledger.transactions(0, 2**62, action=Action.REVIEW)
    assert [r.tx.event_id for r in review] == ["stripe:evt_2"]
    card = await ledger.transactions(0, 2**62, card="ab" * 32)
    assert [r.tx.event_id for r in card] == ["stripe:evt_1", "stripe:evt_3", "stripe:evt_5"]
    with pytest.raises(InvalidInputError):
        await ledger.transactions(0, 2**62, after_event="stripe:nope")


async def test_source_marks_only_grow(ledger: SqlLedger) -> None:
    assert await ledger.stored_through("payments:stripe-1") == 0
    await ledger.record([tx(1)], approve_all, "stripe-1", marks={"payments:stripe-1": 7})
    await ledger.record([], approve_all, "stripe-1", marks={"payments:stripe-1": 5})
    assert await ledger.stored_through("payments:stripe-1") == 7


async def test_the_chain_links_every_entry_and_names_the_first_altered(
    ledger: SqlLedger, url: str
) -> None:
    await ledger.record([tx(1), tx(2), tx(3)], approve_all, "stripe-1")
    await ledger.append_audit("audit_read", "carol", "export", {"rows": 6}, T0)
    entries = await ledger.audit()
    assert [e.seq for e in entries] == list(range(1, 8))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert await ledger.verify_audit_count() == (None, 7)
    body = '{"amount_minor":1}'
    await raw(url, f"UPDATE pay_audit SET body = {ph(url, 1)} WHERE seq = 4", body)
    assert await ledger.verify_audit() == Broken(
        4, "hash does not match the entry's content (altered)"
    )
    await raw(url, "DELETE FROM pay_audit WHERE seq = 2")
    broken = await ledger.verify_audit()
    assert broken is not None
    assert (broken.seq, "missing" in broken.reason) == (2, True)


async def test_concurrent_records_of_the_same_events_store_each_once(url: str) -> None:
    """Two ledgers on one database (two hubs) recording overlapping batches at once."""
    async with opened_ledger(url) as a, opened_ledger(url) as b:
        batches = [[tx(n) for n in range(i, i + 20)] for i in range(0, 60, 10)]
        results = await asyncio.gather(
            *(
                (a if i % 2 else b).record(batch, approve_all, f"src-{i}")
                for i, batch in enumerate(batches * 2)
            )
        )
        recorded = [r.tx.event_id for result in results for r in result]
        assert sorted(recorded) == sorted({f"stripe:evt_{n}" for n in range(70)})
        assert await count(url, "pay_transactions") == 70
        assert await count(url, "pay_audit") == 140
        assert await a.verify_audit_count() == (None, 140)


async def test_sqlite_and_postgresql_hold_the_same_columns(pg_dsn: str, tmp_path: Path) -> None:
    """The SQLite DDL (``ledger_schema``) and PostgreSQL's migration 3 name the same columns."""
    sqlite_url = f"sqlite:///{tmp_path / 'warm.db'}"
    async with opened_ledger(sqlite_url), opened_ledger(pg_dsn):
        pass
    tables = sorted(s.split()[5] for s in SQLITE_TABLES if s.startswith("CREATE TABLE"))
    for table in tables:
        lite = [r[1] for r in await raw(sqlite_url, f"PRAGMA table_info({table})")]
        pg = [
            r[0]
            for r in await raw(
                pg_dsn,
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
                " ORDER BY ordinal_position",
                table,
            )
        ]
        assert lite == pg, table


class WindowCounts:
    """Decides approve, noting the card counts its view gives over several windows, beside
    what ``backtest.HistoryView`` (in memory, the reference) gives for the same events."""

    WINDOWS_MS = (1_000, 5_000, 30_000, 60_000, 120_000)

    def __init__(self) -> None:
        self.got: list[list[int]] = []
        self.want: list[list[int]] = []
        self.reference = HistoryView()

    async def __call__(self, t: Transaction, view: RiskView) -> Decision:
        self.reference.add(t)
        card, end = t.card_fingerprint, t.time_ms
        for source, out in ((view, self.got), (self.reference, self.want)):
            out.append([await source.card_count(card, end - w, end) for w in self.WINDOWS_MS])
        return Decision(t.event_id, t.transaction_id, Action.APPROVE, (), T0, "test-windows")


async def test_card_count_matches_the_in_memory_reference_on_shuffled_events(
    ledger: SqlLedger,
) -> None:
    """Payments with several events, on two cards, arriving out of time order, on whole
    seconds so that windows start and end on events: a payment counts in a window when its
    first event on the card falls in it, as the backtests' in-memory view counts it."""
    rng = random.Random(6)
    cards = ["ab" * 32, "cd" * 32]
    events = [
        tx(
            n,
            transaction_id=f"pi_{rng.randrange(40)}",
            card_fingerprint=rng.choice(cards),
            time_ms=T0 + rng.randrange(200) * 1000,  # on whole seconds: windows meet events
        )
        for n in range(1, 301)
    ]
    decide = WindowCounts()
    for start in range(0, len(events), 50):
        await ledger.record(events[start : start + 50], decide, "stripe-1")
    assert len(decide.got) == 300
    assert decide.got == decide.want
    assert max(max(c) for c in decide.got) >= 3  # the windows held several payments
