"""Gateway fixtures: a real core (memory bus, memory hot tier, SQLite warm tier in a tmp
dir), the app with its lifespan running, an httpx client over ASGI, a served gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests.gateway.support import gateway_settings, served


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    opened = await Core.open(gateway_settings(data_dir))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def app(core: Core) -> AsyncIterator[FastAPI]:
    application = create_app(core)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c


@pytest.fixture
async def gateway_url(core: Core) -> AsyncIterator[str]:
    async with served(core) as url:
        yield url
