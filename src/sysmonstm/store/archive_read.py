"""Reading the archive: one series of one source over a time range, as the warm tier would.

Only what can hold the rows is read: the manifest names the sources a partition holds and
the ``(domain, source)`` span of each part; within a part, pyarrow's filters skip every row
group whose statistics (domain, source, series, t) exclude it, so a read fetches the part's
footer and one or two row groups, whatever the archive's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sysmonstm.store.archive import Archive, ArchiveCorruptError, ArchiveError, Manifest, Part
from sysmonstm.store.model import SeriesPoints, Tier

_RAW_COLUMNS = ["t", "value"]
_ROLLUP_COLUMNS = ["t", "min", "max", "sum", "count"]


def _read_part(
    archive: Archive,
    part: Part,
    tier: Tier,
    key: tuple[str, str, str],
    start_ms: int,
    end_ms: int,
) -> pa.Table:
    """Rows of one series in ``[start_ms, end_ms)`` from one part (blocking: a worker thread
    runs it); row groups whose statistics exclude them are never fetched."""
    domain, source, series = key
    where = (
        (pc.field("domain") == domain)
        & (pc.field("source") == source)
        & (pc.field("series") == series)
        & (pc.field("t") >= start_ms)
        & (pc.field("t") < end_ms)
    )
    columns = _RAW_COLUMNS if tier is Tier.RAW else _ROLLUP_COLUMNS
    try:
        with archive.open_part(part) as handle:
            return pq.read_table(
                handle,
                columns=columns,
                filters=where,
                partitioning=None,
                pre_buffer=True,
            )
    except ArchiveError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise ArchiveCorruptError(f"{part.key}: unreadable Parquet: {exc}") from exc


def _column(table: pa.Table, name: str, dtype: type[np.generic]) -> np.ndarray:
    return np.array(table.column(name).to_numpy(), dtype=dtype, copy=True)


def _points(table: pa.Table, series: str, tier: Tier) -> SeriesPoints:
    table = table.sort_by([("t", "ascending")])
    t = _column(table, "t", np.int64)
    if tier is Tier.RAW:
        return SeriesPoints.raw(series, tier, 0, t, _column(table, "value", np.float64))
    count = _column(table, "count", np.int64)
    return SeriesPoints(
        series,
        tier,
        tier.step_ms,
        t,
        _column(table, "sum", np.float64) / count,
        _column(table, "min", np.float64),
        _column(table, "max", np.float64),
        count,
    )


class ArchiveReader:
    """Range reads over an ``Archive``'s committed partitions."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    async def coverage(self) -> dict[Tier, int]:
        """Per tier, the start (Unix ms) of its oldest archived partition."""
        found: dict[Tier, int] = {}
        for m in await self.archive.manifests():
            found[m.tier] = min(found.get(m.tier, m.start_ms), m.start_ms)
        return found

    async def partitions(
        self, tier: Tier, start_ms: int, end_ms: int, domain: str, source: str
    ) -> list[Manifest]:
        """Archived partitions of ``tier`` overlapping ``[start_ms, end_ms)`` that hold rows
        of ``(domain, source)``, oldest first."""
        return [
            m
            for m in await self.archive.manifests()
            if m.tier is tier
            and m.start_ms < end_ms
            and m.end_ms > start_ms
            and m.holds(domain, source)
        ]

    async def read(
        self,
        manifests: Sequence[Manifest],
        domain: str,
        source: str,
        series: str,
        start_ms: int,
        end_ms: int,
        tier: Tier,
    ) -> SeriesPoints:
        """Points of one series with ``start_ms <= t < end_ms`` from ``manifests`` (all of
        ``tier``), in time order. Raw points carry step 0 (the caller knows the interval);
        rollup points have ``avg = sum / count`` as the warm tier computes it."""
        key = (domain, source, series)
        tables = []
        for part in (p for m in manifests for p in m.parts_for(domain, source)):
            table = await asyncio.to_thread(
                _read_part, self.archive, part, tier, key, start_ms, end_ms
            )
            tables.append(table)
        if not tables:
            return SeriesPoints.empty(series, tier, tier.step_ms)
        found = pa.concat_tables(tables)
        return _points(found, series, tier)


def has_points(times_ms: np.ndarray, start_ms: int, end_ms: int) -> bool:
    """Whether any of the sorted ``times_ms`` lies in ``[start_ms, end_ms)``."""
    i = int(np.searchsorted(times_ms, start_ms, side="left"))
    return i < len(times_ms) and int(times_ms[i]) < end_ms
