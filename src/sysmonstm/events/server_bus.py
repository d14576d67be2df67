"""What the bus backends on a server (NATS JetStream, Redis Streams) share: one stream per
domain, the names that consumers take, and the pauses between retries."""

from __future__ import annotations

import asyncio
import math

from sysmonstm.errors import InvalidInputError

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def domain_of(topic: str) -> str:
    """The domain of a topic (its first token): the stream it is stored in."""
    return topic.split(".", 1)[0]


def consumer_name(kind: str, name: str) -> str:
    """``name`` if it is a valid consumer name (letters, digits, ``_``, ``-``; 1..64), else
    ``InvalidInputError`` naming it as ``kind`` (``durable`` or ``group``)."""
    if not 0 < len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise InvalidInputError(f"{kind} {name!r}: use 1..64 letters, digits, '_' or '-'")
    return name


def history_domain(pattern: str, kinds: str) -> str:
    """The domain whose stream a subscription of ``kinds`` (e.g. ``durable and group``) on
    ``pattern`` reads; ``InvalidInputError`` when the first token is a wildcard."""
    token = domain_of(pattern)
    if token in ("*", ">"):
        raise InvalidInputError(
            f"pattern {pattern!r}: {kinds} subscriptions read one domain's stream, so the "
            "first token must name it (e.g. 'metrics.>')"
        )
    return token


class Backoff:
    """Pauses between retries, 50 ms doubling up to 1 s, within ``timeout_s`` from now (on
    the running loop's clock; ``None``: no deadline)."""

    def __init__(self, timeout_s: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = math.inf if timeout_s is None else loop.time() + timeout_s
        self._loop = loop
        self._pause = 0.05

    def left(self) -> float:
        """Seconds until the deadline."""
        return self.deadline - self._loop.time()

    def exhausted(self) -> bool:
        """Whether the next pause would end at or after the deadline: time to give up."""
        return self._loop.time() + self._pause >= self.deadline

    async def pause(self) -> None:
        await asyncio.sleep(self._pause)
        self._pause = min(self._pause * 2, 1.0)
