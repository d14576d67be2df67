"""Fixtures for tests on real servers (see ``tests/servers.py``).

Set ``SYSMONSTM_TEST_OWN_SERVERS=1`` to ignore the machine's services and start throwaway
ones, as on a fresh machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import servers

if TYPE_CHECKING:
    import redis.asyncio as aioredis

OWN = os.environ.get("SYSMONSTM_TEST_OWN_SERVERS") == "1"


def _dsn_for(server_dsn: str, database: str) -> str:
    return server_dsn.rsplit("/", 1)[0] + f"/{database}"


async def _admin(server_dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    """A PostgreSQL server DSN (its ``postgres`` database): the machine's or a throwaway."""
    local = None if OWN else servers.local_postgres_dsn()
    if local is not None:
        yield local
        return
    root = Path(tempfile.mkdtemp(prefix="sysmonstm-pg-"))  # outside pytest's 0700 tree
    os.chmod(root, 0o755)
    pg = servers.postgres_server(root / "pg").start()
    yield pg.dsn
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dsn(postgres_server_dsn: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = servers.unique("sysmonstm_t_")
    asyncio.run(_admin(postgres_server_dsn, f'CREATE DATABASE "{name}"'))
    yield _dsn_for(postgres_server_dsn, name)
    asyncio.run(_admin(postgres_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    local = None if OWN else servers.local_redis_url()
    if local is not None:
        yield local
        return
    server = servers.redis_server(tmp_path_factory.mktemp("redis"))
    server.start()
    yield f"redis://{servers.LOCAL_HOST}:{server.port}/0"
    server.stop()


@pytest.fixture
def redis_prefix(redis_server_url: str) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted afterwards."""
    prefix = servers.unique("sysmonstm-t-") + ":"
    yield prefix

    async def clean() -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(redis_server_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(clean())


@pytest.fixture
async def rc(redis_server_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the Redis server, to look at what a test left there."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_server_url)
    try:
        yield client
    finally:
        await client.aclose()


async def keys_under(rc: aioredis.Redis, prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` (without it) and its TTL in ms (-1: none)."""
    found = [k.decode() async for k in rc.scan_iter(match=f"{prefix}*", count=1000)]
    return {k.removeprefix(prefix): int(await rc.pttl(k)) for k in found}


@pytest.fixture(scope="session")
def nats_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    local = None if OWN else servers.local_nats_url()
    if local is not None:
        yield local
        return
    server = servers.nats_server(tmp_path_factory.mktemp("nats"))
    server.start()
    yield f"nats://{servers.LOCAL_HOST}:{server.port}"
    server.stop()


@pytest.fixture
def nats_prefix(nats_server_url: str) -> Iterator[str]:
    """A unique stream-name prefix; streams named with it are deleted afterwards."""
    prefix = servers.unique("SYSMONSTM_T_").upper()
    yield prefix

    async def clean() -> None:
        import nats

        nc = await nats.connect(nats_server_url)
        try:
            js = nc.jetstream()
            for info in await js.streams_info():
                if info.config.name and info.config.name.startswith(prefix):
                    await js.delete_stream(info.config.name)
        finally:
            await nc.close()

    asyncio.run(clean())


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory outside pytest's private tree, for a server that runs as ``nobody``."""
    root = Path(tempfile.mkdtemp(prefix="sysmonstm-srv-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)
