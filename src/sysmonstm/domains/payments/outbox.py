"""The outbox publisher: what ``Ledger.record`` committed to publish reaches the bus.

Runs in the aggregator beside the payments pipeline. The hub's ``store`` hands it what each
``record`` committed (``offer``): those go out at once, in commit order, without being read
back. Besides, it reads the ledger's pending outbox events in order (at start, every
``poll_s``, and after a failure): what another hub, a review or a crashed run left there.
Each event is published with its stable message id as the envelope id, then marked done
(a mark needs no fsync of its own: losing it repeats a publish, nothing else). Events this
process published recently are remembered by id, so an event both offered and read back is
published once. A crash between the publish and the mark publishes an event again on the
next start: at least once, and a bus with ``dedupe`` (NATS, Redis) drops the repeat by its
id; subscribers of the memory bus may see one (it lives and dies with this process, so there
a crash loses its subscribers too). A failing bus is retried on the next round; nothing is
marked done that was not published.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from sysmonstm.domains.payments.ledger import OutboxEvent
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.errors import SysmonstmError
from sysmonstm.events.bus import Bus

log = structlog.get_logger(__name__)

SOURCE = "payments"
POLL_S = 1.0  # also publishes what another hub or a crashed run left in the outbox
PAGE = 500
RECENT = 100_000  # ids of events published by this process, remembered against a repeat


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
        self._offered: deque[OutboxEvent] = deque()
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._read_back = True  # the next round reads the ledger's pending events too

    def kick(self) -> None:
        """Something was committed: publish it now rather than at the next poll."""
        self._kicked.set()

    def offer(self, events: Sequence[OutboxEvent]) -> None:
        """``events`` were just committed (``SqlLedger.record(outbox=…)``), in this order:
        publish them on the next round, without reading them back."""
        if events:
            self._offered.extend(events)
            self._kicked.set()

    async def drain(self) -> int:
        """Publish every pending event, in the ledger and offered; returns how many were
        published. Raises ``SysmonstmError`` (after marking done what did go out) when the
        bus or ledger fails."""
        self._read_back = True
        return await self._round()

    async def _round(self) -> int:
        ledger = await self._ledger()
        total = 0
        async with self._lock:
            try:
                if self._read_back:
                    self._read_back = False
                    while pending := await ledger.outbox(PAGE):
                        total += await self._send(ledger, pending)
                while self._offered:
                    batch = list(self._offered)
                    self._offered.clear()
                    total += await self._send(ledger, batch)
            except BaseException:
                self._read_back = True  # what did not go out is pending in the ledger
                self._offered.clear()
                raise
        return total

    async def _send(self, ledger: SqlLedger, events: list[OutboxEvent]) -> int:
        """Publish those not published yet, then mark all of them done."""
        sent: list[int] = []
        try:
            for event in events:
                if event.id not in self._recent:
                    await self._publish(event)
                    self._remember(event.id)
                    self.published += 1
                sent.append(event.id)
        finally:
            if sent:
                await ledger.outbox_done(sent)
        return len(sent)

    def _remember(self, event_id: int) -> None:
        self._recent[event_id] = None
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    async def _publish(self, event: OutboxEvent) -> None:
        await self.bus.publish(
            event.topic,
            dict(event.payload),
            source=SOURCE,
            event_id=event.message_id,
            time_ms=event_time(event.payload),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Drain at once, then on every offer, kick or poll (a poll also reads the ledger
        back), until ``stop``; a last full drain after it (so a graceful stop leaves nothing
        pending that the bus would take)."""
        last = False
        while True:
            try:
                await self._round()
            except SysmonstmError as exc:  # the next round tries again
                log.error("payments outbox: publishing failed", error=str(exc))
            if last:
                return
            if stop.is_set():
                last = self._read_back = True
                continue
            self._kicked.clear()
            if self._offered:
                continue  # offered while the last round ran
            waits = [asyncio.ensure_future(e.wait()) for e in (self._kicked, stop)]
            try:
                await asyncio.wait_for(
                    asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED), self.poll_s
                )
            except TimeoutError:
                self._read_back = True
            for w in waits:
                w.cancel()
