"""The archive in a local folder (``file:///var/lib/sysmonstm/archive``).

Writes go to a hidden temporary file beside the target, are fsynced, then renamed over it
(and the folder fsynced), so a crash leaves the old object or the new one, never half of
one; hidden temporaries are not listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import unquote, urlsplit

from sysmonstm.errors import ConfigError
from sysmonstm.store.archive import ArchiveError, ObjectInfo, ObjectMissingError

T = TypeVar("T")
_CHUNK = 1 << 20


def folder_of(url: str) -> Path:
    """``file:///abs/dir`` (or ``file://relative/dir``) to a path."""
    parts = urlsplit(url)
    raw = unquote((parts.netloc or "") + parts.path)
    if parts.scheme != "file" or not raw:
        raise ConfigError(f"{url!r}: a folder archive URL reads file:///path/to/folder")
    return Path(raw)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """An ``ObjectStore`` in a folder: key ``a/b.json`` is the file ``<root>/a/b.json``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = folder_of(url)

    async def open(self) -> None:
        await self._run(lambda: self.root.mkdir(parents=True, exist_ok=True))

    async def close(self) -> None:
        return None

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except ArchiveError:
            raise
        except FileNotFoundError as exc:
            raise ObjectMissingError(f"archive {self.root}: {exc.filename} is missing") from exc
        except OSError as exc:
            raise ArchiveError(f"archive {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ArchiveError(f"{key!r} is not an object key")
        return self.root.joinpath(*parts)

    def _write(self, key: str, fill: Callable[[IO[bytes]], None]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(target.parent)

    async def put_file(self, key: str, path: Path) -> None:
        def copy(f: IO[bytes]) -> None:
            with path.open("rb") as src:
                shutil.copyfileobj(src, f, _CHUNK)

        await self._run(lambda: self._write(key, copy))

    async def put_bytes(self, key: str, data: bytes) -> None:
        def write(f: IO[bytes]) -> None:
            f.write(data)

        await self._run(lambda: self._write(key, write))

    async def get_file(self, key: str, dest: Path) -> None:
        def copy() -> None:
            src = self._path(key)
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
            try:
                shutil.copyfile(src, tmp)
                tmp.replace(dest)
            finally:
                tmp.unlink(missing_ok=True)

        await self._run(copy)

    async def get_bytes(self, key: str) -> bytes:
        return await self._run(lambda: self._path(key).read_bytes())

    async def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        def walk() -> list[ObjectInfo]:
            base = prefix.rpartition("/")[0]
            folder = self._path(base) if base else self.root
            if not folder.is_dir():
                return []
            found: list[ObjectInfo] = []
            for path in folder.rglob("*") if recursive else folder.iterdir():
                rel = path.relative_to(self.root).as_posix()
                if not rel.startswith(prefix) or any(p.startswith(".") for p in rel.split("/")):
                    continue
                if (not recursive and "/" in rel[len(prefix) :]) or not path.is_file():
                    continue
                st = path.stat()
                found.append(ObjectInfo(rel, st.st_size, f"{st.st_mtime_ns}-{st.st_size}"))
            return sorted(found, key=lambda o: o.key)

        return await self._run(walk)

    async def delete(self, keys: Sequence[str]) -> None:
        def remove() -> None:
            parents: set[Path] = set()
            for key in keys:
                path = self._path(key)
                path.unlink(missing_ok=True)
                parents.add(path.parent)
            for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
                if folder != self.root:
                    with contextlib.suppress(OSError):  # not empty: other objects live there
                        folder.rmdir()

        await self._run(remove)

    def open_range(self, key: str, size: int) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectMissingError(f"archive {self.root}: {key} is missing") from exc
        except OSError as exc:
            raise ArchiveError(f"archive {self.root}: {exc}") from exc
