"""Group commit, at both ends of the hub: concurrent webhooks share one spooled batch and one
fsync in the adapter, and are answered only once it is done; the ledger records a batch in
one transaction (a failure inside it leaves nothing, a retry stores each event once) and
hands back the outbox events it committed, which the publisher puts on the bus once even
when it also reads them back."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from sysmonstm.domains.payments import adapter_app, stripe_sig
from sysmonstm.domains.payments.adapter_app import AdapterContext, TxSpool
from sysmonstm.domains.payments.ledger import OutboxEvent, RiskView
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.model import Decision, Transaction
from sysmonstm.domains.payments.outbox import OutboxPublisher
from sysmonstm.errors import BackendError
from sysmonstm.events.registry import open_bus
from sysmonstm.events.testing import Capture
from sysmonstm.transport.spool import Spool
from sysmonstm.v1 import payments_pb2 as pb
from tests.payments.ledger_support import approve_all, ledger_url, opened_ledger, tx
from tests.payments.rawsql import raw
from tests.payments.test_adapters import KEY, NEW, stripe_event
from tests.payments.wire import eventually

BACKENDS = ["sqlite", "postgresql"]


class GatedSpool(Spool):
    """A real spool whose ``sync`` waits until the test opens the gate (and counts calls)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.gate = threading.Event()
        self.syncs = 0

    def sync(self) -> None:
        self.gate.wait(10)
        self.syncs += 1
        super().sync()


class FailingSpool(Spool):
    """A real spool on a disk that refuses every fsync."""

    def sync(self) -> None:
        raise OSError(5, "Input/output error")


def _post(c: httpx.AsyncClient, n: int) -> asyncio.Task[httpx.Response]:
    body = stripe_event(f"evt_{n}", payment_intent=f"pi_{n}")
    headers = {"Stripe-Signature": stripe_sig.sign(body, NEW)}
    return asyncio.create_task(c.post(adapter_app.STRIPE_PATH, content=body, headers=headers))


def _batches(spool: Spool) -> list[tuple[int, list[str]]]:
    return [
        (seq, [t.event_id for t in pb.TransactionBatch.FromString(data).transactions])
        for seq, data in spool.pending(0)
    ]


def _client(sink: TxSpool) -> httpx.AsyncClient:
    app = adapter_app.stripe_app(AdapterContext(sink, KEY, "stripe-test"), [NEW], 300)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://adapter")


async def test_webhooks_arriving_during_an_fsync_share_the_next_batch_and_fsync(
    tmp_path: Path,
) -> None:
    """One request starts a round; the 12 arriving while its fsync runs wait, then go into
    one batch with one fsync; nobody is answered before the fsync covering its event."""
    spool = GatedSpool(tmp_path / "spool")
    sink = TxSpool(spool, "stripe-test")
    try:
        async with _client(sink) as c:

            async def appended() -> bool:
                return spool.pending_count == 1

            async def all_waiting() -> bool:
                return sink.waiting == 12

            first = _post(c, 0)
            await eventually(appended, what="the first request's batch appended")
            rest = [_post(c, n) for n in range(1, 13)]
            await eventually(all_waiting, what="12 requests waiting for the next round")
            assert not first.done()
            assert spool.syncs == 0
            spool.gate.set()
            answers = [await first, *[await r for r in rest]]
        assert [a.status_code for a in answers] == [200] * 13
        batches = _batches(spool)
        assert [ids for _, ids in batches] == [
            ["stripe:evt_0"],
            [f"stripe:evt_{n}" for n in range(1, 13)],
        ]
        assert spool.syncs == 2
        by_event = {a.json()["received"][0]: a.json()["sequence"] for a in answers}
        assert by_event == {e: seq for seq, ids in batches for e in ids}
    finally:
        spool.gate.set()
        spool.close()


