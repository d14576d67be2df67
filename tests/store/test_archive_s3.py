"""The S3 store's edges: its URL, its errors (converted, and never carrying credentials),
and the registry that picks a store by scheme."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysmonstm.config import ArchiveSettings
from sysmonstm.errors import ConfigError, UnknownBackendError
from sysmonstm.store.archive import ArchiveError, ObjectMissingError
from sysmonstm.store.archive_file import FileStore, folder_of
from sysmonstm.store.archive_registry import open_archive, open_store
from sysmonstm.store.archive_s3 import S3Store, bucket_and_prefix
from tests.conformance.archive_backends import (  # noqa: F401  (fixtures asked for by name)
    REGION,
    moto_s3_endpoint,
    s3_bucket,
    s3_credentials,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/a/b/", ("bucket", "a/b/")),
        ("s3://bucket/a/b", ("bucket", "a/b/")),
    ],
)
def test_an_s3_url_names_a_bucket_and_a_prefix(url: str, expected: tuple[str, str]) -> None:
    assert bucket_and_prefix(url) == expected


@pytest.mark.parametrize(
    "url", ["s3://", "s3://key:secret@bucket/x", "s3://bucket/x?token=1", "file:///x"]
)
def test_an_s3_url_with_anything_else_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        bucket_and_prefix(url)
    assert "secret" not in str(caught.value)


def test_the_registry_picks_a_store_by_scheme(tmp_path: Path) -> None:
    assert open_archive(ArchiveSettings()) is None
    assert isinstance(open_store(ArchiveSettings(url=f"file://{tmp_path}")), FileStore)
    assert isinstance(open_store(ArchiveSettings(url="s3://b/p")), S3Store)
    with pytest.raises(UnknownBackendError, match="file://, s3://"):
        open_store(ArchiveSettings(url="gs://bucket/x"))
    assert folder_of("file:///var/lib/x") == Path("/var/lib/x")


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> str:
    """moto's endpoint, with throwaway credentials in the environment."""
    request.getfixturevalue("s3_credentials")
    return str(request.getfixturevalue("moto_s3_endpoint"))


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("s3_bucket"))


async def test_a_missing_bucket_is_an_archive_error_without_credentials(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-shown-secret")
    store = S3Store("s3://no-such-bucket-here/x", endpoint_url=endpoint, region=REGION)
    await store.open()
    try:
        for attempt in (store.get_bytes("a.json"), store.put_bytes("a.json", b"{}")):
            with pytest.raises(ArchiveError) as caught:
                await attempt
            assert "NoSuchBucket" in str(caught.value)
            assert "never-shown-secret" not in str(caught.value)
            assert "testing" not in str(caught.value)
    finally:
        await store.close()


async def test_a_missing_key_is_object_missing(endpoint: str, bucket: str) -> None:
    store = S3Store(f"s3://{bucket}/p", endpoint_url=endpoint, region=REGION)
    await store.open()
    try:
        with pytest.raises(ObjectMissingError):
            await store.get_bytes("raw/raw_20260601.json")
        with pytest.raises(ObjectMissingError):
            store.open_range("raw/none.parquet", 10).read(5)
    finally:
        await store.close()


async def test_a_store_that_is_not_open_says_so() -> None:
    store = S3Store("s3://bucket/p")
    with pytest.raises(ArchiveError, match="not open"):
        await store.get_bytes("x")
    await store.close()


def test_keys_cannot_leave_the_folder(tmp_path: Path) -> None:
    store = FileStore(f"file://{tmp_path}")
    for key in ("../x", "/etc/passwd", "a//b", "a/./b", ""):
        with pytest.raises(ArchiveError, match="not an object key"):
            store.open_range(key, 1)
