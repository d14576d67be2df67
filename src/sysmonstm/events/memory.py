"""In-process bus: bounded queues per subscription, NATS pattern semantics, queue groups."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

from sysmonstm.errors import BackendError
from sysmonstm.events.bus import Overflow
from sysmonstm.events.envelope import Envelope, make_envelope
from sysmonstm.events.local_queue import LocalQueue
from sysmonstm.events.topics import TopicPattern, validate_topic


class MemorySubscription:
    """One subscriber's bounded queue."""

    def __init__(
        self,
        bus: MemoryBus,
        pattern: TopicPattern,
        group: str | None,
        maxsize: int,
        overflow: Overflow,
    ) -> None:
        self.pattern = pattern.text
        self.compiled = pattern
        self.group = group
        self.overflow = overflow
        self._queue = LocalQueue(maxsize, overflow)
        self._bus = bus

    @property
    def dropped(self) -> int:
        """Envelopes discarded by ``drop_oldest`` so far."""
        return self._queue.dropped

    async def deliver(self, envelope: Envelope) -> None:
        await self._queue.put(envelope)

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self

    async def __anext__(self) -> Envelope:
        return await self._queue.get()

    async def close(self) -> None:
        if self._queue.closed:
            return
        self._bus.detach(self)
        self._queue.close()


class MemoryBus:
    """The embedded bus: one process, no server, no persistence."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._subs: list[MemorySubscription] = []
        self._route_cache: dict[str, list[MemorySubscription]] = {}
        self._rr = itertools.count()
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            await sub.close()

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        source: str = "",
        event_id: str | None = None,
        time_ms: int | None = None,
    ) -> Envelope:
        if self._closed:
            raise BackendError("bus is closed")
        validate_topic(topic)
        envelope = make_envelope(topic, payload, source=source, event_id=event_id, time_ms=time_ms)
        for sub in self._route(topic):
            await sub.deliver(envelope)
        return envelope

    async def subscribe(
        self,
        pattern: str,
        *,
        group: str | None = None,
        durable: str | None = None,
        since_ms: int | None = None,
        maxsize: int = 10_000,
        overflow: Overflow = "block",
    ) -> MemorySubscription:
        if self._closed:
            raise BackendError("bus is closed")
        if durable is not None or since_ms is not None:
            raise BackendError(
                "the in-process bus keeps no history: durable and since_ms need NATS or Redis"
            )
        sub = MemorySubscription(self, TopicPattern.parse(pattern), group, maxsize, overflow)
        self._subs.append(sub)
        self._route_cache.clear()
        return sub

    def detach(self, sub: MemorySubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._route_cache.clear()

    def _route(self, topic: str) -> list[MemorySubscription]:
        """Every plain subscriber that matches, plus one member of each matching group."""
        cached = self._route_cache.get(topic)
        if cached is None:
            cached = [s for s in self._subs if s.compiled.matches(topic)]
            if len(self._route_cache) > 10_000:
                self._route_cache.clear()
            self._route_cache[topic] = cached
        if not any(s.group for s in cached):
            return cached
        plain = [s for s in cached if s.group is None]
        groups: dict[str, list[MemorySubscription]] = {}
        for s in cached:
            if s.group is not None:
                groups.setdefault(s.group, []).append(s)
        turn = next(self._rr)
        return plain + [members[turn % len(members)] for members in groups.values()]
