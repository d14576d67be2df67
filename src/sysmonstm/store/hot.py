"""The hot tier seam: the latest value of every series and the last few minutes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sysmonstm.store.model import LatestValue, SeriesBatch, SeriesPoints, SourceState


@runtime_checkable
class HotTier(Protocol):
    """Current state, in memory or Redis. Losing it loses no history (the warm tier has it).

    ``window_ms`` is how far back ``recent`` reaches (5 minutes by default).
    """

    url: str
    window_ms: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, batches: Sequence[SeriesBatch]) -> None:
        """Take stored batches; older samples than a series' latest are kept in the window
        but never replace its latest value."""
        ...

    async def sources(self, domain: str) -> list[SourceState]:
        """Sources seen within the window or since start, most recently seen first."""
        ...

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        """The newest value of each series of a source (empty if unknown)."""
        ...

    async def recent(self, domain: str, source_id: str, series: str, since_ms: int) -> SeriesPoints:
        """Raw points of one series from ``since_ms`` on, oldest first."""
        ...
