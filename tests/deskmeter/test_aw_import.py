"""An export made by ActivityWatch's own server imports: faithfully into /api/0, and as
Deskmeter intervals of machine aw:<host> (``sysmonstm deskmeter import-aw`` and
``POST /api/0/import``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmonstm.domains.deskmeter.model import Interval
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from tests.deskmeter.aw_venv import (
    CLIENT_SCRIPT,
    run_aw_script,
    start_aw_server,
    stop_aw_server,
)
from tests.deskmeter.query_support import cli_env, desk_core, run_cli, settings_for

pytestmark = pytest.mark.e2e

MACHINE = "aw:desk-1"
RULES = [{"workspace": "Code", "task": "Project X"}]


def utc_ms(hhmm: str) -> int:
    hour, minute = map(int, hhmm.split(":"))
    return int(datetime(2024, 5, 6, hour, minute, tzinfo=UTC).timestamp() * 1000)


def expected(zone: str) -> list[Interval]:
    """desk-1's hour (see ``aw_client_script.watchers``): Code, firefox, firefox while away,
    then after a 30-minute gap Code again (its interval still open: the last one heard)."""
    return [
        Interval(MACHINE, utc_ms("10:00"), utc_ms("10:20"), 0, "Code", "Project X", False,
                 time_zone=zone),
        Interval(MACHINE, utc_ms("10:20"), utc_ms("10:25"), 0, "firefox", "", False,
                 time_zone=zone),
        Interval(MACHINE, utc_ms("10:25"), utc_ms("10:30"), 0, "firefox", "", True,
                 time_zone=zone),
        Interval(MACHINE, utc_ms("11:00"), utc_ms("11:10"), 0, "Code", "Project X", False,
                 open=True, time_zone=zone),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def aw_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What aw-server exports after aw-client sent it an hour of watcher heartbeats."""
    home = tmp_path_factory.mktemp("aw-export")
    server = start_aw_server(home / "server")
    try:
        args = ["watchers", "127.0.0.1", str(server.port)]
        export: dict[str, Any] = run_aw_script(CLIENT_SCRIPT, args, home / "client")["export"]
    finally:
        stop_aw_server(server)
    return export


async def stored_intervals(core: Core) -> list[Interval]:
    store = await interval_store(core)
    return await store.intervals(utc_ms("09:00"), utc_ms("12:00"), MACHINE)


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    async with desk_core(settings_for(data_dir, deskmeter={"task_rules": RULES})) as opened:
        yield opened


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            yield c


async def test_cli_imports_aw_server_export_twice_without_doubling(
    aw_export: dict[str, Any], data_dir: Path, tmp_path: Path
) -> None:
    """``import-aw`` stores the buckets as aw-server exported them and desk-1's intervals;
    a second run skips the buckets and adds nothing."""
    path = tmp_path / "aw-buckets-export.json"
    path.write_text(json.dumps(aw_export))
    env = cli_env(data_dir, "http://127.0.0.1:9", DESKMETER__TASK_RULES=json.dumps(RULES))
    args = ["deskmeter", "import-aw", str(path), "--time-zone", "Europe/Berlin"]
    first = await run_cli(args, env)
    assert first.code == 0, first.err
    assert "3 bucket(s) imported with" in first.out
    assert f"machine {MACHINE} (host desk-1):" in first.out
    second = await run_cli(args, env)
    assert second.code == 0, second.err
    assert "0 bucket(s) imported with 0 event(s), 3 present already" in second.out
    assert f"machine {MACHINE} (host desk-1): nothing new" in second.out

    settings = settings_for(data_dir, deskmeter={"task_rules": RULES})
    async with desk_core(settings) as core:
        assert await stored_intervals(core) == expected("Europe/Berlin")
        app = create_app(core)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                ours = (await c.get("/api/0/export")).json()
    assert ours == aw_export


async def test_post_import_serves_buckets_and_intervals(
    aw_export: dict[str, Any], client: httpx.AsyncClient, core: Core
) -> None:
    """``POST /api/0/import`` takes aw-server's export whole; the buckets read back as
    exported and desk-1's intervals appear in Deskmeter's REST API."""
    resp = await client.post("/api/0/import", json=aw_export)
    assert resp.status_code == 200, resp.text
    assert resp.json() is None
    assert (await client.get("/api/0/export")).json() == aw_export
    window = aw_export["buckets"]["aw-watcher-window_desk-1"]
    got = (await client.get("/api/0/buckets/aw-watcher-window_desk-1/events")).json()
    assert [{k: e[k] for k in ("timestamp", "duration", "data")} for e in got] == window["events"]
    listed = (
        await client.get(
            "/api/v1/deskmeter/intervals",
            params={"from": utc_ms("09:00"), "to": utc_ms("12:00"), "machine": MACHINE},
        )
    ).json()["intervals"]
    zone = listed[0]["time_zone"]
    assert [
        (i["start_ms"], i["end_ms"], i["workspace"], i["task"], i["idle"], i["open"])
        for i in listed
    ] == [(i.start_ms, i.end_ms, i.workspace, i.task, i.idle, i.open) for i in expected(zone)]


async def test_post_import_of_present_buckets_changes_nothing(
    aw_export: dict[str, Any], client: httpx.AsyncClient, core: Core
) -> None:
    """A second import of the same export is refused whole (400, naming the buckets), and
    neither the buckets nor the intervals change."""
    assert (await client.post("/api/0/import", json=aw_export)).status_code == 200
    before = (await client.get("/api/0/export")).json()
    intervals_before = await stored_intervals(core)
    again = await client.post("/api/0/import", json=aw_export)
    assert again.status_code == 400
    message = again.json()["error"]["message"]
    assert "aw-watcher-afk_desk-1" in message
    assert "nothing was imported" in message
    assert (await client.get("/api/0/export")).json() == before
    assert await stored_intervals(core) == intervals_before
