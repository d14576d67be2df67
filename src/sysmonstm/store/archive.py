"""The cold tier seam: whole warm-tier partitions kept as Parquet in a folder or an S3 bucket.

Layout under the archive's root (a folder, or a bucket and prefix)::

    raw/raw_20261204.json                          manifest: the partition's facts, its parts
    raw/raw_20261204/00000-3fa9c0d1e2b4.parquet    part 0 (index, then a prefix of its sha256)
    m1/m1_202612.json    m1/m1_202612/...          1-minute rollups, by month
    h1/h1_2026.json      h1/h1_2026/...            1-hour rollups, by year

A partition counts as archived only once its manifest exists. The manifest is written last,
after every part was uploaded and read back (``Archive.verify``), so an upload that stopped
half way never counts: its parts are orphans that the next commit of that partition removes.

Two seams: ``ObjectStore`` is the I/O one (a folder, S3; ``archive_file``, ``archive_s3``),
``Archive`` the partition-level one the archiving job, queries and the CLI use
(``archive_store.ObjectArchive`` implements it over any ``ObjectStore``).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import msgspec

from sysmonstm.errors import BackendError
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import parse_partition

FORMAT = 1
_MANIFEST_KEY = re.compile(r"^(raw|m1|h1)/((?:raw|m1|h1)_\d{4,8})\.json$")


class ArchiveError(BackendError):
    """The archive could not be read or written; the operation did not take effect."""


class ObjectMissingError(ArchiveError):
    """No object under the key asked for."""


class ArchiveCorruptError(ArchiveError):
    """Stored data differs from what its manifest says (size, hash, rows or content)."""


class Part(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One Parquet object of a partition: rows ``first`` .. ``last`` (``(domain, source)``,
    inclusive) in the partition's sort order. ``sha256`` is of the object's bytes,
    ``checksum`` of its decoded content (``archive_parquet.ContentHash``)."""

    key: str
    rows: int
    bytes: int
    sha256: str
    checksum: str
    first: tuple[str, str]
    last: tuple[str, str]

    def may_hold(self, domain: str, source: str) -> bool:
        return self.first <= (domain, source) <= self.last


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an archived partition holds. ``checksum`` covers the content of all parts in
    order; ``min_t``/``max_t`` are None for an empty partition; ``encodings`` names the
    Parquet encoding chosen per column."""

    name: str
    tier: Tier
    start_ms: int
    end_ms: int
    rows: int
    checksum: str
    bytes: int
    min_t: int | None
    max_t: int | None
    sources: tuple[tuple[str, str], ...]
    parts: tuple[Part, ...]
    encodings: dict[str, str]
    archived_ms: int
    format: int = FORMAT

    def holds(self, domain: str, source: str) -> bool:
        return (domain, source) in self.sources

    def parts_for(self, domain: str, source: str) -> list[Part]:
        """The parts that may hold rows of ``(domain, source)``."""
        if not self.holds(domain, source):
            return []
        return [p for p in self.parts if p.may_hold(domain, source)]

    @property
    def bytes_per_row(self) -> float:
        return self.bytes / self.rows if self.rows else 0.0

    def to_json(self) -> builtins.bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=1)

    @classmethod
    def from_json(cls, data: builtins.bytes, key: str = "manifest") -> Manifest:
        """Parse a manifest; ``ArchiveCorruptError`` unless it is well formed and its name,
        tier and period agree with each other."""
        try:
            m = msgspec.json.decode(data, type=cls)
        except msgspec.DecodeError as exc:
            raise ArchiveCorruptError(f"{key}: not a manifest: {exc}") from exc
        parsed = parse_partition(m.name)
        if m.format != FORMAT or parsed != (m.tier, m.start_ms, m.end_ms):
            raise ArchiveCorruptError(f"{key}: manifest of {m.name!r} is inconsistent")
        return m


def tier_dir(name: str) -> str:
    """The folder of a partition's tier (``raw``, ``m1``, ``h1``); ``ArchiveError`` for a
    name that is not a partition's."""
    if parse_partition(name) is None:
        raise ArchiveError(f"{name!r} is not a partition name")
    return name.split("_", 1)[0]


def manifest_key(name: str) -> str:
    return f"{tier_dir(name)}/{name}.json"


def parts_prefix(name: str) -> str:
    return f"{tier_dir(name)}/{name}/"


def part_key(name: str, index: int, sha256: str) -> str:
    return f"{parts_prefix(name)}{index:05d}-{sha256[:12]}.parquet"


def manifest_name(key: str) -> str | None:
    """The partition a key is the manifest of, or None for any other key."""
    found = _MANIFEST_KEY.match(key)
    return found.group(2) if found and found.group(2).startswith(found.group(1)) else None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A stored object: ``tag`` changes whenever its content does (an ETag, mtime + size)."""

    key: str
    size: int
    tag: str


@runtime_checkable
class ObjectStore(Protocol):
    """Objects under one root, by ``/``-separated keys. Writes are atomic: a reader sees the
    old object or the whole new one; an interrupted write leaves nothing new under the key.
    Foreign errors are raised as ``ArchiveError`` (``ObjectMissingError`` for a missing key).
    """

    url: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put_file(self, key: str, path: Path) -> None: ...

    async def put_bytes(self, key: str, data: bytes) -> None: ...

    async def get_file(self, key: str, dest: Path) -> None:
        """Download the object to ``dest`` (replaced whole)."""
        ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (only those directly under it unless
        ``recursive``), sorted by key."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys``; missing ones are not an error."""
        ...

    def open_range(self, key: str, size: int) -> IO[bytes]:
        """A seekable read-only file over the object (of ``size`` bytes) that fetches only
        what is read. Blocking: call it, and read it, in a worker thread."""
        ...


@runtime_checkable
class Archive(Protocol):
    """Archived partitions: put parts, commit a manifest, list, read, verify, delete."""

    url: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def manifests(self) -> list[Manifest]:
        """Every committed partition, oldest first. May be up to the archive's listing TTL
        old for changes made by other processes; this object's own commits show at once."""
        ...

    async def manifest(self, name: str) -> Manifest | None:
        """The committed manifest of ``name``, read now, or None."""
        ...

    async def put_part(self, key: str, path: Path) -> None:
        """Upload one part (it does not count until a manifest naming it is committed)."""
        ...

    async def verify(self, manifest: Manifest) -> None:
        """Read every part of ``manifest`` back from storage and check its size, sha256, row
        count and content checksum, and the partition's; ``ArchiveCorruptError`` if any
        differs, ``ObjectMissingError`` if a part is missing."""
        ...

    async def commit(self, manifest: Manifest) -> None:
        """Write the manifest (atomically, replacing an older one): from now on the partition
        counts as archived. Then remove objects of the partition it does not name."""
        ...

    async def fetch_part(self, part: Part, dest: Path) -> None: ...

    def open_part(self, part: Part) -> IO[bytes]:
        """Random access to one part (blocking; for worker threads)."""
        ...

    async def delete(self, name: str) -> None:
        """Forget a partition: its manifest first, then its parts."""
        ...
