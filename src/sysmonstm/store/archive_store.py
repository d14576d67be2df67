"""``Archive`` over any ``ObjectStore``: manifests as commit markers, verification, a catalog.

The catalog (every manifest) is listed at most once per ``listing_ttl_s``; manifests are
re-read only when their object's tag changed, so a query that needs the catalog costs a LIST
request per tier folder, or nothing. This object's own commits and deletes update it at once;
another process's show within the TTL. A manifest that cannot be parsed is logged and left
out: that partition does not count (and its warm copy, if any, is never dropped).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import structlog

from sysmonstm.store.archive import (
    ArchiveCorruptError,
    Manifest,
    ObjectMissingError,
    ObjectStore,
    Part,
    manifest_key,
    manifest_name,
    parts_prefix,
)
from sysmonstm.store.archive_parquet import ContentHash, check_part
from sysmonstm.store.archive_schema import schema_for

log = structlog.get_logger(__name__)

_TIER_DIRS = ("raw", "m1", "h1")


class ObjectArchive:
    """Partitions in an ``ObjectStore`` (layout in ``store/archive.py``)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        listing_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.url = store.url
        self.listing_ttl_s = listing_ttl_s
        self._clock = clock
        self._known: dict[str, tuple[str, Manifest]] = {}  # name -> (object tag, manifest)
        self._listed_at: float | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    # -- catalog ---------------------------------------------------------------------------

    async def manifests(self) -> list[Manifest]:
        async with self._lock:
            now = self._clock()
            if self._listed_at is None or now - self._listed_at >= self.listing_ttl_s:
                await self._relist()
                self._listed_at = now
            found = [m for _, m in self._known.values()]
        return sorted(found, key=lambda m: (m.start_ms, m.tier.value))

    async def _relist(self) -> None:
        seen: dict[str, tuple[str, Manifest]] = {}
        for folder in _TIER_DIRS:
            for info in await self.store.list(f"{folder}/", recursive=False):
                name = manifest_name(info.key)
                if name is None:
                    continue
                cached = self._known.get(name)
                if cached is not None and cached[0] == info.tag:
                    seen[name] = cached
                    continue
                try:
                    data = await self.store.get_bytes(info.key)
                    seen[name] = (info.tag, Manifest.from_json(data, info.key))
                except ObjectMissingError:
                    continue  # deleted since the listing
                except ArchiveCorruptError as exc:  # it does not count; the rest still does
                    log.error("archive manifest unreadable", key=info.key, error=str(exc))
        self._known = seen

    async def manifest(self, name: str) -> Manifest | None:
        key = manifest_key(name)
        try:
            data = await self.store.get_bytes(key)
        except ObjectMissingError:
            return None
        return Manifest.from_json(data, key)

    # -- writing ---------------------------------------------------------------------------

    async def put_part(self, key: str, path: Path) -> None:
        await self.store.put_file(key, path)

    async def verify(self, manifest: Manifest) -> None:
        schema = schema_for(manifest.tier)
        whole = ContentHash(schema)
        with tempfile.TemporaryDirectory(prefix="sysmonstm-verify-") as tmp:
            for i, part in enumerate(manifest.parts):
                local = Path(tmp) / f"{i:05d}.parquet"
                await self.store.get_file(part.key, local)
                await asyncio.to_thread(check_part, local, part, schema, whole)
                local.unlink()
        if whole.rows != manifest.rows or sum(p.rows for p in manifest.parts) != manifest.rows:
            raise ArchiveCorruptError(
                f"{manifest.name}: {whole.rows} rows read back, {manifest.rows} archived"
            )
        if whole.hexdigest() != manifest.checksum:
            raise ArchiveCorruptError(f"{manifest.name}: content differs from what was archived")
        if sum(p.bytes for p in manifest.parts) != manifest.bytes:
            raise ArchiveCorruptError(f"{manifest.name}: part sizes do not add up")

    async def commit(self, manifest: Manifest) -> None:
        key = manifest_key(manifest.name)
        await self.store.put_bytes(key, manifest.to_json())
        async with self._lock:
            tag = next(
                (i.tag for i in await self.store.list(key, recursive=False) if i.key == key), ""
            )
            self._known[manifest.name] = (tag, manifest)
        keep = {p.key for p in manifest.parts}
        stale = [
            o.key for o in await self.store.list(parts_prefix(manifest.name)) if o.key not in keep
        ]
        await self.store.delete(stale)

    async def delete(self, name: str) -> None:
        await self.store.delete([manifest_key(name)])
        async with self._lock:
            self._known.pop(name, None)
        await self.store.delete([o.key for o in await self.store.list(parts_prefix(name))])

    # -- reading ---------------------------------------------------------------------------

    async def fetch_part(self, part: Part, dest: Path) -> None:
        await self.store.get_file(part.key, dest)

    def open_part(self, part: Part) -> IO[bytes]:
        return self.store.open_range(part.key, part.bytes)
