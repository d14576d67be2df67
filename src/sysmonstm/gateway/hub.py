"""The WebSocket hub: one bus subscription per distinct pattern, fanned out to clients.

A feed (one per pattern, refcounted by the clients holding it) encodes each envelope to
JSON once and appends it to the bounded outbox of every client subscribed to it. An outbox
that is full drops its oldest message and counts the drop, so a slow browser loses its own
backlog and never slows the feed, the bus or the pipeline behind it. A client holding
overlapping patterns (``metrics.*`` and ``metrics.>``) gets each envelope once: only the
first of its patterns that matches a topic delivers it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

import structlog

from sysmonstm.errors import InvalidInputError, SysmonstmError
from sysmonstm.events.bus import Bus, Subscription
from sysmonstm.events.envelope import envelope_json
from sysmonstm.events.topics import TopicPattern

log = structlog.get_logger(__name__)

FEED_BUFFER = 10_000  # envelopes a feed may fall behind the bus before it drops the oldest


class Client:
    """One connection's subscriptions and outbox (events) plus replies (never dropped)."""

    def __init__(self, outbox_size: int) -> None:
        self.patterns: list[TopicPattern] = []
        self.outbox: deque[str] = deque(maxlen=outbox_size)
        self.replies: deque[str] = deque()
        self.dropped = 0
        self.reported = 0
        self.sent = 0
        self._wake = asyncio.Event()

    def push(self, text: str) -> None:
        if len(self.outbox) == self.outbox.maxlen:
            self.dropped += 1
        self.outbox.append(text)
        self._wake.set()

    def reply(self, text: str) -> None:
        self.replies.append(text)
        self._wake.set()

    def first_match(self, topic: str) -> str | None:
        for pattern in self.patterns:
            if pattern.matches(topic):
                return pattern.text
        return None

    async def next_message(self) -> str:
        """The next text to send: replies first, then a drop notice if any, then events."""
        while True:
            if self.replies:
                return self.replies.popleft()
            if self.dropped > self.reported:
                self.reported = self.dropped
                return f'{{"dropped":{self.dropped}}}'
            if self.outbox:
                self.sent += 1
                return self.outbox.popleft()
            self._wake.clear()
            await self._wake.wait()


@dataclass(slots=True)
class _Feed:
    pattern: str
    sub: Subscription
    task: asyncio.Task[None]
    clients: set[Client]


@dataclass(frozen=True, slots=True)
class HubStats:
    clients: int
    patterns: int
    dropped: int


class Hub:
    """Fans bus envelopes out to WebSocket clients (see the module docstring)."""

    def __init__(self, bus: Bus, *, outbox_size: int = 1000, max_patterns: int = 32) -> None:
        self.bus = bus
        self.outbox_size = outbox_size
        self.max_patterns = max_patterns
        self._feeds: dict[str, _Feed] = {}
        self._clients: set[Client] = set()
        self._lock = asyncio.Lock()
        self._dropped_gone = 0

    def attach(self) -> Client:
        client = Client(self.outbox_size)
        self._clients.add(client)
        return client

    async def detach(self, client: Client) -> None:
        """Forget a client and release the feeds only it held."""
        await self.unsubscribe(client, [p.text for p in client.patterns])
        self._clients.discard(client)
        self._dropped_gone += client.dropped

    async def subscribe(self, client: Client, patterns: list[str]) -> list[str]:
        """Add ``patterns`` (all or none); the client's patterns after the change.

        Raises ``InvalidInputError`` for a malformed pattern or when the client would hold
        more than ``max_patterns``.
        """
        parsed = [TopicPattern.parse(p) for p in patterns]
        held = {p.text for p in client.patterns}
        new = list({p.text: p for p in parsed if p.text not in held}.values())
        if len(held) + len(new) > self.max_patterns:
            raise InvalidInputError(
                f"at most {self.max_patterns} patterns per connection "
                f"(holding {len(held)}, asked for {len(new)} more)",
                code="RESOURCE_EXHAUSTED",
            )
        async with self._lock:
            for pattern in new:
                feed = self._feeds.get(pattern.text)
                if feed is None:
                    feed = await self._open_feed(pattern.text)
                feed.clients.add(client)
                client.patterns.append(pattern)
        return [p.text for p in client.patterns]

    async def unsubscribe(self, client: Client, patterns: list[str]) -> list[str]:
        """Drop ``patterns`` the client holds (others are ignored); its patterns after."""
        gone = set(patterns)
        async with self._lock:
            client.patterns = [p for p in client.patterns if p.text not in gone]
            for text in gone:
                feed = self._feeds.get(text)
                if feed is None:
                    continue
                feed.clients.discard(client)
                if not feed.clients:
                    await self._close_feed(feed)
        return [p.text for p in client.patterns]

    async def close(self) -> None:
        async with self._lock:
            for feed in list(self._feeds.values()):
                await self._close_feed(feed)
        self._clients.clear()

    def stats(self) -> HubStats:
        dropped = self._dropped_gone + sum(c.dropped for c in self._clients)
        return HubStats(len(self._clients), len(self._feeds), dropped)

    async def _open_feed(self, pattern: str) -> _Feed:
        sub = await self.bus.subscribe(pattern, maxsize=FEED_BUFFER, overflow="drop_oldest")
        clients: set[Client] = set()
        task = asyncio.create_task(self._pump(pattern, sub, clients), name=f"ws-feed {pattern}")
        feed = _Feed(pattern, sub, task, clients)
        self._feeds[pattern] = feed
        return feed

    async def _close_feed(self, feed: _Feed) -> None:
        self._feeds.pop(feed.pattern, None)
        with contextlib.suppress(SysmonstmError):
            await feed.sub.close()
        feed.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed.task

    async def _pump(self, pattern: str, sub: Subscription, clients: set[Client]) -> None:
        try:
            async for env in sub:
                if not clients:
                    continue
                text = envelope_json(env).decode()
                for client in clients:
                    if client.first_match(env.topic) == pattern:
                        client.push(text)
        except SysmonstmError as exc:
            log.warning("live feed ended", pattern=pattern, error=str(exc))
