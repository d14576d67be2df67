"""Alert transitions out of the rules service: kept in the warm tier first, then published.

The service's consumers hand transitions to an ``Emitter`` and go on evaluating; the
emitter's task takes everything handed over so far, appends it to the warm tier in one call
(one transaction, one fsync on SQLite, for however many transitions piled up while the last
one was written) and then publishes each on ``alerts.<rule token>``, in the order they were
handed over. So a transition is still kept before it is published, instances still go
pending → firing → resolved on the bus, and evaluation never waits for a disk.

What is handed over is bounded (``max_pending`` transitions): past it ``put`` waits, which
holds the consumers back (and, on the in-process bus, the publishers) rather than letting a
slow warm tier grow memory without end. A failing store or publish is logged and skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog

from sysmonstm.events.bus import Bus
from sysmonstm.events.topics import topic_token
from sysmonstm.rules.model import AlertEvent
from sysmonstm.store.model import Record

log = structlog.get_logger(__name__)

SOURCE = "rules"


class RecordSink(Protocol):
    """The part of ``WarmTier`` the service uses; any warm tier satisfies it."""

    async def append_records(self, records: Sequence[Record]) -> None: ...


def alert_topic(rule: str) -> str:
    """The topic a rule's alerts are published on."""
    return f"alerts.{topic_token(rule)}"


def alert_record(event: AlertEvent) -> Record:
    """The warm-tier record of one transition (its id makes a repeat harmless)."""
    return Record(
        kind="alert",
        id=f"{event.id}:{event.state}",
        time_ms=event.time_ms,
        key=event.id,
        body=event.to_payload(),
    )


class Emitter:
    """Keeps then publishes transitions in hand-over order; ``run`` is its task's body."""

    def __init__(self, bus: Bus, warm: RecordSink | None, *, max_pending: int = 10_000) -> None:
        self._bus = bus
        self._warm = warm
        self._max = max_pending
        self._pending: list[AlertEvent] = []
        self._handed = 0  # transitions handed over so far
        self._done = 0  # of which kept and published
        self._wake = asyncio.Event()  # something was handed over
        self._progress = asyncio.Event()  # a batch went out
        self._running = False

    async def put(self, events: Sequence[AlertEvent]) -> None:
        """Hand ``events`` over; waits only while ``max_pending`` are already waiting.

        Without a running ``run`` task they are kept and published before this returns."""
        if not events:
            return
        if not self._running:
            await self.emit(events)
            return
        while len(self._pending) >= self._max and self._running:
            self._progress.clear()
            await self._progress.wait()
        self.put_nowait(events)

    def put_nowait(self, events: Sequence[AlertEvent]) -> None:
        """Hand ``events`` over without waiting (past ``max_pending`` too)."""
        if events:
            self._pending.extend(events)
            self._handed += len(events)
            self._wake.set()

    async def flush(self) -> None:
        """Wait until everything handed over so far is kept and published."""
        target = self._handed
        while self._done < target and self._running:
            self._progress.clear()
            await self._progress.wait()

    async def run(self) -> None:
        """Keep and publish what is handed over, batch after batch, until cancelled."""
        self._running = True
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                batch, self._pending = self._pending, []
                if batch:
                    await self.emit(batch)
                    self._done += len(batch)
                self._progress.set()
        finally:
            self._running = False
            self._progress.set()
            batch, self._pending = self._pending, []
            if batch:  # cancelled with transitions in hand: they still go out
                await asyncio.shield(self.emit(batch))

    async def emit(self, events: Sequence[AlertEvent]) -> None:
        """Keep ``events`` (one warm-tier call), then publish each; failures are logged."""
        if self._warm is not None:
            try:
                await self._warm.append_records([alert_record(e) for e in events])
            except Exception:
                log.exception("rules.record_failed", count=len(events))
        for event in events:
            log.info("rules.alert", rule=event.rule, state=str(event.state), key=event.key)
            try:
                await self._bus.publish(
                    alert_topic(event.rule),
                    event.to_payload(),
                    source=SOURCE,
                    event_id=f"{event.id}:{event.state}",
                    time_ms=event.time_ms,
                )
            except Exception:
                log.exception("rules.publish_failed", rule=event.rule, id=event.id)
