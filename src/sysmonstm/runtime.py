"""The wired core a service runs on: settings, bus, tiers, query router, domains."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import structlog

from sysmonstm.config import Settings
from sysmonstm.domain import Domain
from sysmonstm.events.bus import Bus
from sysmonstm.events.registry import open_bus
from sysmonstm.store.archive import Archive
from sysmonstm.store.archive_registry import open_archive
from sysmonstm.store.hot import HotTier
from sysmonstm.store.hot_guard import GuardedHot
from sysmonstm.store.model import Retention
from sysmonstm.store.query import SeriesQueries
from sysmonstm.store.registry import open_hot, open_warm
from sysmonstm.store.warm import WarmTier

log = structlog.get_logger(__name__)


class Closeable(Protocol):
    async def close(self) -> None: ...


class Openable(Closeable, Protocol):
    async def open(self) -> None: ...


R = TypeVar("R", bound=Closeable)
S = TypeVar("S", bound=Openable)


def retention_of(settings: Settings) -> Retention:
    w = settings.warm
    return Retention(
        raw_ms=int(w.retention_raw_s * 1000),
        m1_ms=int(w.retention_1m_s * 1000),
        h1_ms=int(w.retention_1h_s * 1000),
    )


@dataclass
class Core:
    """Open backends shared by the services of one process.

    ``hot`` is guarded: an outage of the hot tier (at start or later) makes it degraded,
    never an error; see ``GuardedHot``.
    """

    settings: Settings
    bus: Bus
    hot: GuardedHot
    warm: WarmTier
    queries: SeriesQueries
    domains: list[Domain] = field(default_factory=list)
    archive: Archive | None = None  # the cold tier, when settings.archive.url names one
    # name -> the opening of a resource shared by this process's services (see ``shared``)
    _shared: dict[str, asyncio.Future[Any]] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    async def open(cls, settings: Settings, domains: list[Domain] | None = None) -> Core:
        """Open the bus and tiers named by ``settings`` (closing what opened on failure).

        A hot tier that cannot be reached does not fail this: it starts degraded."""
        if domains is None:
            from sysmonstm.domains import load_domains

            domains = load_domains()
        retention = retention_of(settings)
        bus = open_bus(settings.bus.url)
        hot = GuardedHot(open_hot(settings.hot.url, int(settings.hot.window_s * 1000)))
        warm = open_warm(settings.warm.url, retention)
        archive = open_archive(settings.archive)
        parts: list[Bus | HotTier | WarmTier | Archive] = [bus, hot, warm]
        if archive is not None:
            parts.append(archive)
        opened: list[Bus | HotTier | WarmTier | Archive] = []
        try:
            for part in parts:
                await part.start() if isinstance(part, Bus) else await part.open()
                opened.append(part)
        except BaseException:
            for done in reversed(opened):
                await done.close()
            raise
        queries = SeriesQueries(hot, warm, retention, archive=archive)
        return cls(settings, bus, hot, warm, queries, domains, archive)

    async def shared(self, name: str, opener: Callable[[], Awaitable[R]]) -> R:
        """The process-wide resource ``name``, opened by ``opener`` on first use.

        Every service of this process (the aggregator, the gateway of ``sysmonstm up``) gets
        the same object; callers arriving while it opens wait for that one opening. An
        opening that fails is forgotten (its error goes to the callers waiting on it), so
        the next call tries again. ``close()`` of the Core closes every opened resource,
        newest first, before the tiers they may use.
        """
        task = self._shared.get(name)
        if task is None:
            task = asyncio.ensure_future(opener())
            self._shared[name] = task
        try:
            return cast(R, await asyncio.shield(task))
        except BaseException:
            failed = task.done() and (task.cancelled() or task.exception() is not None)
            if failed and self._shared.get(name) is task:
                del self._shared[name]
            raise

    async def warm_store(self, name: str, make: Callable[[str], S]) -> S:
        """``shared`` for a store in the warm tier's database: ``make(settings.warm.url)``
        (not yet opened; typically picked by the URL's scheme), opened on first use. What a
        failed opening did open (a pool, a thread) is closed again, so it cannot leak."""

        async def opener() -> S:
            store = make(self.settings.warm.url)
            try:
                await store.open()
            except BaseException:
                await store.close()
                raise
            return store

        return await self.shared(name, opener)

    async def _close_shared(self) -> None:
        opened, self._shared = self._shared, {}
        for name, task in reversed(opened.items()):
            if not task.done():
                task.cancel()
            await asyncio.wait([task])
            if task.cancelled() or task.exception() is not None:
                continue  # never opened: nothing to close
            try:
                await task.result().close()
            except Exception as exc:  # one failed close must not keep the others open
                log.error("closing a shared resource failed", resource=name, error=str(exc))

    async def close(self) -> None:
        await self._close_shared()
        await self.bus.close()
        await self.hot.close()
        await self.warm.close()
        if self.archive is not None:
            await self.archive.close()
