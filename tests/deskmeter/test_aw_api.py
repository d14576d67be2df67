"""/api/0 on the gateway (in-process ASGI): bad input gets a clear 4xx and changes nothing,
missing buckets are 404, uploads import, and the service keeps serving."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests.deskmeter.query_support import desk_core, settings_for

BEAT = {"timestamp": "2024-03-10T12:00:00Z", "duration": 0, "data": {"app": "x"}}
NEW_BUCKET = {"client": "test", "type": "currentwindow", "hostname": "desk-2"}


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    async with desk_core(settings_for(data_dir)) as opened:
        yield opened


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            assert (await c.post("/api/0/buckets/b", json=NEW_BUCKET)).status_code == 200
            yield c


def error(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error"}
    message: str = body["error"]["message"]
    return message


async def events_of(client: httpx.AsyncClient, bucket: str = "b") -> list[dict[str, Any]]:
    resp = await client.get(f"/api/0/buckets/{bucket}/events")
    assert resp.status_code == 200
    found: list[dict[str, Any]] = resp.json()
    return found


async def test_info_names_this_server_and_keeps_its_device_id(client: httpx.AsyncClient) -> None:
    """``/info`` has aw-server's keys; not a testing server; the device id is stable."""
    first = (await client.get("/api/0/info")).json()
    assert set(first) == {"hostname", "version", "testing", "device_id"}
    assert first["testing"] is False
    assert "sysmonstm" in first["version"]
    assert (await client.get("/api/0/info")).json()["device_id"] == first["device_id"]


@pytest.mark.parametrize(
    ("params", "body", "message"),
    [
        ({}, BEAT, "Missing required parameter pulsetime"),
        ({"pulsetime": "soon"}, BEAT, "pulsetime must be a number"),
        ({"pulsetime": "nan"}, BEAT, "finite"),
        ({"pulsetime": "1"}, {"duration": 1}, "heartbeat.timestamp is required"),
        ({"pulsetime": "1"}, {**BEAT, "timestamp": "garbage"}, "not an ISO 8601"),
        ({"pulsetime": "1"}, {**BEAT, "duration": "long"}, "number of seconds"),
        ({"pulsetime": "1"}, {**BEAT, "data": "x"}, "must be a JSON object"),
        ({"pulsetime": "1"}, "[", "not valid JSON"),
    ],
)
async def test_bad_heartbeats_are_refused_and_change_nothing(
    client: httpx.AsyncClient, params: dict[str, str], body: Any, message: str
) -> None:
    """400 with the reason; the bucket keeps exactly its one event; later heartbeats work."""
    assert (await client.post("/api/0/buckets/b/heartbeat?pulsetime=5", json=BEAT)).is_success
    before = await events_of(client)
    content = body if isinstance(body, str) else json.dumps(body)
    resp = await client.post(
        "/api/0/buckets/b/heartbeat",
        params=params,
        content=content,
        headers={"content-type": "application/json"},
    )
    assert message in error(resp, 400)
    assert await events_of(client) == before
    later = {**BEAT, "timestamp": "2024-03-10T12:00:03Z"}
    merged = await client.post("/api/0/buckets/b/heartbeat?pulsetime=5", json=later)
    assert merged.json()["duration"] == 3.0


async def test_missing_buckets_are_404_everywhere(client: httpx.AsyncClient) -> None:
    """Every call about a bucket that does not exist answers 404 naming it."""
    calls = [
        client.get("/api/0/buckets/nope"),
        client.get("/api/0/buckets/nope/events"),
        client.get("/api/0/buckets/nope/events/count"),
        client.get("/api/0/buckets/nope/events/1"),
        client.delete("/api/0/buckets/nope/events/1"),
        client.post("/api/0/buckets/nope/events", json=[BEAT]),
        client.post("/api/0/buckets/nope/heartbeat?pulsetime=1", json=BEAT),
        client.get("/api/0/buckets/nope/export"),
        client.delete("/api/0/buckets/nope?force=1"),
    ]
    for call in calls:
        assert "nope" in error(await call, 404)
    assert "no route" in error(await client.get("/api/0/nothing-here"), 404)


