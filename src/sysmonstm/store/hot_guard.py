"""A hot tier that degrades instead of failing: the warm tier holds everything anyway.

The hot tier only speeds up "now" (latest values, the last minutes of charts); losing it
must never stop ingest or the API. ``GuardedHot`` wraps any ``HotTier`` and turns its
outage into a state:

- **healthy**: calls pass through, each bounded by ``timeout_s``.
- **degraded** (after a ``BackendError``, an ``OSError`` or a timeout; a ``write`` also
  counts any other exception): writes are skipped at once and counted, reads answer empty
  so callers fall back to the warm tier, and nothing waits on the backend. The outage is
  logged once when it starts and once when it ends, never per batch.
- a background **probe** (backoff from ``probe_min_s`` doubling to ``probe_max_s``)
  re-opens the backend; when it answers, the guard is healthy again by itself.

After an outage the backend misses what was skipped, so for one window ``recent`` and
``recent_docs`` answer empty for ranges that start before the recovery: the query router
(or the domain) then reads the warm tier, which has no hole. Latest values and states heal
with each source's next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from sysmonstm.errors import BackendError
from sysmonstm.redact import redact
from sysmonstm.store.hot import HotDocument, HotTier, LatestPoint
from sysmonstm.store.model import LatestValue, SeriesBatch, SeriesPoints, SourceState, Tier

log = structlog.get_logger(__name__)

T = TypeVar("T")
PROBE_DOMAIN = "__probe__"
_FAILURES = (BackendError, OSError)  # TimeoutError is an OSError


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class GuardedHot:
    """``HotTier`` over ``inner`` that never raises for an outage (see the module docstring).

    ``degraded`` and ``since_ms`` (wall ms the outage started, ``None`` when healthy) say
    where it stands; ``skipped_batches`` counts writes (batches or documents) not made during
    outages, ``outages`` how many began.
    """

    def __init__(
        self,
        inner: HotTier,
        *,
        timeout_s: float = 2.0,
        probe_min_s: float = 0.1,
        probe_max_s: float = 3.0,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.window_ms = inner.window_ms
        self.timeout_s = timeout_s
        self.probe_min_s = probe_min_s
        self.probe_max_s = probe_max_s
        self.since_ms: int | None = None
        self.reason = ""
        self.skipped_batches = 0
        self.outages = 0
        self._now_ms = now_ms
        self._opened = False  # inner.open() succeeded at least once
        self._closed = False
        self._complete_from_ms = 0  # recent() has no hole from here on
        self._probe: asyncio.Task[None] | None = None
        self._skipped_before = 0

    @property
    def degraded(self) -> bool:
        return self.since_ms is not None

    async def open(self) -> None:
        """Open the backend; if it is down, start degraded (never raises for an outage)."""
        self._closed = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.inner.open()
        except _FAILURES as exc:
            self._degrade(exc)
            return
        self._opened = True

    async def close(self) -> None:
        self._closed = True
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        with contextlib.suppress(*_FAILURES):
            await self.inner.close()

    async def write(self, batches: Sequence[SeriesBatch]) -> None:
        """Write through, or skip and count while degraded. Never raises (but cancels)."""
        await self._write(lambda: self.inner.write(batches), len(batches))

    async def put_states(self, domain: str, docs: Sequence[HotDocument]) -> None:
        """As ``write``: through, or skipped and counted while degraded; never raises."""
        await self._write(lambda: self.inner.put_states(domain, docs), len(docs))

    async def add_recent(self, domain: str, docs: Sequence[HotDocument]) -> None:
        """As ``write``: through, or skipped and counted while degraded; never raises."""
        await self._write(lambda: self.inner.add_recent(domain, docs), len(docs))

    async def remember(self, domain: str, keys: Sequence[str], ttl_ms: int) -> None:
        """As ``write``: through, or skipped and counted while degraded; never raises."""
        await self._write(lambda: self.inner.remember(domain, keys, ttl_ms), len(keys))

    async def known(self, domain: str, keys: Sequence[str]) -> set[str]:
        """Empty while degraded (a miss: the caller asks its exact store)."""
        return await self._read(lambda: self.inner.known(domain, keys), set())

    async def _write(self, call: Callable[[], Awaitable[None]], count: int) -> None:
        if not count:
            return
        if self.degraded:
            self.skipped_batches += count
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                await call()
        except Exception as exc:  # the ingest path must survive any hot-tier fault
            self._degrade(exc)
            self.skipped_batches += count

    async def sources(self, domain: str) -> list[SourceState]:
        return await self._read(lambda: self.inner.sources(domain), [])

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        return await self._read(lambda: self.inner.latest(domain, source_id), [])

    async def latest_values(
        self, domain: str, source_ids: Sequence[str]
    ) -> dict[str, dict[str, LatestPoint]]:
        return await self._read(lambda: self.inner.latest_values(domain, source_ids), {})

    async def recent(self, domain: str, source_id: str, series: str, since_ms: int) -> SeriesPoints:
        """Empty while degraded, and for ranges starting before the backend was complete
        again after an outage (the warm tier answers those)."""
        empty = SeriesPoints.empty(series, Tier.HOT, 0)
        if since_ms < self._complete_from_ms:
            return empty
        return await self._read(
            lambda: self.inner.recent(domain, source_id, series, since_ms), empty
        )

    def covers(self, since_ms: int) -> bool:
        """Whether ``recent`` and ``recent_docs`` can answer completely from ``since_ms`` on
        (healthy, and no outage hole after it)."""
        return not self.degraded and since_ms >= self._complete_from_ms

    async def states(self, domain: str) -> list[HotDocument]:
        """Empty while degraded; after an outage, only the keys written since may be there
        (a Redis that restarted empty), so callers needing every key ask the warm tier."""
        return await self._read(lambda: self.inner.states(domain), [])

    async def recent_docs(self, domain: str, since_ms: int) -> list[HotDocument]:
        """Empty while degraded, and for ranges starting before the backend was complete
        again after an outage (as ``recent``)."""
        if since_ms < self._complete_from_ms:
            return []
        return await self._read(lambda: self.inner.recent_docs(domain, since_ms), [])

    async def _read(self, call: Callable[[], Awaitable[T]], empty: T) -> T:
        if self.degraded:
            return empty
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call()
        except _FAILURES as exc:
            self._degrade(exc)
            return empty

    def _degrade(self, exc: BaseException) -> None:
        if self.degraded or self._closed:
            return
        self.since_ms = self._now_ms()
        self.reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        self.outages += 1
        self._skipped_before = self.skipped_batches
        log.warning(
            "hot tier unavailable; skipping its writes, reads fall back to the warm tier",
            hot=redact(self.inner.url),
            error=self.reason,
            exc_info=not isinstance(exc, _FAILURES),
        )
        self._probe = asyncio.get_running_loop().create_task(self._recover(), name="hot-probe")

    async def _recover(self) -> None:
        delay = self.probe_min_s
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                async with asyncio.timeout(self.timeout_s):
                    if self._opened:
                        await self.inner.sources(PROBE_DOMAIN)
                    else:
                        await self.inner.open()
                        self._opened = True
            except _FAILURES:
                delay = min(delay * 2, self.probe_max_s)
                continue
            break
        down_ms = self._now_ms() - (self.since_ms or 0)
        self._complete_from_ms = self._now_ms()
        self.since_ms = None
        self.reason = ""
        self._probe = None
        log.info(
            "hot tier recovered",
            hot=redact(self.inner.url),
            down_s=round(down_ms / 1000, 1),
            skipped_batches=self.skipped_batches - self._skipped_before,
        )
