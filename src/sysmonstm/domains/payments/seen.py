"""The fast duplicate check in front of the ledger: event ids recorded in the last hour.

Two levels: this process's own set (free), then the hot tier's marks (``HotTier.known``),
which every hub sharing the hot tier sees (Redis in production).

Webhook retries and adapter replays mostly repeat recent events; answering those from
memory spares the ledger a round trip. A hit means "recorded" for certain (only ids the
ledger reported stored are added); a miss means nothing and falls through to the ledger's
exact check (``UNIQUE (event_id)`` inside ``record``), so losing this set (a restart, the
size bound) costs speed, never correctness.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

HOUR_MS = 3_600_000


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class SeenIds:
    """Event ids known to be recorded, each kept ``ttl_ms`` after it was added, at most
    ``max_ids`` (the oldest go first)."""

    def __init__(
        self,
        ttl_ms: int = HOUR_MS,
        max_ids: int = 1_000_000,
        clock: Callable[[], int] = _monotonic_ms,
    ) -> None:
        self.ttl_ms = ttl_ms
        self.max_ids = max_ids
        self._clock = clock
        self._ids: OrderedDict[str, int] = OrderedDict()  # id → when added, oldest first
        self.hits = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_ids: Iterable[str]) -> None:
        now = self._clock()
        for event_id in event_ids:
            self._ids[event_id] = now
            self._ids.move_to_end(event_id)
        self._expire(now)

    def known(self, event_id: str) -> bool:
        """Whether ``event_id`` is recorded for certain (``False``: ask the ledger)."""
        added = self._ids.get(event_id)
        if added is None or self._clock() - added > self.ttl_ms:
            return False
        self.hits += 1
        return True

    def _expire(self, now: int) -> None:
        while self._ids:
            oldest, added = next(iter(self._ids.items()))
            if len(self._ids) <= self.max_ids and now - added <= self.ttl_ms:
                return
            del self._ids[oldest]
