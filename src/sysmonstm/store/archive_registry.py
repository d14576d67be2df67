"""Pick the archive's object store by URL scheme: ``file://`` (a folder) or ``s3://``."""

from __future__ import annotations

from collections.abc import Callable

from sysmonstm.config import ArchiveSettings
from sysmonstm.schemes import by_scheme
from sysmonstm.store.archive import Archive, ObjectStore

StoreFactory = Callable[[ArchiveSettings], ObjectStore]


def _file_store(settings: ArchiveSettings) -> ObjectStore:
    from sysmonstm.store.archive_file import FileStore

    return FileStore(settings.url)


def _s3_store(settings: ArchiveSettings) -> ObjectStore:
    from sysmonstm.store.archive_s3 import S3Store

    return S3Store(settings.url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)


STORES: dict[str, StoreFactory] = {"file": _file_store, "s3": _s3_store}


def open_store(settings: ArchiveSettings) -> ObjectStore:
    """The object store ``settings.url`` names (not yet opened)."""
    return by_scheme("archive backend", settings.url, STORES)(settings)


def open_archive(settings: ArchiveSettings) -> Archive | None:
    """The archive ``settings`` name (not yet opened), or None when ``url`` is empty."""
    if not settings.url:
        return None
    from sysmonstm.store.archive_store import ObjectArchive

    return ObjectArchive(open_store(settings))
