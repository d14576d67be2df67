"""POST /api/v1/deskmeter/events (the GNOME Shell extension on Wayland) through a real
aggregator over gRPC: stored once and answered, replays harmless, refusals carry the
aggregator's reason and leave nothing, no aggregator means 503."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests.aggregator_fixtures import running_aggregator
from tests.conftest import free_port
from tests.deskmeter.query_support import BERLIN, desk_core, settings_for

NOW = time.time_ns() // 1_000_000 - 120_000  # two minutes back: well inside what is accepted
EVENTS = "/api/v1/deskmeter/events"


def body(seq: int, *events: dict[str, Any], machine: str = "wl-1") -> dict[str, Any]:
    return {
        "machine": machine,
        "host": "wayland-laptop",
        "time_zone": BERLIN,
        "heartbeat_ms": 10_000,
        "sequence": seq,
        "events": list(events),
    }


def event(t_ms: int, kind: str = "switch", workspace: str = "Code", **extra: Any) -> dict[str, Any]:
    return {
        "time_ms": t_ms,
        "kind": kind,
        "workspace_index": 1,
        "workspace": workspace,
        "task": "Project X",
        "idle": False,
        "idle_ms": 400,
    } | extra


@contextlib.asynccontextmanager
async def gateway_over(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    """An aggregator with the Deskmeter ingest; the gateway forwards to a dead address
    first, then to it (failover)."""
    listen = f"127.0.0.1:{free_port()}"
    dead = f"127.0.0.1:{free_port()}"
    settings = settings_for(
        data_dir, aggregator={"listen": listen}, deskmeter={"aggregators": [dead, listen]}
    )
    async with running_aggregator(settings) as opened:
        yield opened


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_over(core) as c:
        yield c


async def intervals(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/deskmeter/intervals", params={"from": str(NOW - 60_000), "machine": "wl-1"}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["intervals"]
    return found


async def test_a_batch_is_stored_and_published_before_the_answer(
    core: Core, client: httpx.AsyncClient
) -> None:
    """200 with the machine's stored sequence once the aggregator acked; the interval is in
    the store and the switch went out on the bus, as for a watcher's batch."""
    sub = await core.bus.subscribe("workspace.switch.wl-1")
    try:
        response = await client.post(
            EVENTS, json=body(1, event(NOW), event(NOW + 10_000, "heartbeat"))
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"stored_through": 1}
        published = await asyncio.wait_for(anext(aiter(sub)), 5)
    finally:
        await sub.close()
    assert published.payload["host"] == "wayland-laptop"
    assert published.payload["task"] == "Project X"
    stored = {
        "machine": "wl-1",
        "start_ms": NOW,
        "end_ms": NOW + 10_000,
        "duration_s": 10.0,
        "workspace_index": 1,
        "workspace": "Code",
        "task": "Project X",
        "idle": False,
        "open": True,
        "time_zone": BERLIN,
    }
    assert await intervals(client) == [stored]
    assert core.hot.degraded is False  # /current answers from the hot tier's state
    now = await client.get("/api/v1/deskmeter/current", params={"machine": "wl-1"})
    assert now.json()["current"] == [stored | {"host": "wayland-laptop"}]


async def test_a_replayed_batch_is_acknowledged_and_not_counted_twice(
    client: httpx.AsyncClient,
) -> None:
    """The extension resending a batch (a lost answer) gets the same answer; nothing doubles."""
    first = body(1, event(NOW), event(NOW + 10_000, "heartbeat"))
    assert (await client.post(EVENTS, json=first)).json() == {"stored_through": 1}
    second = body(2, event(NOW + 20_000, workspace="Mail"))
    assert (await client.post(EVENTS, json=second)).json() == {"stored_through": 2}
    before = await intervals(client)
    again = await client.post(EVENTS, json=first)
    assert again.status_code == 200, again.text
    assert again.json() == {"stored_through": 2}
    assert await intervals(client) == before
    assert [(i["workspace"], i["duration_s"]) for i in before] == [("Code", 20.0), ("Mail", 0.0)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            body(2, event(NOW - 30_000)),
            "before the machine's last applied event",
        ),
        (
            body(2, event(NOW + 20_000)) | {"time_zone": "Mars/Olympus"},
            "time_zone 'Mars/Olympus' is not an IANA time zone",
        ),
    ],
    ids=["older-than-stored", "unknown-zone"],
)
async def test_a_refused_batch_answers_400_with_the_aggregators_reason(
    client: httpx.AsyncClient, bad: dict[str, Any], reason: str
) -> None:
    """The aggregator's refusal comes back as 400; nothing of the batch is stored and the
    next good batch is taken."""
    assert (await client.post(EVENTS, json=body(1, event(NOW)))).status_code == 200
    response = await client.post(EVENTS, json=bad)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_argument"
    assert reason in error["message"]
    assert [i["start_ms"] for i in await intervals(client)] == [NOW]
    good = await client.post(EVENTS, json=body(2, event(NOW + 30_000, workspace="Web")))
    assert good.json() == {"stored_through": 2}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"events": [event(NOW, "jump")]}, "events.0.kind"),
        ({"sequence": 0}, "sequence"),
        ({"events": []}, "events"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_a_malformed_body_is_refused_before_forwarding(
    client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    """Shape errors answer 422 naming the field; nothing reaches the aggregator."""
    response = await client.post(EVENTS, json=body(1, event(NOW)) | patch)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert await intervals(client) == []


async def test_no_reachable_aggregator_answers_503(data_dir: Path) -> None:
    """With no aggregator listening the answer is 503 naming the addresses tried."""
    dead = f"127.0.0.1:{free_port()}"
    settings = settings_for(data_dir, deskmeter={"aggregators": [dead]})
    async with desk_core(settings) as core, gateway_over(core) as client:
        response = await client.post(EVENTS, json=body(1, event(NOW)))
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert error["message"].startswith(f"no aggregator stored the batch ({dead}: UNAVAILABLE")
