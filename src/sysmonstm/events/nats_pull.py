"""JetStream pull consumers read continuously: durable, queue-group and replay subscriptions.

One lingering pull request at a time asks for as many messages as there is room for
(at most ``PULL_BATCH``); the server pushes each as soon as it is stored, with idle heartbeats
while there is nothing, so a silent request means the connection or the consumer went away and
is re-issued (the consumer re-created from the last stream sequence seen when it is gone).

Durable and group consumers acknowledge explicitly: a message is acknowledged when the next
one is requested, the one handed over last is acknowledged on close, and those fetched but
never handed over are given back (NAK) so another member or the next run gets them at once.
A message that comes again within one subscription (an ack lost in a fail-over) is not handed
over twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext, api

from sysmonstm.events.bus import Overflow
from sysmonstm.events.envelope import Envelope, decode_envelope
from sysmonstm.events.nats_streams import backend_error

log = structlog.get_logger(__name__)

PULL_BATCH = 256
HEARTBEAT_S = 1.0
EXPIRES_S = 15.0
EPHEMERAL_IDLE_S = 120.0  # an abandoned replay consumer is removed by the server after this
_SEEN = 65_536


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """Which consumer a subscription reads: shared and acknowledged (``durable``, the
    durable/group case) or private to this subscription with no acks (a replay)."""

    stream: str
    name: str
    filter_subject: str
    durable: bool
    since_ms: int | None
    ack_wait_s: float

    def config(self, start_seq: int | None = None) -> api.ConsumerConfig:
        c = api.ConsumerConfig(filter_subject=self.filter_subject)
        if start_seq is not None:
            c.deliver_policy, c.opt_start_seq = api.DeliverPolicy.BY_START_SEQUENCE, start_seq
        elif self.since_ms is not None:
            c.deliver_policy = api.DeliverPolicy.BY_START_TIME
            c.opt_start_time = dt.datetime.fromtimestamp(self.since_ms / 1000, dt.UTC)
        else:
            c.deliver_policy = api.DeliverPolicy.NEW
        if self.durable:
            c.durable_name = self.name
            c.ack_policy = api.AckPolicy.EXPLICIT
            c.ack_wait = self.ack_wait_s
            c.max_deliver = -1
        else:
            c.name = self.name
            c.ack_policy = api.AckPolicy.NONE
            c.inactive_threshold = EPHEMERAL_IDLE_S
            c.mem_storage = True
            c.num_replicas = 1
        return c


class NatsPullSubscription:
    """Messages of one JetStream consumer, fetched ahead into a bounded local buffer."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        pattern: str,
        spec: ConsumerSpec,
        maxsize: int,
        overflow: Overflow,
        on_close: Callable[[NatsPullSubscription], None] | None = None,
    ) -> None:
        self.pattern = pattern
        self.spec = spec
        self._on_close = on_close
        self.overflow = overflow
        self.dropped = 0
        self._nc, self._js = nc, js
        self._cap = max(1, min(maxsize, PULL_BATCH))
        self._maxsize = max(1, maxsize)
        self._buffer: deque[tuple[Envelope, Msg]] = deque()
        self._queued: set[int] = set()
        self._seen: deque[int] = deque(maxlen=_SEEN)
        self._seen_set: set[int] = set()
        self._last: Msg | None = None
        self._last_seq = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._activity = asyncio.Event()
        self._open_request = False
        self._outstanding = 0
        self._ended_by: str | None = None
        self._closed = False
        self._sub: NatsSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{spec.stream}.{spec.name}"

    async def open(self) -> None:
        """Create or bind the consumer and start fetching."""
        try:
            await self._bind()
            self._sub = await self._nc.subscribe(self._nc.new_inbox(), cb=self._on_msg)
        except (nats.errors.Error, TimeoutError) as exc:
            raise backend_error(f"consumer {self.spec.name} on {self.spec.stream}", exc) from exc
        self._task = asyncio.create_task(self._pull_loop(), name=f"bus-pull {self.pattern}")

    async def _bind(self, start_seq: int | None = None) -> None:
        spec = self.spec
        if not spec.durable:
            await self._js.add_consumer(spec.stream, spec.config(start_seq))
            return
        try:
            info = await self._js.consumer_info(spec.stream, spec.name)
        except nats.js.errors.NotFoundError:
            try:
                await self._js.add_consumer(spec.stream, spec.config(start_seq))
            except nats.js.errors.BadRequestError:  # another member created it meanwhile
                info = await self._js.consumer_info(spec.stream, spec.name)
            else:
                return
        if info.config.deliver_subject:
            raise nats.js.errors.Error(f"consumer {spec.name} is a push consumer")
        if info.config.filter_subject != spec.filter_subject:
            await self._js.add_consumer(
                spec.stream, info.config.evolve(filter_subject=spec.filter_subject)
            )

    def poke(self) -> None:
        """The connection came back: forget the pull request in flight, ask again now."""
        self._open_request = False
        self._activity.set()

    async def _pull_loop(self) -> None:
        while not self._closed:
            if self.overflow == "block":
                while len(self._buffer) > self._cap // 2:
                    self._room.clear()
                    await self._room.wait()
            credit = self._cap if self.overflow == "drop_oldest" else self._cap - len(self._buffer)
            request = {
                "batch": credit,
                "expires": int(EXPIRES_S * 1e9),
                "idle_heartbeat": int(HEARTBEAT_S * 1e9),
            }
            self._open_request, self._outstanding, self._ended_by = True, credit, None
            assert self._sub is not None
            try:
                await self._nc.publish(self._next, json.dumps(request).encode(), self._sub.subject)
            except nats.errors.Error:
                await asyncio.sleep(HEARTBEAT_S)
                continue
            while self._open_request and not self._closed:
                self._activity.clear()
                try:
                    async with asyncio.timeout(3 * HEARTBEAT_S):
                        await self._activity.wait()
                except TimeoutError:
                    await self._recover()
                    break
            if self._ended_by not in (None, "408") and self._outstanding == credit:
                await asyncio.sleep(HEARTBEAT_S / 4)  # refused at once (409): do not spin

    async def _recover(self) -> None:
        """No heartbeat: wait for the connection, then make sure the consumer still exists."""
        while not self._closed and not self._nc.is_connected:  # noqa: ASYNC110 - nats-py offers no event
            await asyncio.sleep(0.1)
        try:
            await self._js.consumer_info(self.spec.stream, self.spec.name)
        except nats.js.errors.NotFoundError:
            start = self._last_seq + 1 if self._last_seq else None
            log.warning("bus.consumer_recreated", consumer=self.spec.name, start_seq=start)
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._bind(start)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("bus.consumer_unreachable", consumer=self.spec.name, error=str(exc))

    async def _on_msg(self, msg: Msg) -> None:
        self._activity.set()
        status = msg.headers.get("Status") if msg.headers else None
        if status is not None:
            if status != "100":  # 404/408/409: this pull request is over
                self._open_request, self._ended_by = False, status
            return
        self._outstanding -= 1
        if self._outstanding <= 0:
            self._open_request = False
        try:
            seq = msg.metadata.sequence.stream
        except nats.errors.Error:
            return
        if seq in self._seen_set:
            handed = self._last is not None and self._last.metadata.sequence.stream == seq
            if seq not in self._queued and not handed and self.spec.durable:
                await msg.ack()  # handed over before; only its ack was lost
            return
        try:
            envelope = decode_envelope(msg.data)
        except msgspec.DecodeError:
            log.warning("bus.undecodable", subject=msg.subject, seq=seq)
            if self.spec.durable:
                await msg.term()
            return
        self._remember(seq)
        self._last_seq = max(self._last_seq, seq)
        self._buffer.append((envelope, msg))
        self._queued.add(seq)
        while self.overflow == "drop_oldest" and len(self._buffer) > self._maxsize:
            _, old = self._buffer.popleft()
            self._queued.discard(old.metadata.sequence.stream)
            self.dropped += 1
            if self.spec.durable:
                await old.ack()
        self._ready.set()

    def _remember(self, seq: int) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(seq)
        self._seen_set.add(seq)

    def __aiter__(self) -> NatsPullSubscription:
        return self

    async def __anext__(self) -> Envelope:
        await self._ack_last()
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        envelope, msg = self._buffer.popleft()
        self._queued.discard(msg.metadata.sequence.stream)
        if self.spec.durable:
            self._last = msg
        if len(self._buffer) <= self._cap // 2:
            self._room.set()
        return envelope

    async def _ack_last(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            try:
                await last.ack()
            except nats.errors.Error as exc:  # it will come again: at least once
                log.warning("bus.ack_failed", consumer=self.spec.name, error=str(exc))

    async def close(self) -> None:
        """Stop fetching; acknowledge what was handed over, give back what was not."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)
        self._ready.set()
        self._room.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending, self._buffer = list(self._buffer), deque()
        try:
            if self._sub is not None:
                await self._sub.unsubscribe()
            await self._ack_last()
            if self.spec.durable and pending:
                # Asking for the consumer's info makes the server drop our pull request (its
                # inbox is gone); a NAK'd message would otherwise be tried there first and come
                # back late or out of order.
                await self._nc.flush()
                await self._js.consumer_info(self.spec.stream, self.spec.name)
                for _, msg in pending:
                    await msg.nak()
            if not self.spec.durable:
                await self._js.delete_consumer(self.spec.stream, self.spec.name)
            await self._nc.flush()
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("bus.close_incomplete", consumer=self.spec.name, error=str(exc))
