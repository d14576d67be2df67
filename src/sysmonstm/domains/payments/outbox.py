"""The outbox publisher: what ``Ledger.record`` committed to publish reaches the bus.

Runs in the aggregator beside the payments pipeline. It reads the ledger's pending outbox
events in order, publishes each with its stable message id as the envelope id, then marks
them done. A crash between the publish and the mark publishes an event again on the next
start: at least once, and a bus with ``dedupe`` (NATS, Redis) drops the repeat by its id;
subscribers of the memory bus may see one (it lives and dies with this process, so there a
crash loses its subscribers too). A failing bus is retried on the next round; nothing is
marked done that was not published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import structlog

from sysmonstm.domains.payments.ledger import OutboxEvent
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.errors import SysmonstmError
from sysmonstm.events.bus import Bus

log = structlog.get_logger(__name__)

SOURCE = "payments"
POLL_S = 1.0  # also publishes what another hub or a crashed run left in the outbox
PAGE = 500


def event_time(payload: Mapping[str, object]) -> int | None:
    """The observation time of an outbox event: the analyst's answer for a review, else the
    transaction's own time (rules evaluate on it)."""
    review = payload.get("review")
    if isinstance(review, Mapping) and isinstance(review.get("reviewed_ms"), int):
        return int(review["reviewed_ms"])
    t = payload.get("time_ms")
    return t if isinstance(t, int) else None


class OutboxPublisher:
    """Publishes a ledger's outbox to ``bus`` (see the module docstring)."""

    def __init__(
        self,
        ledger: Callable[[], Awaitable[SqlLedger]],
        bus: Bus,
        *,
        poll_s: float = POLL_S,
    ) -> None:
        self._ledger = ledger
        self.bus = bus
        self.poll_s = poll_s
        self.published = 0
        self._kicked = asyncio.Event()
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        """Something was committed: publish it now rather than at the next poll."""
        self._kicked.set()

    async def drain(self) -> int:
        """Publish every pending event; returns how many were published. Raises
        ``SysmonstmError`` (after marking done what did go out) when the bus or ledger fails."""
        ledger = await self._ledger()
        total = 0
        async with self._lock:
            while True:
                pending = await ledger.outbox(PAGE)
                if not pending:
                    return total
                sent: list[int] = []
                try:
                    for event in pending:
                        await self._publish(event)
                        sent.append(event.id)
                finally:
                    if sent:
                        await ledger.outbox_done(sent)
                        total += len(sent)
                        self.published += len(sent)

    async def _publish(self, event: OutboxEvent) -> None:
        await self.bus.publish(
            event.topic,
            dict(event.payload),
            source=SOURCE,
            event_id=event.message_id,
            time_ms=event_time(event.payload),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Drain at once, then on every kick or poll, until ``stop``; a last drain after it
        (so a graceful stop leaves nothing pending that the bus would take)."""
        while True:
            try:
                await self.drain()
            except SysmonstmError as exc:  # the next round tries again
                log.error("payments outbox: publishing failed", error=str(exc))
            if stop.is_set():
                return
            self._kicked.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (self._kicked, stop)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED), self.poll_s
                )
            for w in waits:
                w.cancel()