async def test_a_disk_refusing_the_fsync_answers_503_and_acknowledges_nothing(
    tmp_path: Path,
) -> None:
    """Every request of a round whose fsync fails gets 503 ``spool_unavailable`` (the
    processor retries); none gets 200."""
    spool = FailingSpool(tmp_path / "spool")
    try:
        async with _client(TxSpool(spool, "stripe-test")) as c:
            answers = await asyncio.gather(*[_post(c, n) for n in range(5)])
        assert [a.status_code for a in answers] == [503] * 5
        assert {a.json()["error"]["code"] for a in answers} == {"spool_unavailable"}
    finally:
        spool.close()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else None
    return ledger_url(request.param, tmp_path, dsn)


class FailsAt:
    """Approves, except that deciding event ``n`` fails as the database would."""

    def __init__(self, n: int) -> None:
        self.event_id = f"stripe:evt_{n}"

    async def __call__(self, t: Transaction, view: RiskView) -> Decision:
        await asyncio.sleep(0)  # a decider may await (on SQLite: the writer thread's loop)
        if t.event_id == self.event_id:
            raise BackendError("the view failed")
        return await approve_all(t, view)


async def test_a_failure_inside_a_batch_leaves_nothing_and_a_retry_stores_each_once(
    url: str,
) -> None:
    """The whole batch is one transaction: a failure at its third event leaves no row, audit
    entry or outbox event of the first two; the replay (with a duplicate inside the batch)
    stores each event once and the chain verifies."""
    async with opened_ledger(url) as ledger:
        await ledger.record([tx(1)], approve_all, "stripe-1")
        batch = [tx(2), tx(3), tx(4), tx(5)]
        with pytest.raises(BackendError):
            await ledger.record(batch, FailsAt(4), "stripe-1")
        assert await ledger.seen([t.event_id for t in batch]) == set()
        assert len(await ledger.audit()) == 2
        assert [e.message_id for e in await ledger.outbox()] == [
            "stripe:evt_1/processed",
            "stripe:evt_1/decision",
        ]
        again = await ledger.record([*batch, tx(3), tx(1)], FailsAt(0), "stripe-1")
        assert [r.tx.event_id for r in again] == [t.event_id for t in batch]
        rows = await raw(url, "SELECT event_id FROM pay_transactions ORDER BY event_id")
        assert [r[0] for r in rows] == [f"stripe:evt_{n}" for n in range(1, 6)]
        assert await ledger.verify_audit_count() == (None, 10)


async def test_record_hands_back_exactly_the_outbox_events_it_committed(url: str) -> None:
    """``outbox=`` receives the committed events in order, as a read of the outbox gives
    them (ids, topics, stable message ids, payloads); a duplicate adds none."""
    async with opened_ledger(url) as ledger:
        handed: list[OutboxEvent] = []
        await ledger.record([tx(1), tx(2), tx(1)], approve_all, "stripe-1", outbox=handed)
        assert handed == await ledger.outbox()
        assert [e.message_id for e in handed] == [
            "stripe:evt_1/processed",
            "stripe:evt_1/decision",
            "stripe:evt_2/processed",
            "stripe:evt_2/decision",
        ]
        more: list[OutboxEvent] = []
        await ledger.record([tx(2)], approve_all, "stripe-1", outbox=more)
        assert more == []


async def test_an_event_offered_and_read_back_is_published_once(tmp_path: Path) -> None:
    """Events offered after the commit and also found pending by a read-back (a poll that
    ran between the commit and the offer) reach the bus once each, and are marked done."""
    async with opened_ledger(f"sqlite:///{tmp_path / 'warm.db'}") as hub:
        bus = open_bus("memory://")
        await bus.start()
        capture = Capture(await bus.subscribe("*.>"))

        async def the_ledger() -> SqlLedger:
            return hub

        publisher = OutboxPublisher(the_ledger, bus)
        handed: list[OutboxEvent] = []
        await hub.record([tx(1), tx(2)], approve_all, "stripe-1", outbox=handed)
        assert await publisher.drain() == 4  # the read-back publishes them first
        publisher.offer(handed)  # then the offer arrives
        await publisher.drain()
        await asyncio.sleep(0.05)
        assert sorted(e.id for e in capture.events) == sorted(e.message_id for e in handed)
        assert await hub.outbox() == []
        await capture.close()
        await bus.close()
