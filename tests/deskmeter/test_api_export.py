"""Deskmeter REST exports (CSV and JSON, streamed, paged) and setting a task, over a real
interval store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest

from sysmonstm.domains.deskmeter.export import iter_intervals
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.runtime import Core
from tests.deskmeter.api_fixtures import client, core, get, warm_url
from tests.deskmeter.query_support import (
    BERLIN,
    HB,
    LONG_HEARTBEAT_MS,
    Step,
    batch,
    berlin_ms,
    seed,
)

__all__ = ["client", "core", "warm_url"]  # fixtures used by the tests below


async def test_export_csv_streams_every_interval_of_the_range(client: httpx.AsyncClient) -> None:
    """CSV with a header, local times in the machine's zone, and a download name."""
    response = await client.get(
        "/api/v1/deskmeter/export",
        params={
            "from": "2026-03-29 14:00",
            "to": "2026-03-29 16:30",
            "machine": "m-a",
            "tz": BERLIN,
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    start, end = berlin_ms("2026-03-29 14:00"), berlin_ms("2026-03-29 16:30")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="deskmeter-{start}-{end}.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        [
            "machine",
            "start_ms",
            "end_ms",
            "start_local",
            "end_local",
            "time_zone",
            "duration_s",
            "workspace_index",
            "workspace",
            "task",
            "idle",
            "open",
        ],
        [
            "m-a",
            str(start),
            str(berlin_ms("2026-03-29 15:30")),
            "2026-03-29T14:00:00.000+02:00",
            "2026-03-29T15:30:00.000+02:00",
            BERLIN,
            "5400.000",
            "0",
            "Code",
            "Project X",
            "false",
            "false",
        ],
        [
            "m-a",
            str(berlin_ms("2026-03-29 15:30")),
            str(berlin_ms("2026-03-29 16:00")),
            "2026-03-29T15:30:00.000+02:00",
            "2026-03-29T16:00:00.000+02:00",
            BERLIN,
            "1800.000",
            "0",
            "Code",
            "Project X",
            "true",
            "false",
        ],
        [
            "m-a",
            str(berlin_ms("2026-03-29 16:00")),
            str(end),
            "2026-03-29T16:00:00.000+02:00",
            "2026-03-29T16:30:00.000+02:00",
            BERLIN,
            "1800.000",
            "2",
            "Web",
            "Project Y",
            "false",
            "true",
        ],
    ]


async def test_export_json_matches_the_intervals_answer(client: httpx.AsyncClient) -> None:
    """The JSON export holds the same intervals as ``/intervals`` for the same range."""
    params = {"from": "2026-03-28", "to": "2026-03-30", "tz": BERLIN}
    response = await client.get("/api/v1/deskmeter/export", params=params | {"format": "json"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('.json"')
    body = response.json()
    listed = await get(client, "/intervals", **params)
    assert body == {
        "from_ms": listed["from_ms"],
        "to_ms": listed["to_ms"],
        "machine": None,
        "intervals": listed["intervals"],
    }
    assert len(body["intervals"]) == 6


async def test_export_pages_give_each_interval_once(core: Core) -> None:
    """Paging by start (pages of 2) with three machines switching at the same instants gives
    the same intervals as one read, each once."""
    t0 = berlin_ms("2026-05-04 09:00")
    batches = [
        batch(
            m,
            1,
            [Step(t0 + k * 60_000, f"W{k}", f"T{k}", k) for k in range(5)]
            + [Step(t0 + 5 * 60_000, "W4", "T4", 4, kind=HB)],
            heartbeat_ms=LONG_HEARTBEAT_MS,
        )
        for m in ("m-x", "m-y", "m-z")
    ]
    await seed(core, batches)
    store = await interval_store(core)
    lo, hi = t0 + 30_000, t0 + 4 * 60_000 + 30_000
    paged = [i async for i in iter_intervals(store, lo, hi, page=2)]
    whole = await store.intervals(lo, hi)
    assert [(i.machine, i.start_ms, i.end_ms) for i in paged] == [
        (i.machine, i.start_ms, i.end_ms) for i in whole
    ]
    assert len(paged) == 15
    assert paged[0].start_ms == lo


async def test_put_task_publishes_for_the_watcher(core: Core, client: httpx.AsyncClient) -> None:
    """PUT /task answers 202 and publishes deskmeter.task.<machine> with the task."""
    sub = await core.bus.subscribe("deskmeter.task.>")
    try:
        response = await client.put(
            "/api/v1/deskmeter/task", json={"machine": "m-a", "task": "  Project Z "}
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["machine"] == "m-a"
        assert body["task"] == "Project Z"
        envelope = await asyncio.wait_for(anext(aiter(sub)), 5)
        assert envelope.topic == "deskmeter.task.m-a"
        assert envelope.payload == body
    finally:
        await sub.close()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"machine": "m-unknown", "task": "X"}, 404, "no machine 'm-unknown'"),
        ({"machine": "m a", "task": "X"}, 400, "is not a machine id"),
        ({"machine": "m-a", "task": "bell\x07"}, 400, "control characters"),
        ({"machine": "m-a"}, 422, "task: Field required"),
        ({"machine": "m-a", "task": "x" * 201}, 422, "at most 200 characters"),
    ],
)
async def test_put_task_refuses_bad_requests(
    core: Core, client: httpx.AsyncClient, body: dict[str, str], status: int, message: str
) -> None:
    """Unknown machines, bad ids, control characters and missing fields publish nothing."""
    sub = await core.bus.subscribe("deskmeter.task.>")
    try:
        response = await client.put("/api/v1/deskmeter/task", json=body)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"]
        await client.put("/api/v1/deskmeter/task", json={"machine": "m-b", "task": "ok"})
        envelope = await asyncio.wait_for(anext(aiter(sub)), 5)
        assert envelope.payload["machine"] == "m-b"  # the refused request left nothing before
    finally:
        await sub.close()
