"""The archive in any S3-compatible bucket (``s3://bucket/prefix``; AWS, MinIO, Ceph, moto).

boto3 runs in a small thread pool of its own. Credentials come only from boto3's usual chain
(environment, shared config and credentials files, instance or container roles): never from
the URL or our settings, and nothing here logs them. A ``PutObject`` or a completed
multipart upload replaces an object whole, which is the atomicity ``ObjectStore`` asks for.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

from sysmonstm.errors import ConfigError
from sysmonstm.store.archive import ArchiveError, ObjectInfo, ObjectMissingError

T = TypeVar("T")
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DELETE_BATCH = 1000


def bucket_and_prefix(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` to ``("bucket", "some/prefix/")`` (prefix may be empty)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"{url!r}: an S3 archive URL reads s3://bucket/prefix")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            "an S3 archive URL holds only the bucket and prefix; credentials come from the "
            "environment or the AWS config files"
        )
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def _convert(exc: Exception, what: str) -> ArchiveError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or code
        if code in _MISSING:
            return ObjectMissingError(f"{what}: no such object")
        return ArchiveError(f"{what}: {code}: {message}")
    return ArchiveError(f"{what}: {type(exc).__name__}: {exc}")


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable file over one S3 object: each read is one ranged GET."""

    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._client, self._bucket, self._key, self._size = client, bucket, key, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._size - self._pos)
        if n <= 0:
            return 0
        try:
            got = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{self._pos + n - 1}"
            )
            data = got["Body"].read()
        except Exception as exc:
            raise _convert(exc, f"s3://{self._bucket}/{self._key}") from exc
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


class S3Store:
    """An ``ObjectStore`` in a bucket: key ``a/b.json`` is ``<prefix>a/b.json``."""

    def __init__(
        self, url: str, *, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self.url = url
        self.bucket, self.prefix = bucket_and_prefix(url)
        self.endpoint_url = endpoint_url
        self.region = region
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="archive-s3")
        self._client: Any = None

    async def open(self) -> None:
        """Create the client (no request is made yet)."""

        def make() -> Any:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"max_attempts": 5, "mode": "standard"},
                # S3-compatible stores differ in the checksums they accept; every part is
                # verified against its own sha256 after upload anyway
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            return boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
            )

        self._client = await self._run(make, "connect")

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        client, self._client = self._client, None
        if client is not None:
            client.close()  # its connection pool

    async def _run(self, fn: Callable[[], T], what: str) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except ArchiveError:
            raise
        except Exception as exc:  # botocore's tree and the transfer manager's errors
            raise _convert(exc, f"s3://{self.bucket}/{self.prefix} {what}") from exc

    @property
    def client(self) -> Any:
        if self._client is None:
            raise ArchiveError(f"{self.url}: the archive is not open")
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def put_file(self, key: str, path: Path) -> None:
        client = self.client
        await self._run(lambda: client.upload_file(str(path), self.bucket, self._key(key)), key)

    async def put_bytes(self, key: str, data: bytes) -> None:
        client = self.client
        await self._run(
            lambda: client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data), key
        )

    async def get_file(self, key: str, dest: Path) -> None:
        client = self.client
        await self._run(lambda: client.download_file(self.bucket, self._key(key), str(dest)), key)

    async def get_bytes(self, key: str) -> bytes:
        client = self.client

        def get() -> bytes:
            body = client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return await self._run(get, key)

    async def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        client = self.client

        def walk() -> list[ObjectInfo]:
            args = {"Bucket": self.bucket, "Prefix": self._key(prefix)}
            if not recursive:
                args["Delimiter"] = "/"
            found: list[ObjectInfo] = []
            for page in client.get_paginator("list_objects_v2").paginate(**args):
                found.extend(
                    ObjectInfo(o["Key"][len(self.prefix) :], int(o["Size"]), str(o["ETag"]))
                    for o in page.get("Contents", [])
                )
            return sorted(found, key=lambda o: o.key)

        return await self._run(walk, f"list {prefix}")

    async def delete(self, keys: Sequence[str]) -> None:
        client = self.client

        def remove() -> None:
            for i in range(0, len(keys), _DELETE_BATCH):
                batch = [{"Key": self._key(k)} for k in keys[i : i + _DELETE_BATCH]]
                got = client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
                failed = [e for e in got.get("Errors", []) if e.get("Code") not in _MISSING]
                if failed:
                    first = failed[0]
                    raise ArchiveError(
                        f"s3://{self.bucket}: cannot delete {first.get('Key')}: "
                        f"{first.get('Code')}: {first.get('Message')}"
                    )

        if keys:
            await self._run(remove, "delete")

    def open_range(self, key: str, size: int) -> IO[bytes]:
        return io.BufferedReader(S3RangeFile(self.client, self.bucket, self._key(key), size))
