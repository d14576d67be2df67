"""Durable and queue-group subscriptions on Redis consumer groups.

The consumer group (named by ``durable``, else by ``group``) holds the position, so it survives
restarts. A durable subscription without a group reads as the group's one fixed consumer and so
first gets back, at once, what it was handed and never acknowledged before. Group members each
read as their own consumer; entries a member left unacknowledged for ``ack_wait`` (it died) are
claimed by another with ``XAUTOCLAIM``. An entry is acknowledged when the next one is requested
(in the background, batched); the last one handed over is acknowledged on close, and entries
fetched but never handed over are marked long idle so another member claims them at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.exceptions
import structlog
from redis.asyncio import Redis

from sysmonstm.events.bus import Overflow
from sysmonstm.events.envelope import Envelope
from sysmonstm.events.redis_read import (
    BLOCK_MS,
    READ_BATCH,
    Entry,
    Reader,
    StreamReply,
    best_effort,
    envelope_of,
    stop_task,
)
from sysmonstm.events.redis_scripts import format_id, parse_id

log = structlog.get_logger(__name__)

DURABLE_CONSUMER = "durable"
_SEEN = 65_536
_LONG_IDLE_MS = 10 * 365 * 86_400_000


class RedisGroupSubscription(Reader):
    """One consumer of a consumer group on one domain stream."""

    def __init__(
        self,
        client: Redis,
        stream: str,
        pattern: str,
        group: str,
        consumer: str,
        ack_wait_s: float,
        maxsize: int,
        overflow: Overflow,
        on_close: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__(client, pattern, on_close)
        self.stream, self.group, self.consumer = stream, group, consumer
        self._ack_wait_ms = max(1, int(ack_wait_s * 1000))
        self._maxsize = max(1, maxsize)
        self._overflow = overflow
        self._history = consumer == DURABLE_CONSUMER  # its own pending entries come first
        self._history_pos = "0-0"
        self._next_claim = 0.0
        self._buffer: deque[tuple[bytes, Envelope]] = deque()
        self._queued: set[bytes] = set()
        self._seen: deque[bytes] = deque(maxlen=_SEEN)
        self._seen_set: set[bytes] = set()
        self._last: bytes | None = None
        self._acks: list[bytes] = []
        self._ack_wake = asyncio.Event()
        self._ack_task: asyncio.Task[None] | None = None
        self._start_id = "$"
        self._position = (0, 0)

    async def open(self, start_id: str) -> None:
        """Create the group if it is new (reading from ``start_id``), then start acking."""
        self._start_id = start_id
        await self._create_group()
        self._ack_task = asyncio.create_task(self._ack_loop(), name=f"bus-ack {self.group}")

    async def _create_group(self) -> None:
        try:
            await self._client.xgroup_create(self.stream, self.group, self._start_id, mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _has_items(self) -> bool:
        return bool(self._buffer)

    def _pop(self) -> Envelope:
        entry_id, envelope = self._buffer.popleft()
        self._queued.discard(entry_id)
        self._last = entry_id
        return envelope

    async def _before_next(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            self._ack(last)

    def _ack(self, entry_id: bytes) -> None:
        self._acks.append(entry_id)
        self._ack_wake.set()

    async def _ack_loop(self) -> None:
        # Stopped by ``_closed``, not by cancelling: redis-py may turn a cancellation in the
        # middle of a command into a ConnectionError, which would keep the loop alive.
        while not self._closed:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            ids, self._acks = self._acks, []
            if not ids:
                continue
            try:
                await self._client.xack(self.stream, self.group, *ids)
            except redis.exceptions.RedisError as exc:
                log.warning("bus.ack_retry", group=self.group, error=str(exc))
                self._acks[:0] = ids
                await asyncio.sleep(0.5)
                self._ack_wake.set()

    async def _fill(self) -> None:
        count = min(READ_BATCH, self._maxsize)
        try:
            await self._read(count)
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            if self._position != (0, 0):  # carry on after the last entry seen
                self._start_id = format_id(self._position)
            log.warning("bus.group_recreated", group=self.group, start=self._start_id)
            await self._create_group()

    async def _read(self, count: int) -> None:
        if self._history:
            history: StreamReply = await self._client.xreadgroup(  # type: ignore[assignment]
                self.group, self.consumer, {self.stream: self._history_pos}, count=count
            )
            items = history[0][1] if history else []
            if items:
                self._history_pos = items[-1][0].decode()
                self._absorb(items)
                return
            self._history = False
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_claim:
            self._next_claim = loop.time() + max(self._ack_wait_ms / 2000, 0.5)
            claimed: list[Any] = await self._client.xautoclaim(
                self.stream, self.group, self.consumer, self._ack_wait_ms, "0-0", count=count
            )
            if claimed[1]:
                self._absorb(claimed[1])
                return
        block = int(min(BLOCK_MS, max(1.0, (self._next_claim - loop.time()) * 1000)))
        reply: StreamReply = await self._client.xreadgroup(  # type: ignore[assignment]
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block
        )
        self._absorb(reply[0][1] if reply else [])

    def _absorb(self, items: list[Entry]) -> None:
        for entry_id, fields in items:
            self._position = max(self._position, parse_id(entry_id))
            if entry_id in self._seen_set:
                if entry_id not in self._queued and entry_id != self._last:
                    self._ack(entry_id)  # handed over before; only its ack was missing
                continue
            envelope = envelope_of(fields, self.compiled) if fields else None
            if envelope is None:  # trimmed away, or not for this pattern: nothing to hand over
                self._ack(entry_id)
                continue
            self._remember(entry_id)
            self._buffer.append((entry_id, envelope))
            self._queued.add(entry_id)
        while self._overflow == "drop_oldest" and len(self._buffer) > self._maxsize:
            entry_id, _ = self._buffer.popleft()
            self._queued.discard(entry_id)
            self._ack(entry_id)

    def _remember(self, entry_id: bytes) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(entry_id)
        self._seen_set.add(entry_id)

    async def _finish(self) -> None:
        if self._last is not None:
            self._acks.append(self._last)
            self._last = None
        if self._ack_task is not None:
            self._ack_wake.set()
            await stop_task(self._ack_task)
        if self._acks:
            await best_effort(self._client.xack(self.stream, self.group, *self._acks), "ack")
            self._acks = []
        left: list[bytes | str | int | memoryview[int]] = [entry_id for entry_id, _ in self._buffer]
        self._buffer.clear()
        if self.consumer == DURABLE_CONSUMER:
            return  # the next run reads its own pending entries first
        if left:  # long idle: the next XAUTOCLAIM of any member takes them
            await best_effort(
                self._client.xclaim(
                    self.stream, self.group, self.consumer, 0, left, idle=_LONG_IDLE_MS, justid=True
                ),
                "release",
            )
        else:
            await best_effort(self._drop_consumer_if_idle(), "consumer cleanup")

    async def _drop_consumer_if_idle(self) -> None:
        pending = await self._client.xpending_range(
            self.stream, self.group, "-", "+", 1, consumername=self.consumer
        )
        if not pending:
            await self._client.xgroup_delconsumer(self.stream, self.group, self.consumer)
