"""The bounded queue between a bus that pushes envelopes and the one consumer of a subscription.

Used where messages arrive by themselves (the in-process bus, live NATS subscriptions); the
subscription's ``overflow`` decides what a full queue does: ``block`` makes the producer wait
for room, ``drop_oldest`` never waits and discards the oldest queued envelope, counting it in
``dropped``. ``close()`` always gets through to a waiting consumer, even on a full queue.
"""

from __future__ import annotations

import asyncio

from sysmonstm.events.bus import Overflow
from sysmonstm.events.envelope import Envelope

_CLOSED = object()


class LocalQueue:
    """Envelopes for one consumer; ``maxsize`` as ``asyncio.Queue`` takes it (0: unbounded)."""

    def __init__(self, maxsize: int, overflow: Overflow) -> None:
        self.overflow = overflow
        self.dropped = 0
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=maxsize)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def put(self, envelope: Envelope) -> None:
        """Queue ``envelope`` by the overflow policy; after ``close()``, drop it."""
        if self._closed:
            return
        if self.overflow == "drop_oldest":
            while self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(envelope)
        else:
            await self._queue.put(envelope)

    async def get(self) -> Envelope:
        """The next envelope; ``StopAsyncIteration`` once closed and what was queued is read."""
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        assert isinstance(item, Envelope)
        return item

    def close(self) -> None:
        """Take no more envelopes and wake the consumer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        while True:  # make room so the sentinel always fits, then wake the reader
            try:
                self._queue.put_nowait(_CLOSED)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()
