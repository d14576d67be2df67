"""Reading Redis streams for subscriptions: the common reader, and plain/replay subscriptions.

Subscriptions read when asked: ``__anext__`` hands over what an earlier read brought, else reads
(``XREAD BLOCK``) itself. Nothing runs in the background, a slow consumer costs the server
nothing, and the streams hold what it has not read yet (up to ``maxlen``). Connection errors are
retried with a backoff for as long as the subscription is open; other Redis errors end the
iteration with ``BackendError``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.exceptions
import structlog
from redis.asyncio import Redis

from sysmonstm.errors import BackendError
from sysmonstm.events.bus import Overflow
from sysmonstm.events.envelope import Envelope, decode_envelope
from sysmonstm.events.redis_scripts import Keys, format_id, parse_id
from sysmonstm.events.server_bus import Backoff
from sysmonstm.events.topics import TopicPattern

log = structlog.get_logger(__name__)

READ_BATCH = 256
BLOCK_MS = 2000
Position = tuple[int, int]
Entry = tuple[bytes, dict[bytes, bytes]]
StreamReply = list[tuple[bytes, list[Entry]]]


def envelope_of(fields: dict[bytes, bytes], pattern: TopicPattern) -> Envelope | None:
    """The envelope in a stream entry if its topic matches ``pattern``."""
    topic = fields.get(b"topic")
    if topic is None or not pattern.matches(topic.decode()):
        return None
    try:
        return decode_envelope(fields[b"data"])
    except (KeyError, msgspec.DecodeError):
        log.warning("bus.undecodable", topic=topic.decode(errors="replace"))
        return None


class Reader:
    """Hand over buffered envelopes, read more when empty, stop on ``close()``."""

    def __init__(self, client: Redis, pattern: str, on_close: Callable[[Any], None] | None) -> None:
        self.pattern = pattern
        self.compiled = TopicPattern.parse(pattern)
        self._client = client
        self._on_close = on_close
        self._closed = False
        self._reading: asyncio.Future[None] | None = None

    def __aiter__(self) -> Reader:
        return self

    def _has_items(self) -> bool:
        raise NotImplementedError

    def _pop(self) -> Envelope:
        raise NotImplementedError

    async def _fill(self) -> None:
        raise NotImplementedError

    async def _before_next(self) -> None:
        """Runs when the consumer asks for the next message (acks go here)."""

    async def __anext__(self) -> Envelope:
        await self._before_next()
        backoff: Backoff | None = None
        while not self._has_items():
            if self._closed:
                raise StopAsyncIteration
            try:
                await self._interruptible(self._fill())
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                me = asyncio.current_task()
                if me is not None and me.cancelling():  # redis-py turned our cancel into this
                    raise asyncio.CancelledError from exc
                if self._closed:
                    raise StopAsyncIteration from exc
                log.warning("bus.redis_read_retry", pattern=self.pattern, error=str(exc))
                backoff = backoff or Backoff()
                await self._interruptible(backoff.pause())
            except redis.exceptions.RedisError as exc:
                raise BackendError(f"Redis: reading {self.pattern!r}: {exc}") from exc
        return self._pop()

    async def _interruptible(self, work: Awaitable[None]) -> None:
        """Await ``work`` unless ``close()`` comes first (then return quietly)."""
        task = asyncio.ensure_future(work)
        self._reading = task
        try:
            await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if not self._closed or (me is not None and me.cancelling()):
                task.cancel()
                raise
        finally:
            self._reading = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)
        if self._reading is not None:
            self._reading.cancel()
        await self._finish()

    async def _finish(self) -> None:
        """What a subscription does on close after reading stopped."""


class RedisStreamSubscription(Reader):
    """Plain and replay subscriptions: ``XREAD`` from a position, merged across domains.

    Entry ids come from one clock, so one position (``start``) is valid in every stream and
    entries of several streams merge into publish order. A pattern whose first token is a
    wildcard follows the domain registry, which also wakes it when a new domain appears.
    ``drop_oldest``: when the consumer asks and nothing is buffered, the reader jumps to the
    newest ``maxsize`` matching entries, skipping older ones.
    """

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        pattern: str,
        start: Position,
        maxsize: int,
        overflow: Overflow,
        on_close: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__(client, pattern, on_close)
        self._keys = keys
        self._maxsize = max(1, maxsize)
        self._overflow = overflow
        token = pattern.split(".", 1)[0]
        self._all = token in ("*", ">")
        self._start = start
        self._positions: dict[str, Position] = {} if self._all else {keys.stream(token): start}
        self._registry_pos = start
        self._loaded = not self._all
        self._buffer: deque[Envelope] = deque()

    def _has_items(self) -> bool:
        return bool(self._buffer)

    def _pop(self) -> Envelope:
        return self._buffer.popleft()

    async def _fill(self) -> None:
        if not self._loaded:
            registry: list[Entry] = await self._client.xrange(self._keys.registry)  # type: ignore[assignment]
            for entry_id, fields in registry:
                self._add_domain(fields, self._start)
                self._registry_pos = max(self._registry_pos, parse_id(entry_id))
            self._loaded = True
        if self._overflow == "drop_oldest" and await self._jump():
            return
        streams = {key: format_id(pos) for key, pos in self._positions.items()}
        if self._all:
            streams[self._keys.registry] = format_id(self._registry_pos)
        count = min(READ_BATCH, self._maxsize)
        reply: StreamReply = await self._client.xread(streams, count=count, block=BLOCK_MS)  # type: ignore[arg-type, assignment]
        self._absorb(reply or [], count)
        while len(self._buffer) > self._maxsize:
            self._buffer.popleft()

    def _add_domain(self, fields: dict[bytes, bytes], position: Position) -> None:
        token = fields.get(b"token")
        if token is not None:
            self._positions.setdefault(self._keys.stream(token.decode()), position)

    def _absorb(self, reply: StreamReply, count: int) -> None:
        cutoff: Position | None = None
        entries: list[tuple[Position, str, dict[bytes, bytes]]] = []
        domains: list[tuple[Position, dict[bytes, bytes]]] = []
        for raw_key, items in reply:
            key = raw_key.decode()
            if len(items) >= count:  # more waiting here: nothing newer is safe to hand over yet
                cutoff = _min(cutoff, parse_id(items[-1][0]))
            for entry_id, fields in items:
                if key == self._keys.registry:
                    cutoff = _min(cutoff, parse_id(entry_id))
                    domains.append((parse_id(entry_id), fields))
                else:
                    entries.append((parse_id(entry_id), key, fields))
        entries.sort(key=lambda e: e[0])
        for pos, key, fields in entries:
            if cutoff is not None and pos > cutoff:
                break
            self._positions[key] = max(self._positions.get(key, pos), pos)
            envelope = envelope_of(fields, self.compiled)
            if envelope is not None:
                self._buffer.append(envelope)
        for pos, fields in domains:
            if cutoff is None or pos <= cutoff:
                self._add_domain(fields, pos)
                self._registry_pos = max(self._registry_pos, pos)

    async def _jump(self) -> bool:
        """Skip to the newest ``maxsize`` matching entries (``drop_oldest``); found any?"""
        if self._all:
            since = format_id(self._registry_pos)
            found: StreamReply = await self._client.xread({self._keys.registry: since})  # type: ignore[assignment]
            self._absorb(found or [], 1 << 30)
        if not self._positions:
            return False
        window = min(self._maxsize * 4, 10_000)
        async with self._client.pipeline(transaction=True) as pipe:
            keys = list(self._positions)
            for key in keys:
                pipe.xrevrange(key, "+", f"({format_id(self._positions[key])}", count=window)
            replies: list[list[Entry]] = await pipe.execute()
        newest: Position | None = None
        matching: list[tuple[Position, Envelope]] = []
        for items in replies:
            for entry_id, fields in items:
                pos = parse_id(entry_id)
                newest = pos if newest is None else max(newest, pos)
                envelope = envelope_of(fields, self.compiled)
                if envelope is not None:
                    matching.append((pos, envelope))
        if newest is None:
            return False
        for key in keys:  # one snapshot (MULTI): nothing older than ``newest`` can still come
            self._positions[key] = max(self._positions[key], newest)
        matching.sort(key=lambda f: f[0])
        self._buffer.extend(envelope for _, envelope in matching[-self._maxsize :])
        return bool(matching)


def _min(a: Position | None, b: Position) -> Position:
    return b if a is None else min(a, b)


async def stop_task(task: asyncio.Task[None], grace: float = 5.0) -> None:
    """Wait for a loop that saw its stop flag; cancel it only if it does not end in time."""
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=grace)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("bus.task_failed", task=task.get_name(), error=repr(task.exception()))


async def best_effort(work: Awaitable[Any], what: str) -> None:
    """On close: log a Redis failure instead of raising it (delivery stays at least once)."""
    try:
        await work
    except redis.exceptions.RedisError as exc:
        log.info("bus.close_incomplete", what=what, error=str(exc))
