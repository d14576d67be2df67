"""The warm tier seam: durable history with rollups, retention and source watermarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sysmonstm.store.model import (
    LatestValue,
    Record,
    SeriesBatch,
    SeriesPoints,
    SourceState,
    Tier,
)


@runtime_checkable
class WarmTier(Protocol):
    """History of numeric series per source: raw samples plus 1-minute and 1-hour rollups.

    ``write`` is atomic and idempotent: a batch whose sequence is at or below its source's
    watermark is skipped, and the watermark moves in the same transaction as the data.
    """

    url: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, batches: Sequence[SeriesBatch]) -> list[SeriesBatch]:
        """Store ``batches`` in one transaction; return those that were new."""
        ...

    async def stored_through(self, domain: str, source_id: str) -> int:
        """The highest sequence stored for a source (0 when none)."""
        ...

    async def sources(self, domain: str) -> list[SourceState]:
        """Every source of ``domain`` ever stored, most recently seen first."""
        ...

    async def series(self, domain: str, source_id: str) -> list[str]:
        """The canonical keys of every series of a source, sorted."""
        ...

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        """The newest stored value of each series of a source."""
        ...

    async def read(
        self, domain: str, source_id: str, series: str, start_ms: int, end_ms: int, tier: Tier
    ) -> SeriesPoints:
        """Points of one series in ``[start_ms, end_ms)`` from one tier (RAW, M1 or H1).

        Rollup tiers also cover the time not yet rolled up, computed from the finer tier, so
        a read reaches up to the newest sample.
        """
        ...

    async def rollup(self) -> int:
        """Bring the 1-minute and 1-hour rollups up to date; return buckets written."""
        ...

    async def enforce_retention(self, now_ms: int) -> dict[Tier, int]:
        """Drop data older than each tier's retention; return what was dropped per tier."""
        ...

    async def append_records(self, records: Sequence[Record]) -> None:
        """Keep records (ids are unique; a repeated id is ignored)."""
        ...

    async def records(
        self,
        kind: str,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        key: str | None = None,
        limit: int = 1000,
    ) -> list[Record]:
        """Records of ``kind`` in ``[start_ms, end_ms)``, newest first."""
        ...
