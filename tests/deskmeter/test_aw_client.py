"""ActivityWatch's own client against our /api/0 and against aw-server: the same answers.

Done-when 6: aw-client (PyPI, in the ActivityWatch venv, as a subprocess) talks to a real
gateway (uvicorn on a free port) and to a real aw-server; the scripted session (buckets,
heartbeats merging and not at the pulsetime boundaries, inserts, reads, exports, imports)
must read back exactly what aw-server stores, ids included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sysmonstm.config import load_settings
from sysmonstm.domains import load_domain
from sysmonstm.runtime import Core
from tests.deskmeter.aw_venv import CLIENT_SCRIPT, AwServer, aw_server, run_aw_script
from tests.gateway.support import served

__all__ = ["aw_server"]  # the fixture, used by name
pytestmark = pytest.mark.e2e


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Core, str]]:
    """A real gateway with the Deskmeter domain on an embedded core, served by uvicorn."""
    settings = load_settings(
        {"data_dir": str(tmp_path / "data"), "gateway": {"listen": "127.0.0.1:0"}}
    )
    core = await Core.open(settings, [load_domain("deskmeter")])
    try:
        async with served(core) as url:
            yield core, url
    finally:
        await core.close()


async def run_session(url: str, home: Path) -> Any:
    parts = urlsplit(url)
    args = ["session", str(parts.hostname), str(parts.port)]
    return await asyncio.to_thread(run_aw_script, CLIENT_SCRIPT, args, home)


async def test_aw_client_session_reads_back_what_aw_server_stores(
    gateway: tuple[Core, str], aw_server: AwServer, tmp_path: Path
) -> None:
    """The same aw-client session against both servers yields equal answers throughout."""
    _, url = gateway
    ours = await run_session(url, tmp_path / "client-ours")
    theirs = await run_session(aw_server.url, tmp_path / "client-theirs")
    assert set(ours) == set(theirs)
    for key in sorted(theirs):
        assert ours[key] == theirs[key], key


async def test_aw_client_session_merges_heartbeats_by_pulsetime(
    gateway: tuple[Core, str], tmp_path: Path
) -> None:
    """What the session's heartbeats became, spelled out (newest first): merges within the
    window (inclusive end), new events past it or on other data, first data kept."""
    _, url = gateway
    ours = await run_session(url, tmp_path / "client")
    got = [(e["timestamp"], e["duration"], e["data"]) for e in ours["after_heartbeats"]]
    firefox = {"app": "Firefox", "title": "docs"}
    code = {"app": "Code", "title": "main.py"}
    assert got == [
        ("2024-03-10T12:00:50.500000+00:00", 0.0, {"app": "Term", "n": 1}),
        ("2024-03-10T12:00:44+00:00", 1.0, {"app": "Term", "n": 1}),
        ("2024-03-10T12:00:40+00:00", 2.0, firefox),
        ("2024-03-10T12:00:26+00:00", 1.75, firefox),
        ("2024-03-10T12:00:25.001000+00:00", 0.0, code),
        ("2024-03-10T12:00:00+00:00", 15.0, code),
    ]
    assert ours["raw_heartbeat"][0] == 200
    assert ours["create_again_status"] == 304
    assert ours["missing_event_status"] == 404
