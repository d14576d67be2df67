"""The archiving job: warm partitions past their tier's retention go to the archive, then go.

For each partition whose period ended at or before ``now - retention`` of its tier, oldest
first: export it from the warm tier, write it as Parquet parts, upload them, read every part
back and check it (size, sha256, rows, content checksum: ``Archive.verify``), commit the
manifest, and only then drop the warm partition.

Idempotent and crash-safe: a partition counts as archived only once its manifest is
committed, and is dropped only after that. A crash before the commit leaves the warm
partition and orphan parts (removed by the next commit); a crash after it leaves both copies,
and the rerun finds the warm content equal to the manifest's checksum, verifies the archived
copy again and drops the warm one. If the warm partition holds rows the archive does not
(late data, or a restore that was written to since), the two are merged (the warm row wins
for the same series and time) and archived again.
"""

from __future__ import annotations

import asyncio
import enum
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from sysmonstm.errors import SysmonstmError
from sysmonstm.store.archive import (
    Archive,
    ArchiveCorruptError,
    ArchiveError,
    Manifest,
    Part,
    part_key,
)
from sysmonstm.store.archive_parquet import (
    choose_encodings,
    content_checksum,
    read_whole,
    source_span,
    sources_of,
    split_parts,
    write_part,
)
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import PartitionInfo, Retention, Tier
from sysmonstm.store.warm import WarmTier

log = structlog.get_logger(__name__)

KEYS = ["domain", "source", "series", "t"]
ProgressFn = Callable[[PartitionInfo, int, int], None]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Status(enum.StrEnum):
    ARCHIVED = "archived"  # written, verified, committed, dropped from the warm tier
    MERGED = "merged"  # the warm partition held rows the archive lacked; archived again
    DROPPED = "dropped"  # already archived with the same content: verified, then dropped
    FAILED = "failed"  # nothing dropped; the next run tries again


@dataclass(frozen=True, slots=True)
class Outcome:
    partition: PartitionInfo
    status: Status
    manifest: Manifest | None = None
    error: str = ""


def due(partitions: list[PartitionInfo], retention: Retention, now_ms: int) -> list[PartitionInfo]:
    """The partitions retention would drop at ``now_ms`` (the same rule as the warm tier's
    ``enforce_retention``), oldest first."""
    return sorted(
        (p for p in partitions if p.end_ms <= now_ms - retention.of(p.tier)),
        key=lambda p: (p.start_ms, p.tier.value),
    )


def merge_rows(archived: pa.Table, warm: pa.Table) -> pa.Table:
    """Rows of ``warm`` plus those of ``archived`` at a (domain, source, series, t) that
    ``warm`` does not hold; sorted like an export."""
    kept = archived.join(warm.select(KEYS), keys=KEYS, join_type="left anti")
    both = pa.concat_tables([kept.select(warm.schema.names).cast(warm.schema), warm])
    return both.sort_by([(k, "ascending") for k in KEYS])


