"""The wired core a service runs on: settings, bus, tiers, query router, domains."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    async def close(self) -> None:
        await self.bus.close()
        await self.hot.close()
        await self.warm.close()
        if self.archive is not None:
            await self.archive.close()
