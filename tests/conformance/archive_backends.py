"""Archive object stores under conformance: a folder, and S3 through moto's server mode (a
real HTTP S3 endpoint on a free port, so boto3 goes through its whole stack).

A test module that runs the S3 backend imports the fixtures it needs from here
(``moto_s3_endpoint``, ``s3_credentials``, ``s3_bucket``); the factories ask for them by
name, so they start only when an S3 case runs. Each test gets a fresh bucket, emptied and
deleted afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.config import ArchiveSettings
from sysmonstm.store.archive import ObjectStore
from sysmonstm.store.archive_registry import open_store
from tests import servers

REGION = "us-east-1"

StoreFactory = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[ObjectStore]]


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = servers.free_port()
    server = ThreadedMotoServer(ip_address=servers.LOCAL_HOST, port=port, verbose=False)
    server.start()
    servers.wait_port(port)
    yield f"http://{servers.LOCAL_HOST}:{port}"
    server.stop()


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Throwaway credentials for moto in the environment, where boto3's chain finds them;
    the machine's own AWS config and credentials files are hidden from the test."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture
def s3_bucket(moto_s3_endpoint: str, s3_credentials: None) -> Iterator[str]:
    """A fresh bucket; every object in it, and the bucket, are deleted afterwards."""
    name = servers.unique("sysmonstm-t-")
    client = _client(moto_s3_endpoint)
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys})
    client.delete_bucket(Bucket=name)


def s3_keys(endpoint: str, bucket: str) -> list[str]:
    """Every key in ``bucket``, sorted (to check what a test left behind)."""
    client = _client(endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def file_settings(tmp: Path) -> ArchiveSettings:
    return ArchiveSettings(url=f"file://{tmp / 'archive'}")


def s3_settings(request: pytest.FixtureRequest) -> ArchiveSettings:
    bucket: str = request.getfixturevalue("s3_bucket")
    endpoint: str = request.getfixturevalue("moto_s3_endpoint")
    return ArchiveSettings(
        url=f"s3://{bucket}/sysmonstm/archive", s3_endpoint_url=endpoint, s3_region=REGION
    )


SETTINGS: dict[str, Callable[[pytest.FixtureRequest, Path], ArchiveSettings]] = {
    "file": lambda _request, tmp: file_settings(tmp),
    "s3": lambda request, _tmp: s3_settings(request),
}


def _factory(kind: str) -> StoreFactory:
    @asynccontextmanager
    async def build(request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[ObjectStore]:
        store = open_store(SETTINGS[kind](request, tmp))
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    return build


STORES: dict[str, StoreFactory] = {kind: _factory(kind) for kind in SETTINGS}
