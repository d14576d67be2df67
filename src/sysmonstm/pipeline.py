"""The aggregator's generic flow: validate → normalize → dedupe → batch → store → publish.

Domain-neutral: a domain supplies ``Stages`` (how to validate and normalize its batches, who
sent them and with which sequence, how to store and publish them). Queues are bounded: when
the store is slow the queue fills, ``submit`` waits, the gRPC handler stops reading, and HTTP/2
flow control pushes back on the sender. A failing store is retried with backoff, never
dropped; the sender keeps its batches until they are acknowledged.

When batches are published is the domain's choice (``PipelineOptions.publish``): once stored
(the default: what is published is durable, and can carry what the store decided, as the
payment hub's decisions do), or as soon as a batch is accepted, i.e. valid, new and queued
(a live view then never waits for the warm tier: its batching, its commits, its rollups). A
batch published on acceptance is stored afterwards or, if the aggregator dies first, sent
again by its source and published again: such a domain gives each batch an event id of its
own (source and sequence), so buses with dedupe and subscribers that skip ids seen before
take it once.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import structlog

from sysmonstm.errors import InvalidInputError, SysmonstmError

log = structlog.get_logger(__name__)

B = TypeVar("B")
B_co = TypeVar("B_co", covariant=True)


class Stages(Protocol[B]):
    """What a domain plugs into the pipeline."""

    async def validate(self, raw: object) -> B:
        """A typed batch from wire input; raises ``InvalidInputError`` and keeps nothing."""
        ...

    def normalize(self, batch: B) -> B: ...

    def identity(self, batch: B) -> tuple[str, int]:
        """``(source key, sequence)``; sequences only grow per source."""
        ...

    def size(self, batch: B) -> int:
        """Items in a batch (samples, transactions): what ``flush_items`` counts."""
        ...

    async def stored_through(self, source: str) -> int:
        """Highest sequence durably stored for ``source`` (0 if none)."""
        ...

    async def store(self, batches: Sequence[B]) -> Sequence[B]:
        """Store atomically and idempotently; return the batches that were new."""
        ...

    async def publish(self, batches: Sequence[B]) -> None: ...


class PublishPoint(enum.Enum):
    """When the pipeline hands batches to ``Stages.publish``."""

    STORED = "stored"  # after the durable write, the batches that were new
    ACCEPTED = "accepted"  # each batch once valid, new and queued, before it is stored


class Outcome(enum.Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: Outcome
    source: str
    sequence: int


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    queue_batches: int = 256
    flush_items: int = 50_000
    flush_age_s: float = 0.02
    retry_base_s: float = 0.1
    retry_cap_s: float = 5.0
    publish: PublishPoint = PublishPoint.STORED


class Pipeline(Generic[B]):
    """One ordered writer fed by many streams."""

    def __init__(self, stages: Stages[B], options: PipelineOptions | None = None) -> None:
        self.stages = stages
        self.options = options or PipelineOptions()
        self._queue: asyncio.Queue[B] = asyncio.Queue(self.options.queue_batches)
        self._stored: dict[str, int] = {}
        self._accepted: dict[str, int] = {}
        self._loading: dict[str, asyncio.Future[int]] = {}
        self._moved: dict[str, asyncio.Event] = {}  # per source: its watermark moved
        self._stopping = False
        self.stats = {"batches": 0, "items": 0, "duplicates": 0, "flushes": 0, "retries": 0}

    async def submit(self, raw: object, *, expect_source: str | None = None) -> Admission:
        """Validate, normalize and dedupe one batch, then queue it (waits while full); with
        ``PublishPoint.ACCEPTED``, publish it then.

        ``expect_source`` (a stream's first source) refuses a batch from another source.
        """
        batch = self.stages.normalize(await self.stages.validate(raw))
        source, seq = self.stages.identity(batch)
        if expect_source is not None and source != expect_source:
            raise InvalidInputError(
                f"one stream carries one source: {source!r} after {expect_source!r}"
            )
        stored = await self.stored_through(source)
        if seq <= max(stored, self._accepted.get(source, 0)):
            self.stats["duplicates"] += 1
            return Admission(Outcome.DUPLICATE, source, seq)
        before = self._accepted.get(source, 0)
        self._accepted[source] = seq
        try:
            await self._queue.put(batch)
        except BaseException:  # cancelled while the queue was full: the batch was not taken
            if self._accepted.get(source) == seq:
                self._accepted[source] = before  # so its replay is not mistaken for a duplicate
            raise
        if self.options.publish is PublishPoint.ACCEPTED:
            await self._publish([batch])
        return Admission(Outcome.QUEUED, source, seq)

    async def stored_through(self, source: str) -> int:
        """The durable watermark of ``source`` (asked of the store once, then tracked)."""
        known = self._stored.get(source)
        if known is not None:
            return known
        pending = self._loading.get(source)
        if pending is None:
            pending = asyncio.ensure_future(self.stages.stored_through(source))
            self._loading[source] = pending
        try:
            mark = await asyncio.shield(pending)
        finally:
            self._loading.pop(source, None)
        return self._stored.setdefault(source, mark)

    def accepted_through(self, source: str) -> int:
        """The highest sequence queued or stored for ``source``."""
        return max(self._accepted.get(source, 0), self._stored.get(source, 0))

    async def wait_stored(self, source: str, above: int) -> int:
        """Wait until ``source``'s watermark exceeds ``above``; return it."""
        while (mark := self._stored.get(source, 0)) <= above:
            event = self._moved.get(source)
            if event is None:
                event = self._moved[source] = asyncio.Event()
            await event.wait()
        return mark

    async def run(self) -> None:
        """Write queued batches until ``stop`` has been called and the queue is empty."""
        while not (self._stopping and self._queue.empty()):
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=0.5)
            except TimeoutError:
                continue
            await self._flush(await self._gather(first))

    async def _gather(self, first: B) -> list[B]:
        group = [first]
        items = self.stages.size(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.flush_age_s
        while items < self.options.flush_items:
            try:
                nxt = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0 or self._stopping:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            group.append(nxt)
            items += self.stages.size(nxt)
        return group

    async def _flush(self, group: list[B]) -> None:
        stored = await self._retrying(lambda: self.stages.store(group))
        moved: set[str] = set()
        for batch in group:
            source, seq = self.stages.identity(batch)
            if seq > self._stored.get(source, 0):
                self._stored[source] = seq
                moved.add(source)
        self.stats["flushes"] += 1
        self.stats["batches"] += len(stored)
        self.stats["items"] += sum(self.stages.size(b) for b in stored)
        for source in moved:  # wake only the streams whose watermark moved
            event = self._moved.pop(source, None)
            if event is not None:
                event.set()
        if stored and self.options.publish is PublishPoint.STORED:
            await self._publish(stored)

    async def _publish(self, batches: Sequence[B]) -> None:
        try:
            await self.stages.publish(batches)
        except SysmonstmError as exc:  # storing is what counts; a live view can miss one
            log.error("publish failed", error=str(exc), batches=len(batches))

    async def _retrying(self, op: Callable[[], Awaitable[Sequence[B]]]) -> Sequence[B]:
        delay = self.options.retry_base_s
        while True:
            try:
                return await op()
            except SysmonstmError as exc:
                self.stats["retries"] += 1
                log.warning(
                    "store failed; holding the batch and retrying",
                    error=str(exc),
                    retry_in_s=round(delay, 2),
                    queued=self._queue.qsize(),
                )
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, self.options.retry_cap_s)

    def stop(self) -> None:
        """Let ``run`` return once what is queued has been written."""
        self._stopping = True

    @property
    def queued(self) -> int:
        return self._queue.qsize()