class Archiver:
    """Moves due partitions of ``warm`` into ``archive`` (see the module docstring)."""

    def __init__(
        self,
        warm: WarmTier,
        archive: Archive,
        retention: Retention,
        *,
        workdir: Path | None = None,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.warm = warm
        self.archive = archive
        self.retention = retention
        self.workdir = workdir
        self._now_ms = now_ms

    async def due(self, now_ms: int | None = None) -> list[PartitionInfo]:
        now = self._now_ms() if now_ms is None else now_ms
        return due(await self.warm.partitions(), self.retention, now)

    async def run(
        self, now_ms: int | None = None, progress: ProgressFn | None = None
    ) -> list[Outcome]:
        """Archive every partition due at ``now_ms``; failures are logged and reported in
        the outcomes (their partitions stay in the warm tier), never raised."""
        todo = await self.due(now_ms)
        outcomes: list[Outcome] = []
        for i, info in enumerate(todo):
            if progress is not None:
                progress(info, i, len(todo))
            try:
                outcome = await self.archive_partition(info)
            except (SysmonstmError, OSError, pa.ArrowException) as exc:
                log.error("archiving failed", partition=info.name, error=str(exc))
                outcome = Outcome(info, Status.FAILED, error=str(exc))
            else:
                m = outcome.manifest
                log.info(
                    "partition archived",
                    partition=info.name,
                    status=str(outcome.status),
                    rows=m.rows if m else 0,
                    bytes=m.bytes if m else 0,
                )
            outcomes.append(outcome)
        if progress is not None and todo:
            progress(todo[-1], len(todo), len(todo))
        return outcomes

    async def archive_partition(self, info: PartitionInfo) -> Outcome:
        """Archive one partition and drop it from the warm tier (see the module docstring)."""
        table = await self.warm.export_partition(info.name)
        existing = await self.archive.manifest(info.name)
        status = Status.ARCHIVED
        if existing is not None:
            same = existing.rows == table.num_rows and existing.checksum == (
                await asyncio.to_thread(content_checksum, table)
            )
            if same:
                await self.archive.verify(existing)
                await self.warm.drop_partition(info.name)
                return Outcome(info, Status.DROPPED, existing)
            archived = await read_partition(self.archive, existing, self.workdir)
            table = await asyncio.to_thread(merge_rows, archived, table)
            status = Status.MERGED
        manifest = await self._write(info, table)
        await self.archive.verify(manifest)
        await self.archive.commit(manifest)
        await self.warm.drop_partition(info.name)
        return Outcome(info, status, manifest)

    async def _write(self, info: PartitionInfo, table: pa.Table) -> Manifest:
        """Write and upload the parts of ``table``; the manifest describing them."""
        if not table.schema.equals(schema_for(info.tier)):
            raise SysmonstmError(f"{info.name}: the warm tier exported {table.schema}")
        rows = table.num_rows
        encodings = await asyncio.to_thread(choose_encodings, table) if rows else {}
        parts: list[Part] = []
        with tempfile.TemporaryDirectory(prefix="sysmonstm-archive-", dir=self.workdir) as tmp:
            chunks = await asyncio.to_thread(split_parts, table) if rows else []
            for i, chunk in enumerate(chunks):
                path = Path(tmp) / f"{i:05d}.parquet"
                sha, size = await asyncio.to_thread(write_part, chunk, path, encodings)
                checksum = await asyncio.to_thread(content_checksum, chunk)
                first, last = source_span(chunk)
                part = Part(
                    part_key(info.name, i, sha), chunk.num_rows, size, sha, checksum, first, last
                )
                await self.archive.put_part(part.key, path)
                path.unlink()
                parts.append(part)
        t_min, t_max = _t_range(table)
        return Manifest(
            name=info.name,
            tier=info.tier,
            start_ms=info.start_ms,
            end_ms=info.end_ms,
            rows=rows,
            checksum=await asyncio.to_thread(content_checksum, table),
            bytes=sum(p.bytes for p in parts),
            min_t=t_min,
            max_t=t_max,
            sources=await asyncio.to_thread(sources_of, table),
            parts=tuple(parts),
            encodings=encodings,
            archived_ms=self._now_ms(),
        )


async def read_partition(
    archive: Archive, manifest: Manifest, workdir: Path | None = None
) -> pa.Table:
    """Every row of an archived partition, in order; ``ArchiveCorruptError`` unless the
    rows and content checksum read back are the manifest's."""
    with tempfile.TemporaryDirectory(prefix="sysmonstm-archive-", dir=workdir) as tmp:
        paths = []
        for i, part in enumerate(manifest.parts):
            paths.append(Path(tmp) / f"{i:05d}.parquet")
            await archive.fetch_part(part, paths[-1])
        table = await asyncio.to_thread(read_whole, paths, schema_for(manifest.tier))
    checksum = await asyncio.to_thread(content_checksum, table)
    if table.num_rows != manifest.rows or checksum != manifest.checksum:
        raise ArchiveCorruptError(f"{manifest.name}: content differs from what was archived")
    return table


async def restore_partition(warm: WarmTier, archive: Archive, name: str) -> int:
    """Write archived partition ``name`` back into the warm tier (merged with what the warm
    tier holds of it, the warm rows winning); return the rows the partition now holds. The
    next retention pass archives and drops it again if it is still past retention."""
    manifest = await archive.manifest(name)
    if manifest is None:
        raise ArchiveError(f"{name!r} is not in the archive {archive.url}")
    table = await read_partition(archive, manifest)
    if name in {p.name for p in await warm.partitions()}:
        table = await asyncio.to_thread(merge_rows, table, await warm.export_partition(name))
    return await warm.import_partition(name, table)


def _t_range(table: pa.Table) -> tuple[int | None, int | None]:
    if table.num_rows == 0:
        return None, None
    found = pc.min_max(table.column("t"))
    return int(found["min"].as_py()), int(found["max"].as_py())


async def archive_then_expire(
    warm: WarmTier, archive: Archive, retention: Retention, now_ms: int
) -> tuple[list[Outcome], dict[Tier, int] | None]:
    """Archive every due partition, then enforce retention at the same instant, unless a
    partition due at ``now_ms`` is still in the warm tier (its archiving failed, or it
    appeared meanwhile): retention never drops what is due but not archived. Returns the
    outcomes and what retention dropped (None when it was skipped)."""
    outcomes = await Archiver(warm, archive, retention).run(now_ms)
    left = due(await warm.partitions(), retention, now_ms)
    if left:
        log.warning(
            "retention skipped: partitions due for archiving are not archived yet",
            partitions=[p.name for p in left],
        )
        return outcomes, None
    return outcomes, await warm.enforce_retention(now_ms)
