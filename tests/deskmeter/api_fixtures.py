"""The Deskmeter REST tests' app: the gateway over a real interval store (SQLite, or a
throwaway PostgreSQL database) seeded with ``dst_day_batches``, and reading helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests.deskmeter.query_support import (
    BERLIN,
    UTC_1200,
    berlin_ms,
    desk_core,
    dst_day_batches,
    seed,
    settings_for,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def warm_url(request: pytest.FixtureRequest) -> str | None:
    """Where the interval store lives: SQLite under the data dir, or a fresh PostgreSQL
    database (a sync fixture: ``pg_dsn`` creates it outside the event loop)."""
    if request.param == "postgresql":
        dsn: str = request.getfixturevalue("pg_dsn")
        return dsn
    return None


@pytest.fixture
async def core(warm_url: str | None, data_dir: Path) -> AsyncIterator[Core]:
    async with desk_core(settings_for(data_dir, warm_url)) as opened:
        await seed(opened, dst_day_batches())
        yield opened


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


def iv(
    machine: str,
    start: int,
    end: int,
    index: int,
    workspace: str,
    task: str,
    *,
    idle: bool = False,
    open_: bool = False,
    tz: str = BERLIN,
) -> dict[str, Any]:
    return {
        "machine": machine,
        "start_ms": start,
        "end_ms": end,
        "duration_s": (end - start) / 1000,
        "workspace_index": index,
        "workspace": workspace,
        "task": task,
        "idle": idle,
        "open": open_,
        "time_zone": tz,
    }


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(f"/api/v1/deskmeter{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def refused(client: httpx.AsyncClient, path: str, **params: Any) -> str:
    response = await client.get(f"/api/v1/deskmeter{path}", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["code"] == "invalid_argument"
    message: str = body["error"]["message"]
    return message


M_A_OPEN = iv(
    "m-a",
    berlin_ms("2026-03-29 16:00"),
    berlin_ms("2026-03-29 17:00"),
    2,
    "Web",
    "Project Y",
    open_=True,
)
M_B_OPEN = iv("m-b", UTC_1200, UTC_1200 + 5_400_000, 3, "Docs", "Project X", open_=True, tz="UTC")
