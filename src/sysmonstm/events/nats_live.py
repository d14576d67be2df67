"""Plain NATS subscriptions: the live view of what the streams store.

Each stream republishes every message it stores to ``{prefix}.l.{topic}`` (see
``nats_streams``); a plain subscription is an ordinary NATS subscription there. It costs the
server nothing per subscriber, matches NATS patterns natively (``>`` spans every domain),
keeps stream order and never sees a duplicate the stream refused. Like any live feed it misses
what is published while its connection is down; durable subscriptions do not.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from sysmonstm.events.bus import Overflow
from sysmonstm.events.envelope import Envelope, decode_envelope
from sysmonstm.events.local_queue import LocalQueue
from sysmonstm.events.nats_streams import backend_error

log = structlog.get_logger(__name__)


class NatsLiveSubscription:
    """A bounded queue (``LocalQueue``) fed by a NATS subscription callback.

    ``drop_oldest`` never waits, so the client keeps reading at the server's pace; ``block``
    waits for room, and a consumer that falls further behind than ``maxsize`` plus the
    client's own buffer loses messages (NATS drops them as a slow consumer): use a durable
    subscription when nothing may be lost.
    """

    def __init__(
        self,
        pattern: str,
        maxsize: int,
        overflow: Overflow,
        on_close: Callable[[NatsLiveSubscription], None] | None = None,
    ) -> None:
        self.pattern = pattern
        self._on_close = on_close
        self.overflow = overflow
        self._queue = LocalQueue(max(1, maxsize), overflow)
        self._sub: NatsSubscription | None = None
        self._closed = False

    @property
    def dropped(self) -> int:
        """Messages discarded by ``drop_oldest`` so far."""
        return self._queue.dropped

    async def attach(self, nc: Client, subject: str, flush_s: float) -> None:
        """Subscribe and wait until the server knows (later publishes are seen)."""
        try:
            self._sub = await nc.subscribe(subject, cb=self._on_msg)
            await nc.flush(timeout=max(1, round(flush_s)))
        except (nats.errors.Error, TimeoutError) as exc:
            raise backend_error(f"subscribing to {self.pattern!r}", exc) from exc

    async def _on_msg(self, msg: Msg) -> None:
        if self._closed:
            return
        try:
            envelope = decode_envelope(msg.data)
        except msgspec.DecodeError:
            log.warning("bus.undecodable", subject=msg.subject, size=len(msg.data))
            return
        await self._queue.put(envelope)

    def __aiter__(self) -> NatsLiveSubscription:
        return self

    async def __anext__(self) -> Envelope:
        return await self._queue.get()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except nats.errors.Error as exc:  # the connection is gone: nothing left to undo
                log.debug("bus.unsubscribe_failed", pattern=self.pattern, error=str(exc))
        self._queue.close()
