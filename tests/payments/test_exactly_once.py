"""Done-when 2: the same events delivered many times, concurrently, through two adapters (two
sources with their own sequences, two gRPC streams to a real aggregator), and across a hub
SIGKILL mid-batch (the aggregator subprocess killed while the senders stream from their
spools, restarted, the spools replayed) → exactly one ledger row, one decision and one
audit entry pair per event, the outbox drained, and each bus message published once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.resources import ledger
from sysmonstm.events.registry import open_bus
from sysmonstm.events.testing import Capture
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.spool import Spool
from sysmonstm.v1.payments_pb2 import Transaction
from tests.aggregator_fixtures import running_aggregator
from tests.conftest import free_port
from tests.e2e.processes import SYSMONSTM, Proc, base_env, spawn, stop
from tests.payments.ledger_support import opened_ledger
from tests.payments.rawsql import raw
from tests.payments.wire import (
    METHOD,
    PII_KEY,
    batch,
    eventually,
    exchange,
    hub_settings,
    now_ms,
    wire_tx,
)


def events(n: int, t_ms: int) -> list[Transaction]:
    """``n`` distinct payments on distinct cards (no rule interplay), one second apart."""
    return [
        wire_tx(i, t_ms + i, card_fingerprint=f"{i:064x}", amount_minor=100 + i) for i in range(n)
    ]


async def assert_exactly_once(url: str, event_ids: Sequence[str]) -> None:
    """One row, one decision, two audit entries, two outbox events (published) per event,
    and an intact chain."""
    rows = await raw(url, "SELECT event_id FROM pay_transactions")
    assert Counter(r[0] for r in rows) == Counter(event_ids)
    decisions = await raw(url, "SELECT event_id FROM pay_decisions")
    assert Counter(r[0] for r in decisions) == Counter(event_ids)
    audit = await raw(url, "SELECT kind, subject FROM pay_audit")
    assert Counter(audit) == Counter(
        [("transaction", e) for e in event_ids] + [("decision", e) for e in event_ids]
    )
    outbox = await raw(url, "SELECT message_id, done_ms FROM pay_outbox")
    assert sorted(m for m, _ in outbox) == sorted(
        [f"{e}/processed" for e in event_ids] + [f"{e}/decision" for e in event_ids]
    )
    assert all(done is not None for _, done in outbox)
    async with opened_ledger(url) as opened:
        assert await opened.verify_audit_count() == (None, 2 * len(event_ids))


async def test_many_concurrent_deliveries_through_two_adapters_record_each_event_once(
    data_dir: Path,
) -> None:
    """Every event in several batches of each adapter; both adapters' streams and a burst of
    one-batch retries all at once."""
    t = now_ms() - 60_000
    txs = events(120, t)
    async with running_aggregator(hub_settings(data_dir)) as core:
        capture = await Capture.start(core.bus, ">")
        address = core.settings.aggregator.listen

        def adapter(name: str, order: list[Transaction], first_seq: int) -> list[object]:
            # each event twice in this adapter's stream (a webhook retry), 10 per batch
            doubled = order + order[::3] + order[1::3] + order[2::3]
            chunks = [doubled[i : i + 10] for i in range(0, len(doubled), 10)]
            return [batch(name, first_seq + k, c) for k, c in enumerate(chunks)]

        a = adapter("stripe-a", txs, 1)
        b = adapter("stripe-b", txs[::-1], 100)
        retries = [[batch(f"stripe-r{i}", 1, txs[i * 10 : i * 10 + 10])] for i in range(12)]
        outs = await asyncio.gather(
            exchange(address, a), exchange(address, b), *(exchange(address, r) for r in retries)
        )
        assert all(o.code == grpc.StatusCode.OK for o in outs), [o.details for o in outs]
        assert outs[0].acks[-1] == len(a)
        assert outs[1].acks[-1] == 100 + len(b) - 1
        hub: SqlLedger = await ledger(core)

        async def drained() -> bool:
            return await hub.outbox() == []

        await eventually(drained, what="the outbox drained")
        ids = [tx.event_id for tx in txs]
        await assert_exactly_once(core.settings.warm.url, ids)
        published = Counter(e.id for e in capture.events)
        assert published == Counter(
            [f"{e}/processed" for e in ids] + [f"{e}/decision" for e in ids]
        )
        await capture.close()


class Adapter:
    """What ``sysmonstm payments adapter`` does on the wire: spool each batch, stream the
    spool with a ``StreamSender`` (which reconnects and replays what is not acked)."""

    def __init__(self, name: str, spool_dir: Path, address: str) -> None:
        self.name = name
        self.spool = Spool(spool_dir)
        self.sender = StreamSender(
            self.spool,
            [address],
            METHOD,
            options=SenderOptions(backoff_initial_s=0.05, backoff_max_s=0.3, stop_grace_s=60.0),
        )
        self.task = asyncio.create_task(self.sender.run())

    def send(self, txs: Sequence[Transaction]) -> None:
        seq = self.spool.next_sequence()
        self.spool.append(seq, batch(self.name, seq, txs).SerializeToString())

    async def stop(self) -> None:
        self.sender.stop()
        await self.task
        self.spool.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def warm_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub' / 'warm.db'}"
    return str(request.getfixturevalue("pg_dsn"))


async def test_a_hub_killed_mid_batch_and_restarted_records_each_event_once(
    tmp_path: Path, redis_server_url: str, redis_prefix: str, warm_url: str
) -> None:
    """Two adapters stream the same events (each twice) into an aggregator process that is
    SIGKILLed while they stream; after the restart the spools replay. The bus is Redis, so a
    subscriber here counts what the hub published, across its two lives."""
    address = f"127.0.0.1:{free_port()}"
    bus_url = f"{redis_server_url}?prefix={redis_prefix}"
    env = base_env(
        tmp_path / "hub",
        aggregator__listen=address,
        bus__url=bus_url,
        warm__url=warm_url,
        payments__pii_key=PII_KEY,
    )
    t = now_ms() - 120_000
    txs = events(600, t)
    plan = [txs[i : i + 50] for i in range(0, 600, 50)]
    plan = plan + plan[::-1]  # every event twice per adapter; the first 6 batches: 300 events
    agg: Proc = spawn([SYSMONSTM, "aggregator"], env, tmp_path / "agg1.log")
    agg.wait_log("aggregator listening")
    adapters = [Adapter(n, tmp_path / f"spool-{n}", address) for n in ("stripe-a", "stripe-b")]
    try:
        for k, chunk in enumerate(plan):
            adapters[0].send(chunk)
            adapters[1].send(plan[-1 - k])
            await asyncio.sleep(0.05)
            if k == 5:  # mid-stream: batches in flight, some recorded, half not yet spooled

                async def some_recorded() -> bool:
                    found = await raw(warm_url, "SELECT count(*) FROM pay_transactions")
                    return int(found[0][0]) > 0

                await eventually(some_recorded, timeout=30.0, what="the first events recorded")
                assert stop(agg, signal.SIGKILL) == -signal.SIGKILL
                recorded = (await raw(warm_url, "SELECT count(*) FROM pay_transactions"))[0][0]
                assert 0 < recorded <= len(txs) // 2  # the plan's second half is still to come
                agg = spawn([SYSMONSTM, "aggregator"], env, tmp_path / "agg2.log")
        agg.wait_log("aggregator listening")

        async def all_acked() -> bool:
            return all(a.spool.pending_count == 0 for a in adapters)

        await eventually(all_acked, timeout=60.0, what="both spools acknowledged")
        for a in adapters:
            await a.stop()
        async with opened_ledger(warm_url) as opened:

            async def drained() -> bool:
                return await opened.outbox() == []

            await eventually(drained, timeout=30.0, what="the outbox drained")
    finally:
        for a in adapters:
            with contextlib.suppress(Exception):
                await a.stop()
        assert stop(agg) == 0, agg.text()[-3000:]
    ids = [tx.event_id for tx in txs]
    await assert_exactly_once(warm_url, ids)
    # the bus: every message the hub published, from the start of its history
    bus = open_bus(bus_url)
    await bus.start()
    try:
        capture = Capture(await bus.subscribe("*.>", since_ms=0))
        expected = Counter([f"{e}/processed" for e in ids] + [f"{e}/decision" for e in ids])

        async def all_seen() -> bool:
            return len(capture.events) >= sum(expected.values())

        await eventually(all_seen, timeout=30.0, what="every bus message read back")
        await asyncio.sleep(0.5)  # room for a duplicate to show up after the last expected
        assert Counter(e.id for e in capture.events) == expected
        await capture.close()
    finally:
        await bus.close()


pytestmark = pytest.mark.timeout(180)
