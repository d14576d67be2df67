"""The hub's ingest through a real gRPC aggregator: TransactionBatch streams become ledger
rows with base amounts and rule decisions, masked hot documents and exact bus events;
replays change nothing; refusals store nothing and the hub keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.model import DOMAIN, Action
from sysmonstm.domains.payments.outbox import OutboxPublisher
from sysmonstm.domains.payments.resources import ledger
from sysmonstm.domains.payments.seen import SeenIds
from sysmonstm.errors import BackendError
from sysmonstm.events.testing import Capture
from sysmonstm.runtime import Core
from sysmonstm.transport.status import REJECTED_SEQ
from tests.aggregator_fixtures import running_aggregator
from tests.payments.ledger_support import approve_all, opened_ledger, tx
from tests.payments.rawsql import raw
from tests.payments.wire import (
    FINGERPRINT,
    batch,
    eventually,
    exchange,
    hub_settings,
    now_ms,
    wire_tx,
)


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    async with running_aggregator(hub_settings(data_dir)) as c:
        yield c


async def _drained(hub: SqlLedger) -> bool:
    return await hub.outbox() == []


def address(core: Core) -> str:
    return core.settings.aggregator.listen


async def test_a_stream_is_recorded_decided_and_published_exactly(core: Core) -> None:
    capture = await Capture.start(core.bus, ">")
    t = now_ms() - 5000
    out = await exchange(
        address(core),
        [
            batch("stripe-1", 1, [wire_tx(1, t), wire_tx(2, t + 1, currency="EUR",
                                                          amount_minor=1_200_000)]),
            batch("stripe-1", 2, [wire_tx(3, t + 2, amount_minor=50_000, currency="JPY",
                                          ip_country="FR")]),
        ],
    )  # fmt: skip
    assert out.code == grpc.StatusCode.OK, out.details
    assert out.acks[-1] == 2
    hub = await ledger(core)
    rows = await hub.transactions(0, 2**62)
    assert [(r.tx.event_id, r.tx.amount_base_minor, r.decision.action) for r in rows] == [
        ("stripe:evt_1", 1000, Action.APPROVE),
        ("stripe:evt_2", 1_320_000, Action.REVIEW),  # 12,000.00 EUR is 13,200.00 USD
        ("stripe:evt_3", 33_500, Action.REVIEW),  # ¥50,000 is 335.00 USD; paid from France
    ]
    assert [h.rule for h in rows[1].decision.hits] == ["large_transaction"]
    assert [h.rule for h in rows[2].decision.hits] == ["geographic_anomaly"]
    assert rows[0].tx.email == "payer1@example.com"  # opened with the key on read
    assert rows[0].tx.source == "stripe-1"
    await capture.wait_for(lambda e: e.id == "stripe:evt_3/decision")
    got = sorted((e.topic, e.id) for e in capture.events)
    assert got == sorted(
        [
            ("transactions.processed", "stripe:evt_1/processed"),
            ("risk.decision.approve", "stripe:evt_1/decision"),
            ("transactions.processed", "stripe:evt_2/processed"),
            ("risk.decision.review", "stripe:evt_2/decision"),
            ("transactions.processed", "stripe:evt_3/processed"),
            ("risk.decision.review", "stripe:evt_3/decision"),
        ]
    )
    first = next(e for e in capture.events if e.id == "stripe:evt_1/processed")
    assert first.time_ms == t
    assert first.source == "payments"
    assert first.payload == {
        "event_id": "stripe:evt_1",
        "transaction_id": "pi_1",
        "processor": "stripe",
        "status": "captured",
        "amount_minor": 1000,
        "currency": "USD",
        "amount_base_minor": 1000,
        "base_currency": "USD",
        "time_ms": t,
        "card": {"bin": "424242", "last4": "4242", "fingerprint": FINGERPRINT[:12],
                 "country": "US"},
        "country": "US",
        "ip_country": "US",
        "source": "stripe-1",
        "decision": {"action": "approve", "hits": [], "ruleset": rows[0].decision.ruleset,
                     "decided_ms": rows[0].decision.decided_ms},
    }  # fmt: skip
    docs = await core.hot.recent_docs(DOMAIN, 0)
    assert [d.key for d in docs] == ["stripe:evt_1", "stripe:evt_2", "stripe:evt_3"]
    assert all("payer" not in str(d.body) and "192.0.2" not in str(d.body) for d in docs)
    await eventually(lambda: _drained(hub), what="the outbox drained")
    assert await hub.verify_audit_count() == (None, 6)
    await capture.close()


async def test_replays_and_repeated_events_record_nothing_new(core: Core) -> None:
    """The same batch again (same sequence) is acked as a duplicate; the same events in a
    new batch, or from another adapter, are left out by the ledger."""
    t = now_ms() - 5000
    first = batch("stripe-1", 5, [wire_tx(1, t), wire_tx(2, t)])
    assert (await exchange(address(core), [first])).acks == [5]
    hub = await ledger(core)
    await eventually(lambda: _drained(hub), what="the first events published")
    capture = await Capture.start(core.bus, ">")
    again = await exchange(address(core), [first, batch("stripe-1", 6, [wire_tx(2, t)])])
    assert again.code == grpc.StatusCode.OK
    assert again.acks[-1] == 6
    other = await exchange(address(core), [batch("stripe-2", 1, [wire_tx(1, t), wire_tx(9, t)])])
    assert other.acks == [1]
    await capture.wait_for(lambda e: e.id == "stripe:evt_9/decision")
    assert sorted(e.id for e in capture.events) == [
        "stripe:evt_9/decision", "stripe:evt_9/processed"
    ]  # fmt: skip
    assert [r.tx.event_id for r in await hub.transactions(0, 2**62)] == [
        "stripe:evt_1", "stripe:evt_2", "stripe:evt_9"
    ]  # fmt: skip
    assert await hub.stored_through("payments:stripe-1") == 6
    assert await hub.stored_through("payments:stripe-2") == 1
    await capture.close()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currency": "XYZ"}, "unknown currency 'XYZ'"),
        ({"currency": "usd"}, "currency must be an upper-case ISO 4217 code"),
        ({"currency": "GBP"}, "no exchange rate for GBP in payments.rates"),
        ({"amount_minor": -1}, "amount_minor must be within 0.."),
        ({"status": "settled"}, "status must be one of authorized, captured"),
        ({"event_id": "paypal:WH-1"}, "event_id must be 'stripe:' followed by"),
        ({"processor": "visa"}, "processor must be one of bank, paypal, stripe"),
        ({"country": "USA"}, "country must be an upper-case ISO 3166-1 alpha-2 code"),
        ({"card_last4": "42a2"}, "card_last4 must be 4 digits"),
        ({"card_fingerprint": "4242424242424242"}, "card_fingerprint must be 64"),
        ({"description": "card 4242 4242 4242 4242"}, "description looks like it holds a card"),
        ({"metadata": {"note": "4000056655665556"}}, "metadata['note'] looks like it holds"),
        ({"ip": "999.1.1.1"}, "ip must be an IPv4 or IPv6 address"),
        ({"time_unix_ms": 1}, "time 1 ms is not within"),
    ],
)
async def test_a_bad_transaction_refuses_its_batch_and_stores_nothing(
    core: Core, change: dict[str, object], reason: str
) -> None:
    t = now_ms() - 5000
    good = batch("stripe-1", 1, [wire_tx(1, t)])
    bad = batch("stripe-1", 2, [wire_tx(2, t), wire_tx(3, t, **change)])
    out = await exchange(address(core), [good, bad])
    assert out.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"TransactionBatch batch 2 rejected: transaction 1: {reason}" in out.details
    assert "4242 4242" not in out.details
    assert "4000056655665556" not in out.details
    assert (REJECTED_SEQ, "2") in out.trailing
    hub = await ledger(core)

    async def first_stored() -> bool:
        return await hub.stored_through("payments:stripe-1") == 1

    await eventually(first_stored, what="the batch before the bad one stored")
    assert [r.tx.event_id for r in await hub.transactions(0, 2**62)] == ["stripe:evt_1"]
    # the hub keeps serving: the adapter's next stream carries on after the accepted batch
    fixed = await exchange(address(core), [batch("stripe-1", 2, [wire_tx(2, t)])])
    assert fixed.acks[-1] == 2
    assert len(await hub.transactions(0, 2**62)) == 2


async def test_a_batch_refused_whole_for_its_shape(core: Core) -> None:
    t = now_ms()
    no_source = batch("", 1, [wire_tx(1, t)])
    empty = batch("stripe-1", 1, [])
    for raw_batch, reason in (
        (no_source, "source.machine_id (the adapter instance) is required"),
        (empty, "a batch holds 1..10000 transactions, not 0"),
        (b"\xff\xff", "not a valid TransactionBatch message"),
    ):
        out = await exchange(address(core), [raw_batch])
        assert out.code == grpc.StatusCode.INVALID_ARGUMENT
        assert reason in out.details
    assert await (await ledger(core)).transactions(0, 2**62) == []


async def test_the_adapter_sequence_survives_a_restart(data_dir: Path) -> None:
    """Sequences are stored with the events: after a restart a replay is a duplicate."""
    settings = hub_settings(data_dir)
    t = now_ms() - 5000
    async with running_aggregator(settings) as core:
        assert (await exchange(address(core), [batch("bank-1", 40, [wire_tx(1, t)])])).acks == [40]
    async with running_aggregator(settings) as core:
        out = await exchange(address(core), [batch("bank-1", 40, [wire_tx(2, t)])])
        assert out.acks == [40]  # acked as stored; its (different) content is not recorded
        hub = await ledger(core)
        assert [r.tx.event_id for r in await hub.transactions(0, 2**62)] == ["stripe:evt_1"]


async def test_personal_fields_never_reach_the_database_in_clear(core: Core) -> None:
    t = now_ms() - 5000
    await exchange(address(core), [batch("stripe-1", 1, [wire_tx(1, t)])])
    db = core.settings.warm.url
    row = await raw(db, "SELECT email, customer_name FROM pay_transactions")
    assert row[0][0].startswith("v1:")
    assert "payer1" not in str(row)
    assert "Payer 1" not in str(row)


class FlakyBus:
    """A bus whose publish fails while ``down`` (what the outbox sees of a bus outage)."""

    def __init__(self) -> None:
        self.down = False
        self.published: list[str] = []

    async def publish(self, topic: str, payload: object, **kw: Any) -> None:
        if self.down:
            raise BackendError("bus unreachable")
        self.published.append(str(kw["event_id"]))
        if len(self.published) == 3:
            self.down = True


async def test_the_outbox_marks_done_only_what_the_bus_took(tmp_path: Path) -> None:
    """A bus failing mid-drain: what went out is marked done, the rest stays pending and goes
    out on the next round, once."""
    async with opened_ledger(f"sqlite:///{tmp_path / 'warm.db'}") as hub:
        await hub.record([tx(1), tx(2), tx(3)], approve_all, "stripe-1")
        bus = FlakyBus()

        async def the_ledger() -> SqlLedger:
            return hub

        publisher = OutboxPublisher(the_ledger, bus)  # type: ignore[arg-type]
        with pytest.raises(BackendError):
            await publisher.drain()
        assert [e.message_id for e in await hub.outbox()] == [
            "stripe:evt_2/decision", "stripe:evt_3/processed", "stripe:evt_3/decision"
        ]  # fmt: skip
        bus.down = False
        assert await publisher.drain() == 3
        assert bus.published == [
            "stripe:evt_1/processed", "stripe:evt_1/decision", "stripe:evt_2/processed",
            "stripe:evt_2/decision", "stripe:evt_3/processed", "stripe:evt_3/decision",
        ]  # fmt: skip
        assert await hub.outbox() == []


def test_the_fast_duplicate_check_forgets_after_its_window_and_bound() -> None:
    now = [0]
    seen = SeenIds(ttl_ms=1000, max_ids=3, clock=lambda: now[0])
    seen.add(["a", "b"])
    assert seen.known("a")
    assert not seen.known("z")
    now[0] = 1001
    assert not seen.known("a")  # past the window: ask the ledger
    seen.add(["c", "d", "e", "f"])
    assert len(seen) == 3  # a, b expired; c dropped by the bound
    assert [seen.known(k) for k in "cdef"] == [False, True, True, True]
