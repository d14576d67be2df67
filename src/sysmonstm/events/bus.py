"""The bus seam: every backend (memory, NATS JetStream, Redis Streams) implements these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, runtime_checkable

from sysmonstm.events.envelope import Envelope

Overflow = Literal["block", "drop_oldest"]


@runtime_checkable
class Subscription(Protocol):
    """An async iterator of envelopes whose topics match ``pattern``, in publish order.

    Iteration ends after ``close()``. A backend with durable delivery acknowledges a message
    when the next one is requested, so a consumer that dies mid-message sees it again.
    """

    pattern: str

    def __aiter__(self) -> AsyncIterator[Envelope]: ...

    async def __anext__(self) -> Envelope: ...

    async def close(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """Publish envelopes to topics; subscribe with NATS-style patterns.

    ``group`` makes a queue group: each message goes to one member of the group rather than
    to all (several rule or aggregator instances sharing work). ``overflow`` says what a
    subscription does when its consumer falls ``maxsize`` messages behind: ``block`` holds
    back (in process it slows the publishers; over the network the server buffers, bounded
    by the backend's limits), ``drop_oldest`` keeps the newest (live views). Only durable
    subscriptions guarantee that a slow or absent consumer loses nothing.

    Backends that keep history say so in ``capabilities``: ``"durable"`` — a subscription
    named by ``durable`` resumes after a restart where it left off (delivered at least once,
    acknowledged when the next message is requested); ``"replay"`` — ``since_ms`` starts a
    subscription at the first message published at or after that time. A backend without the
    capability refuses the argument with ``BackendError``. Publishing the same ``event_id``
    twice within the backend's duplicate window delivers it once where ``"dedupe"`` is listed.
    """

    url: str
    capabilities: frozenset[str]

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        source: str = "",
        event_id: str | None = None,
        time_ms: int | None = None,
    ) -> Envelope: ...

    async def subscribe(
        self,
        pattern: str,
        *,
        group: str | None = None,
        durable: str | None = None,
        since_ms: int | None = None,
        maxsize: int = 10_000,
        overflow: Overflow = "block",
    ) -> Subscription: ...
