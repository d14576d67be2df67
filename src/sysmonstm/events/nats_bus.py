"""The NATS JetStream bus: ``nats://host:4222[,host2:4222]?stream_prefix=SYSMONSTM&...``.

Publishing stores each envelope in its domain's stream with ``Nats-Msg-Id`` set to the
envelope id, so a publish retried after a lost acknowledgement (or a replayed event) is stored
once. Publishes are pipelined: each sends at once and then waits for its own PubAck, so
concurrent publishers share round trips (up to ``max_inflight`` in flight); a publish that gets
no acknowledgement is sent again until ``publish_timeout``, across reconnects and fail-overs.

Subscriptions: plain ones are live NATS subscriptions on what the streams republish
(``nats_live``); ``durable``, ``group`` and ``since_ms`` ones read a JetStream consumer
(``nats_pull``) and therefore need a pattern whose first token names the domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from typing import Any

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.events.bus import Overflow, Subscription
from sysmonstm.events.envelope import Envelope, encode_envelope, make_envelope
from sysmonstm.events.nats_config import NatsConfig, parse_nats_url
from sysmonstm.events.nats_live import NatsLiveSubscription
from sysmonstm.events.nats_pull import ConsumerSpec, NatsPullSubscription
from sysmonstm.events.nats_streams import Streams, backend_error, live_subject, stored_subject
from sysmonstm.events.server_bus import Backoff, consumer_name, domain_of, history_domain
from sysmonstm.events.topics import TopicPattern, validate_topic

log = structlog.get_logger(__name__)

_RETRYABLE = (
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.TooManyStalledMsgsError,
)


class NatsBus:
    """The bus on NATS JetStream (see the module docstring and ``docs/bus.md``)."""

    capabilities: frozenset[str] = frozenset({"durable", "replay", "dedupe"})

    def __init__(self, url: str) -> None:
        self.url = url
        self.config: NatsConfig = parse_nats_url(url)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._streams: Streams | None = None
        self._pulls: set[NatsPullSubscription] = set()
        self._subs: set[NatsLiveSubscription | NatsPullSubscription] = set()
        self._closed = False
        self._first = asyncio.Lock()
        self._queued_first = 0
        self._replies_ready = False
        self._errors = 0

    async def start(self) -> None:
        """Connect (once); reconnects are automatic and endless afterwards."""
        if self._nc is not None:
            return
        c = self.config
        nc = Client()
        try:
            async with asyncio.timeout(max(c.timeout_s, 2.0) * len(c.servers)):
                await nc.connect(
                    servers=list(c.servers),
                    name=c.name,
                    user=c.user,
                    password=c.password,
                    token=c.token,
                    user_credentials=c.creds,
                    tls=self._tls_context(),
                    connect_timeout=max(1, round(c.timeout_s)),
                    reconnect_time_wait=0.25,  # type: ignore[arg-type]  # seconds
                    max_reconnect_attempts=-1,
                    ping_interval=10,
                    max_outstanding_pings=3,
                    pending_size=32 * 1024 * 1024,
                    error_cb=self._on_error,
                    reconnected_cb=self._on_reconnected,
                    disconnected_cb=self._on_disconnected,
                )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            with contextlib.suppress(nats.errors.Error, OSError):
                await nc.close()
            where = ", ".join(c.servers)
            raise BackendError(f"NATS: cannot connect to {where}: {exc!r}") from exc
        self._nc = nc
        js = nc.jetstream(timeout=c.timeout_s, publish_async_max_pending=c.max_inflight)
        self._js = js
        self._streams = Streams(js, c)
        self._closed = False

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        return ssl.create_default_context(cafile=self.config.tls_ca)

    async def _on_error(self, exc: Exception) -> None:
        # While a server is away every reconnect attempt fails: say so once in a hundred.
        level = logging.WARNING if self._errors % 100 == 0 else logging.DEBUG
        self._errors += 1
        log.log(level, "bus.nats_error", error=repr(exc), count=self._errors)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            log.warning("bus.nats_disconnected")

    async def _on_reconnected(self) -> None:
        self._errors = 0
        url = self._nc.connected_url.netloc if self._nc and self._nc.connected_url else "?"
        log.info("bus.nats_reconnected", server=url)
        for pull in list(self._pulls):
            pull.poke()

    async def close(self) -> None:
        """Close every subscription (acknowledging what was handed over), then drain."""
        self._closed = True
        for sub in list(self._subs):
            await sub.close()
        self._subs.clear()
        self._pulls.clear()
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                if nc.is_connected:
                    await nc.flush(timeout=max(1, round(self.config.timeout_s)))
                await nc.close()

    def _client(self) -> tuple[Client, JetStreamContext, Streams]:
        if self._closed or self._nc is None or self._js is None or self._streams is None:
            raise BackendError("bus is closed" if self._closed else "bus is not started")
        return self._nc, self._js, self._streams

    def _forget(self, sub: NatsLiveSubscription | NatsPullSubscription) -> None:
        self._subs.discard(sub)
        if isinstance(sub, NatsPullSubscription):
            self._pulls.discard(sub)

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        source: str = "",
        event_id: str | None = None,
        time_ms: int | None = None,
    ) -> Envelope:
        nc, js, streams = self._client()
        validate_topic(topic)
        envelope = make_envelope(topic, payload, source=source, event_id=event_id, time_ms=time_ms)
        data = encode_envelope(envelope)
        if len(data) > nc.max_payload:
            raise InvalidInputError(
                f"event of {len(data)} bytes exceeds the server's max_payload ({nc.max_payload})",
                code="RESOURCE_EXHAUSTED",
            )
        token = domain_of(topic)
        subject = stored_subject(self.config.stream_prefix, topic)
        backoff = Backoff(self.config.publish_timeout_s)
        while True:
            left = backoff.left()
            try:
                if not streams.ready(token):
                    await streams.ensure(token)
                async with asyncio.timeout(min(self.config.timeout_s, max(left, 0.001))):
                    # No wait_stall: this timeout also bounds the wait for an in-flight slot
                    # (a wait_stall costs a task per publish). A PubAck that never comes is
                    # cancelled here, which frees its slot.
                    ack = await self._send(js, subject, data, envelope.id)
                    await ack
            except _RETRYABLE as exc:
                if isinstance(exc, nats.js.errors.NoStreamResponseError):
                    streams.forget(token)
                if backoff.exhausted():
                    raise backend_error(
                        f"publishing to {topic!r} (gave up after "
                        f"{self.config.publish_timeout_s:g} s)",
                        exc,
                    ) from exc
                await backoff.pause()
            except BackendError as exc:
                if backoff.exhausted() or not _transient(exc):
                    raise
                streams.forget(token)
                await backoff.pause()
            except nats.errors.Error as exc:
                raise backend_error(f"publishing to {topic!r}", exc) from exc
            else:
                return envelope

    async def _send(
        self, js: JetStreamContext, subject: str, data: bytes, msg_id: str
    ) -> asyncio.Future[api.PubAck]:
        """Send one message and return the future of its PubAck, in call order.

        nats-py sets up its reply inbox inside the first ``publish_async``, with an await in
        the middle: publishes queue behind that one until it is done, so none overtakes it.
        """
        headers = {"Nats-Msg-Id": msg_id}
        if self._replies_ready and not self._queued_first:
            return await js.publish_async(subject, data, headers=headers)
        self._queued_first += 1
        try:
            async with self._first:
                ack = await js.publish_async(subject, data, headers=headers)
                self._replies_ready = True
                return ack
        finally:
            self._queued_first -= 1

    async def subscribe(
        self,
        pattern: str,
        *,
        group: str | None = None,
        durable: str | None = None,
        since_ms: int | None = None,
        maxsize: int = 10_000,
        overflow: Overflow = "block",
    ) -> Subscription:
        nc, js, streams = self._client()
        TopicPattern.parse(pattern)
        prefix = self.config.stream_prefix
        if group is None and durable is None and since_ms is None:
            live = NatsLiveSubscription(pattern, maxsize, overflow, self._forget)
            await live.attach(nc, live_subject(prefix, pattern), self.config.timeout_s)
            self._subs.add(live)
            return live
        token = history_domain(pattern, "durable, group and since_ms")
        shared = durable is not None or group is not None
        if durable is not None:
            name = consumer_name("durable", durable)
        elif group is not None:
            name = consumer_name("group", group)
        else:
            name = f"replay-{uuid.uuid4().hex[:16]}"
        spec = ConsumerSpec(
            stream=await streams.ensure(token),
            name=name,
            filter_subject=stored_subject(prefix, pattern),
            durable=shared,
            since_ms=since_ms,
            ack_wait_s=self.config.ack_wait_s,
        )
        pull = NatsPullSubscription(nc, js, pattern, spec, maxsize, overflow, self._forget)
        await pull.open()
        self._subs.add(pull)
        self._pulls.add(pull)
        return pull


def _transient(exc: BackendError) -> bool:
    """Preparing a stream failed in a way that may pass (a leader election, a timeout)."""
    cause = exc.__cause__
    return isinstance(cause, _RETRYABLE)
