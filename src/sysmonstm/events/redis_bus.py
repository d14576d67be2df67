"""The Redis Streams bus: ``redis://host:6379/0?prefix=sysmonstm:&maxlen=1000000&...``.

Each domain (first topic token) is one stream, ``{prefix}bus:{domain}``, trimmed to about
``maxlen`` entries. One Lua script per publish skips an event id seen within ``dup_window``,
takes the next id from the bus-wide clock and adds the entry (see ``redis_scripts``).
Publishes are pipelined: a single writer sends everything queued in one round trip, in call
order, and retries a batch that met a connection error until ``publish_timeout`` (a retry is
harmless: the script refuses an id it already stored).

Subscriptions: plain and ``since_ms`` ones read the streams with ``XREAD`` (``redis_read``);
``durable`` and ``group`` ones read a consumer group (``redis_group``) and need a pattern whose
first token names the domain.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import deque
from typing import Any

import redis.exceptions
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from sysmonstm.errors import BackendError
from sysmonstm.events.bus import Overflow, Subscription
from sysmonstm.events.envelope import Envelope, encode_envelope, make_envelope
from sysmonstm.events.redis_config import RedisConfig, parse_redis_url
from sysmonstm.events.redis_group import DURABLE_CONSUMER, RedisGroupSubscription
from sysmonstm.events.redis_read import Reader, RedisStreamSubscription, stop_task
from sysmonstm.events.redis_scripts import PUBLISH_LUA, Keys, before_ms, format_id, parse_id
from sysmonstm.events.server_bus import Backoff, consumer_name, domain_of, history_domain
from sysmonstm.events.topics import TopicPattern, validate_topic

log = structlog.get_logger(__name__)

_WRITE_BATCH = 512
_Job = tuple[list[str], list[bytes | str | int], "asyncio.Future[object]"]


class RedisBus:
    """The bus on Redis Streams (see the module docstring and ``docs/bus.md``)."""

    capabilities: frozenset[str] = frozenset({"durable", "replay", "dedupe"})

    def __init__(self, url: str) -> None:
        self.url = url
        self.config: RedisConfig = parse_redis_url(url)
        self.keys = Keys(self.config.prefix)
        self._client: Redis | None = None
        self._jobs: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.config.max_inflight)
        self._writer: asyncio.Task[None] | None = None
        self._subs: set[Reader] = set()
        self._closed = False

    async def start(self) -> None:
        """Connect and check the server answers; later connection losses are retried."""
        if self._client is not None:
            return
        client: Redis = Redis.from_url(self.config.client_url, decode_responses=False)
        try:
            await client.ping()
        except redis.exceptions.RedisError as exc:
            await client.aclose()
            raise BackendError(f"Redis: cannot connect: {exc}") from exc
        self._client = client
        try:
            self._sha: str = await client.script_load(PUBLISH_LUA)
        except redis.exceptions.RedisError as exc:
            await client.aclose()
            raise BackendError(f"Redis: cannot load the publish script: {exc}") from exc
        self._closed = False
        self._writer = asyncio.create_task(self._write_loop(), name="bus-redis-writer")

    async def close(self) -> None:
        """Close every subscription (acknowledging what was handed over), then disconnect."""
        self._closed = True
        for sub in list(self._subs):
            await sub.close()
        if self._writer is not None:
            self._wake.set()
            await stop_task(self._writer)
            self._writer = None
        for _, _, future in self._jobs:
            if not future.done():
                future.set_exception(BackendError("bus is closed"))
        self._jobs.clear()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _redis(self) -> Redis:
        if self._closed or self._client is None:
            raise BackendError("bus is closed" if self._closed else "bus is not started")
        return self._client

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        source: str = "",
        event_id: str | None = None,
        time_ms: int | None = None,
    ) -> Envelope:
        self._redis()
        validate_topic(topic)
        envelope = make_envelope(topic, payload, source=source, event_id=event_id, time_ms=time_ms)
        token = domain_of(topic)
        keys = [
            self.keys.stream(token),
            self.keys.seen(envelope.id),
            self.keys.clock,
            self.keys.domains,
            self.keys.registry,
        ]
        args: list[bytes | str | int] = [
            envelope.id,
            topic,
            encode_envelope(envelope),
            max(1, int(self.config.dup_window_s * 1000)),
            self.config.maxlen,
            token,
        ]
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.config.publish_timeout_s)
        while True:
            try:
                async with asyncio.timeout_at(backoff.deadline):
                    async with self._slots:
                        future: asyncio.Future[object] = loop.create_future()
                        self._jobs.append((keys, args, future))
                        self._wake.set()
                        await future
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                if backoff.exhausted():
                    raise BackendError(
                        f"Redis: publishing to {topic!r} failed for "
                        f"{self.config.publish_timeout_s:g} s: {exc}"
                    ) from exc
                await backoff.pause()
            except TimeoutError as exc:
                raise BackendError(
                    f"Redis: publishing to {topic!r}: no answer within "
                    f"{self.config.publish_timeout_s:g} s"
                ) from exc
            except redis.exceptions.RedisError as exc:
                raise BackendError(f"Redis: publishing to {topic!r}: {exc}") from exc
            else:
                return envelope

    async def _write_loop(self) -> None:
        """Send every queued publish in one pipeline, in order; settle each one's future."""
        while not self._closed:  # a flag, not a cancel: see RedisGroupSubscription._ack_loop
            await self._wake.wait()
            self._wake.clear()
            while self._jobs and not self._closed:
                batch = [self._jobs.popleft() for _ in range(min(len(self._jobs), _WRITE_BATCH))]
                batch = [job for job in batch if not job[2].done()]  # gave up meanwhile
                if batch:
                    await self._send(batch)

    async def _send(self, batch: list[_Job]) -> None:
        """One round trip for the batch (plain EVALSHA: redis-py's registered scripts would
        add a SCRIPT EXISTS round trip to every pipeline); after a server restart the script
        is loaded again and the batch re-sent."""
        assert self._client is not None
        results: list[Any] = []
        for attempt in range(2):
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for keys, args, _ in batch:
                        pipe.evalsha(self._sha, len(keys), *keys, *args)
                    results = await _execute(pipe)
                if attempt == 0 and any(
                    isinstance(r, redis.exceptions.NoScriptError) for r in results
                ):
                    self._sha = await self._client.script_load(PUBLISH_LUA)
                    continue
            except redis.exceptions.RedisError as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            break
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

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
        client = self._redis()
        TopicPattern.parse(pattern)
        if group is None and durable is None:
            if since_ms is not None:
                position = before_ms(since_ms)
            else:
                position = parse_id(await _command(client.get(self.keys.clock), "0-0"))
            plain = RedisStreamSubscription(
                client, self.keys, pattern, position, maxsize, overflow, self._subs.discard
            )
            self._subs.add(plain)
            return plain
        token = history_domain(pattern, "durable and group")
        if durable is not None:
            name = consumer_name("durable", durable)
        else:
            name = consumer_name("group", group or "")
        if group is None:
            consumer = DURABLE_CONSUMER
        else:
            consumer = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        sub = RedisGroupSubscription(
            client,
            self.keys.stream(token),
            pattern,
            name,
            consumer,
            self.config.ack_wait_s,
            maxsize,
            overflow,
            self._subs.discard,
        )
        start = format_id(before_ms(since_ms)) if since_ms is not None else "$"
        try:
            await sub.open(start)
        except redis.exceptions.RedisError as exc:
            raise BackendError(f"Redis: subscribing to {pattern!r}: {exc}") from exc
        self._subs.add(sub)
        return sub


async def _execute(pipe: Pipeline) -> list[Any]:
    result: list[Any] = await pipe.execute(raise_on_error=False)
    return result


async def _command(call: Any, default: str) -> str:
    try:
        value = await call
    except redis.exceptions.RedisError as exc:
        raise BackendError(f"Redis: {exc}") from exc
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)