async def test_bucket_creation_needs_its_fields_and_deletion_needs_force(
    client: httpx.AsyncClient,
) -> None:
    """A bucket body without ``type`` is refused and creates nothing; deleting without
    ``force=1`` is refused (401) and keeps the bucket; with it, the bucket goes."""
    bad = await client.post("/api/0/buckets/c", json={"client": "x", "hostname": "h"})
    assert "bucket.type must be a string" in error(bad, 400)
    assert "c" not in (await client.get("/api/0/buckets/")).json()
    assert "force=1" in error(await client.delete("/api/0/buckets/b"), 401)
    assert (await client.get("/api/0/buckets/b")).status_code == 200
    assert (await client.delete("/api/0/buckets/b?force=1")).json() == {}
    assert list((await client.get("/api/0/buckets/")).json()) == []


async def test_bad_event_lists_and_ranges_are_refused(client: httpx.AsyncClient) -> None:
    """One bad event in a list refuses the whole list; unreadable bounds and limits are
    refused; nothing is stored."""
    good = {"timestamp": "2024-03-10T12:00:00Z", "duration": 1}
    resp = await client.post("/api/0/buckets/b/events", json=[good, {"duration": 2}])
    assert "events[1].timestamp is required" in error(resp, 400)
    assert "must be an event or a list" in error(
        await client.post("/api/0/buckets/b/events", json=5), 400
    )
    assert await events_of(client) == []
    assert "start: not an ISO 8601" in error(
        await client.get("/api/0/buckets/b/events", params={"start": "monday"}), 400
    )
    assert error(await client.get("/api/0/buckets/b/events", params={"limit": "all"}), 422)
    assert (await client.post("/api/0/buckets/b/events", json=good)).json() is None
    assert (await client.get("/api/0/buckets/b/events/count")).json() == 1


async def test_web_ui_upload_imports_and_feeds_deskmeter(
    client: httpx.AsyncClient, core: Core
) -> None:
    """The web UI's form upload (multipart) imports like a JSON body; an AFK bucket alone
    still gives the host's idle and active time."""
    export = {
        "buckets": {
            "aw-watcher-afk_desk-2": {
                "id": "aw-watcher-afk_desk-2",
                "created": "2024-05-06T09:00:00+00:00",
                "type": "afkstatus",
                "client": "aw-watcher-afk",
                "hostname": "desk-2",
                "events": [
                    {"timestamp": "2024-05-06T10:10:00+00:00", "duration": 300.0,
                     "data": {"status": "afk"}},
                    {"timestamp": "2024-05-06T10:00:00+00:00", "duration": 600.0,
                     "data": {"status": "not-afk"}},
                ],
            }
        }
    }  # fmt: skip
    files = {"file": ("aw-buckets-export.json", json.dumps(export), "application/json")}
    resp = await client.post("/api/0/import", files=files)
    assert resp.status_code == 200, resp.text
    got = (await client.get("/api/0/buckets/aw-watcher-afk_desk-2/events")).json()
    assert [(e["timestamp"], e["duration"]) for e in got] == [
        ("2024-05-06T10:10:00+00:00", 300.0),
        ("2024-05-06T10:00:00+00:00", 600.0),
    ]
    store = await interval_store(core)
    start = 1_714_989_600_000  # 2024-05-06 10:00 UTC
    intervals = await store.intervals(start, start + 3_600_000, "aw:desk-2")
    assert [(i.start_ms - start, i.end_ms - start, i.workspace, i.idle) for i in intervals] == [
        (0, 600_000, "", False),
        (600_000, 900_000, "", True),
    ]


async def test_bad_imports_name_the_fault_and_import_nothing(client: httpx.AsyncClient) -> None:
    """An export with one bad event is refused whole, saying where the fault is."""
    export = {
        "buckets": {
            "ok": {**NEW_BUCKET, "id": "ok", "created": "2024-05-06T09:00:00Z", "events": []},
            "bad": {
                **NEW_BUCKET,
                "id": "bad",
                "created": "2024-05-06T09:00:00Z",
                "events": [{"timestamp": "2024-05-06T10:00:00Z", "duration": None}],
            },
        }
    }
    message = error(await client.post("/api/0/import", json=export), 400)
    assert "buckets['bad'].events[0].duration" in message
    assert sorted((await client.get("/api/0/buckets/")).json()) == ["b"]
    assert "no file" in error(await client.post("/api/0/import", files={"field": (None, "x")}), 400)
