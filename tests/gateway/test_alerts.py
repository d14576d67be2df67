"""The alert board and GET /api/v1/alerts: seeded from warm records, kept live from the bus."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from sysmonstm.gateway import create_app
from sysmonstm.gateway.alerts import AlertBoard
from sysmonstm.runtime import Core
from tests.gateway.support import alert, alert_record, now_ms


async def active_ids(client: httpx.AsyncClient) -> list[str]:
    return [a["id"] for a in (await client.get("/api/v1/alerts")).json()["active"]]


async def until_active(client: httpx.AsyncClient, expected: list[str]) -> None:
    """Wait until the active list reads ``expected`` (the board follows the bus in the
    background)."""
    async with asyncio.timeout(5):
        while await active_ids(client) != expected:  # noqa: ASYNC110 - polls over HTTP
            await asyncio.sleep(0.01)


async def test_board_is_seeded_from_warm_records(core: Core) -> None:
    """Instances whose newest stored transition is pending or firing are active at start."""
    t = now_ms()
    records = [
        alert("a", "pending", t - 5000),
        alert("a", "firing", t - 4000),
        alert("b", "firing", t - 3000),
        alert("b", "resolved", t - 2000),
        alert("c", "pending", t - 1000, severity="critical"),
        alert("d", "pending", t - 900),
        alert("d", "cancelled", t - 800),
    ]
    await core.warm.append_records([alert_record(r) for r in records])
    app = create_app(core)
    async with app.router.lifespan_context(app):
        board: AlertBoard = app.state.alerts
        active = board.active()
    assert [(a["id"], a["state"]) for a in active] == [("a", "firing"), ("c", "pending")]


async def test_board_follows_live_transitions(core: Core, client: httpx.AsyncClient) -> None:
    """pending and firing events make an instance active; resolved removes it."""
    t = now_ms()
    await core.bus.publish("alerts.cpu_high", alert("x", "pending", t))
    await until_active(client, ["x"])
    await core.bus.publish("alerts.cpu_high", alert("x", "firing", t + 1000))
    await core.bus.publish("alerts.cpu_high", alert("y", "firing", t + 1000, severity="critical"))
    await until_active(client, ["y", "x"])
    await core.bus.publish("alerts.cpu_high", alert("x", "resolved", t + 2000))
    await until_active(client, ["y"])


async def test_board_ignores_stale_and_malformed_transitions(app: FastAPI) -> None:
    """An older transition never overrides a newer one; junk is counted, not applied."""
    board: AlertBoard = app.state.alerts
    t = now_ms()
    assert board.apply(alert("z", "resolved", t))
    assert not board.apply(alert("z", "firing", t - 1000))
    assert board.apply(alert("w", "firing", t))
    assert not board.apply(alert("w", "pending", t - 1))
    for junk in ({"id": 3, "state": "firing"}, {"id": "q", "state": "exploded"}, "text", None):
        assert not board.apply(junk)
    assert board.ignored == 4
    assert [(a["id"], a["state"]) for a in board.active()] == [("w", "firing")]


async def test_alerts_history_is_newest_first_and_limited(
    core: Core, client: httpx.AsyncClient
) -> None:
    """history holds the newest stored transitions of every state, up to history_limit."""
    t = now_ms()
    await core.warm.append_records(
        [
            alert_record(alert("h", "pending", t - 3000)),
            alert_record(alert("h", "firing", t - 2000)),
            alert_record(alert("h", "resolved", t - 1000)),
        ]
    )
    body = (await client.get("/api/v1/alerts", params={"history_limit": 2})).json()
    assert [(a["id"], a["state"]) for a in body["history"]] == [("h", "resolved"), ("h", "firing")]
    none = (await client.get("/api/v1/alerts", params={"history_limit": 0})).json()
    assert none["history"] == []


@pytest.mark.parametrize("limit", ["-1", "1001", "lots"])
async def test_alerts_history_limit_is_validated(client: httpx.AsyncClient, limit: str) -> None:
    """history_limit outside 0..1000 is a 422 naming the parameter."""
    res = await client.get("/api/v1/alerts", params={"history_limit": limit})
    assert res.status_code == 422
    assert "history_limit" in res.json()["error"]["message"]
