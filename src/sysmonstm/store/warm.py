"""The warm tier seam: durable history with rollups, retention and source watermarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sysmonstm.store.model import (
    LatestValue,
    PartitionInfo,
    Record,
    SeriesBatch,
    SeriesPoints,
    SourceState,
    Tier,
)

if TYPE_CHECKING:
    import pyarrow as pa


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

    async def rollup(self, now_ms: int | None = None) -> int:
        """Bring the 1-minute and 1-hour rollups up to date; return buckets written.

        A bucket is rolled up once it is complete: before the one holding its source's newest
        sample, or that one too when the source has been silent for ``SILENCE_GRACE_MS``
        (``store/progress.py``) at ``now_ms`` (Unix ms; ``None``: the backend's clock, the
        wall clock unless configured otherwise). A sample that comes later for a rolled-up
        bucket marks it to be rolled up again by the next call.
        """
        ...

    async def enforce_retention(self, now_ms: int) -> dict[Tier, int]:
        """Drop data older than each tier's retention; return what was dropped per tier."""
        ...

    async def partitions(self) -> list[PartitionInfo]:
        """Every time partition that exists, oldest first."""
        ...

    async def export_partition(self, name: str) -> pa.Table:
        """A partition's contents in the archive's long format, sorted by (domain, source,
        series, t): columns ``domain``, ``source``, ``series`` (strings), ``t`` (int64 Unix
        ms) and, for RAW, ``value`` (float64); for M1/H1 ``min``, ``max``, ``sum``
        (float64), ``count`` (int64), ``last`` (float64). See ``store/archive_schema.py``."""
        ...

    async def drop_partition(self, name: str) -> None:
        """Delete a whole partition (after it was archived and verified)."""
        ...

    async def import_partition(self, name: str, table: pa.Table) -> int:
        """Make partition ``name`` hold exactly the rows of ``table`` (in the long format of
        ``export_partition``, e.g. read back from the archive), replacing the partition if it
        exists, in one transaction; return the rows written. ``export_partition(name)``
        afterwards returns the same content.

        Sources and series unknown to this tier are created (a new source's rollups count as
        complete through the minute and hour of its newest imported row). Rollup progress
        and dirty marks are left alone: an import never makes the rollup job rewrite
        rollups. ``InvalidInputError`` if ``name`` is not a partition, the schema is not its
        tier's, or a row lies outside the partition's period."""
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
