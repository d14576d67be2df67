"""The hub's ingest: TransactionBatch on the wire → the ledger, exactly once → the bus.

``PaymentStages`` plug into the core pipeline: validate (``validate.py``), normalize (the
amount in the base currency from ``payments.rates``, ``money.to_base``), identity (the
adapter instance and its sequence: the pipeline drops a replayed batch by it), store, publish.
``store`` leaves out events the fast check knows (``seen.py``), then calls
``Ledger.record`` once per adapter with the risk decider: each event is inserted under its
unique event id, decided, audited and put in the outbox in one transaction, together with
the adapter's stored sequence. Exactly once across adapters comes from that unique id, not
from the sequences. After the commit, the outbox events it wrote go straight to the outbox
publisher (``outbox.py``), which runs beside the pipeline and puts ``transactions.processed``
and ``risk.decision.<action>`` on the bus, and masked copies of the new events go to the hot
tier's recent documents (the live feed). The pipeline flushes as soon as a batch is queued
(``FLUSH_AGE_S``): one ledger transaction per flush is the group commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from sysmonstm.domains.payments import ledger_rows
from sysmonstm.domains.payments.ledger import Decider, OutboxEvent, Recorded, RiskView
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.model import DOMAIN, Action, Decision, RuleHit, Transaction
from sysmonstm.domains.payments.money import to_base
from sysmonstm.domains.payments.outbox import OutboxPublisher
from sysmonstm.domains.payments.resources import ledger as shared_ledger
from sysmonstm.domains.payments.seen import HOUR_MS, SeenIds
from sysmonstm.domains.payments.validate import PaymentBatch, PaymentLimits, transaction_batch
from sysmonstm.errors import InvalidInputError, SysmonstmError
from sysmonstm.pipeline import Pipeline, PipelineOptions
from sysmonstm.store.hot import HotDocument
from sysmonstm.transport.stream_server import IngestStream
from sysmonstm.v1.payments_pb2 import TransactionBatch as WireBatch

if TYPE_CHECKING:
    import grpc

    from sysmonstm.runtime import Core

log = structlog.get_logger(__name__)

SERVICE = "sysmonstm.v1.PaymentsIngest"
SOURCE_PREFIX = f"{DOMAIN}:"
DECIDER_FAILED = "hub.decider_failed"
# Group commit without waiting: a flush takes what is queued and goes; what arrives while a
# ledger commit (and its fsync) runs goes in the next one. Waiting for more (the metrics
# pipeline's ``aggregator.flush_age_s``) would only add that wait to every decision.
FLUSH_AGE_S = 0.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def source_key(adapter: str) -> str:
    """The pipeline's deduplication key (and the ledger's sequence key) of an adapter."""
    return SOURCE_PREFIX + adapter


class FailClosed:
    """A decider that sends a transaction for review when the rules themselves fail (a bug,
    not the database: a ``SysmonstmError`` of the view still rolls ``record`` back)."""

    def __init__(self, inner: Decider, now_ms: Callable[[], int] = _wall_ms) -> None:
        self.inner = inner
        self._now_ms = now_ms

    async def __call__(self, tx: Transaction, view: RiskView) -> Decision:
        try:
            return await self.inner(tx, view)
        except SysmonstmError:
            raise
        except Exception as exc:
            log.exception("payments: the risk rules failed; sent for review", event=tx.event_id)
            hit = RuleHit(DECIDER_FAILED, Action.REVIEW, f"the risk rules failed: {exc!r}")
            return Decision(
                tx.event_id, tx.transaction_id, Action.REVIEW, (hit,), self._now_ms(), "none"
            )


def default_decider(core: Core) -> Decider:
    """The risk rules of ``payments.risk_rules`` (default: the shipped set)."""
    from sysmonstm.domains.payments.risk import load_decider

    return load_decider(core.settings.payments.risk_rules)


class PaymentStages:
    """The payment hub's pipeline stages (see the module docstring)."""

    def __init__(
        self,
        core: Core,
        decider: Decider | None = None,
        limits: PaymentLimits | None = None,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.core = core
        self.decider = FailClosed(decider or default_decider(core), now_ms)
        self.limits = limits or PaymentLimits()
        self.seen = SeenIds()
        self.outbox: OutboxPublisher | None = None  # woken after each commit
        self._now_ms = now_ms
        payments = core.settings.payments
        self._rates = payments.rates
        self._base = payments.base_currency

    async def ledger(self) -> SqlLedger:
        return await shared_ledger(self.core)

    # -- validate, normalize, identity -----------------------------------------------------

    async def validate(self, raw: object) -> PaymentBatch:
        return transaction_batch(raw, self._now_ms(), self.limits)

    def normalize(self, batch: PaymentBatch) -> PaymentBatch:
        """Each amount also in the base currency; ``CurrencyError`` (an ``InvalidInputError``:
        the batch is refused) for a currency without a rate."""
        base = self._base
        txs = []
        for i, tx in enumerate(batch.txs):
            try:
                base_minor = to_base(tx.amount_minor, tx.currency, self._rates, base)
            except InvalidInputError as exc:
                raise InvalidInputError(f"transaction {i}: {exc.reason}") from None
            txs.append(replace(tx, amount_base_minor=base_minor, base_currency=base))
        return PaymentBatch(batch.source, batch.sequence, tuple(txs))

    def identity(self, batch: PaymentBatch) -> tuple[str, int]:
        return source_key(batch.source), batch.sequence

    def size(self, batch: PaymentBatch) -> int:
        return len(batch.txs)

    async def stored_through(self, source: str) -> int:
        return await (await self.ledger()).stored_through(source)

    # -- store, publish --------------------------------------------------------------------

    async def store(self, batches: Sequence[PaymentBatch]) -> Sequence[PaymentBatch]:
        """Record each adapter's new events (one ``record`` per adapter, in arrival order)
        with its highest sequence; every batch counts as stored (its duplicates were
        recorded before)."""
        ledger = await self.ledger()
        by_source: dict[str, list[PaymentBatch]] = {}
        for batch in batches:
            by_source.setdefault(batch.source, []).append(batch)
        recorded: list[Recorded] = []
        for adapter, group in by_source.items():
            fresh = [tx for b in group for tx in b.txs if not self.seen.known(tx.event_id)]
            if fresh:  # what another hub sharing the hot tier recorded (a miss: the ledger)
                shared = await self.core.hot.known(DOMAIN, [tx.event_id for tx in fresh])
                fresh = [tx for tx in fresh if tx.event_id not in shared]
            mark = {source_key(adapter): max(b.sequence for b in group)}
            events: list[OutboxEvent] = []
            recorded += await ledger.record(fresh, self.decider, adapter, marks=mark, outbox=events)
            if self.outbox is not None:
                self.outbox.offer(events)  # published now, before the bookkeeping below
            self.seen.add(tx.event_id for tx in fresh)
            await self.core.hot.remember(DOMAIN, [tx.event_id for tx in fresh], HOUR_MS)
        if recorded:
            docs = [
                HotDocument(r.tx.event_id, r.tx.time_ms, ledger_rows.processed_payload(r))
                for r in recorded
            ]
            await self.core.hot.add_recent(DOMAIN, docs)
        return batches

    async def publish(self, batches: Sequence[PaymentBatch]) -> None:
        """Nothing here: the outbox publisher puts what ``store`` committed on the bus."""


class PaymentsIngest:
    """The running payment hub ingest: a pipeline, the gRPC handler feeding it, and the
    outbox publisher beside it."""

    def __init__(self, core: Core, decider: Decider | None = None) -> None:
        agg = core.settings.aggregator
        limits = PaymentLimits(max_future_ms=int(agg.max_future_s * 1000))
        self.stages = PaymentStages(core, decider, limits)
        self.pipeline: Pipeline[PaymentBatch] = Pipeline(
            self.stages,
            PipelineOptions(
                queue_batches=agg.queue_batches,
                flush_items=agg.flush_samples,
                flush_age_s=FLUSH_AGE_S,
            ),
        )
        self.stream = IngestStream(self.pipeline, WireBatch.FromString, "TransactionBatch")
        self.outbox = OutboxPublisher(self.stages.ledger, core.bus)
        self.stages.outbox = self.outbox
        self._stopped = asyncio.Event()

    @property
    def handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        return [self.stream.handler(SERVICE)]

    async def run(self) -> None:
        """Record what arrives and publish the outbox until ``stop``; returns once what was
        queued is recorded and the outbox drained (as far as the bus takes it)."""
        publisher = asyncio.create_task(self.outbox.run(self._stopped), name="payments-outbox")
        try:
            await self.pipeline.run()
        finally:
            self._stopped.set()
            await publisher

    def stop(self) -> None:
        self.pipeline.stop()
