"""A rule from TOML fires, is pushed over /ws, listed by /api/v1/alerts, and resolves by its
clear threshold without flapping, honouring ``for`` and ``keep_firing_for``.

Runs the whole system (``run_up``: real gRPC, pipeline, rules, gateway) in this process and
feeds it through the real ingest stream with frames one second apart in sample time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import websockets

from sysmonstm.config import load_settings
from sysmonstm.services.up import UpOptions, run_up
from sysmonstm.v1.common_pb2 import Ack
from tests.aggregator_fixtures import metric_batch
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

RULE = """
[[rule]]
name = "e2e_cpu"
topic = "metrics.>"
field = "cpu.used"
op = "gt"
threshold = 80
clear = 70
for = 2
keep_firing_for = 1
severity = "critical"
message = "CPU on {host} at {value:.0f}%"
"""
# one value per second of sample time: normal, over for 3 s, oscillating between the clear
# level and the threshold (must not flap), then clear for 3 s
VALUES = [50, 50, 50, 85, 85, 85, 75, 79, 81, 79, 75, 60, 60, 60]
FIRED_AT, RESOLVED_AT = 5, 12  # 3 + for; 11 (cleared) + keep_firing_for


@dataclass
class Running:
    http: str
    grpc: str


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[Running]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULE)
    http, grpc_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    settings = load_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "gateway": {"listen": http},
            "aggregator": {"listen": grpc_addr},
            "rules": {"files": [str(rules)], "defaults": False},
        }
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_up(settings, stop, UpOptions(collect=False), lambda _url: ready.set())
    )
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    yield Running(f"http://{http}", grpc_addr)
    stop.set()
    await asyncio.wait_for(task, 30)


async def send(address: str, values: list[int], first: int, t0: int) -> None:
    """Stream ``values`` as samples ``first, first + 1, ...`` (sequence = index + 1)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            "/sysmonstm.v1.MetricsIngest/Stream",
            request_serializer=lambda b: b,
            response_deserializer=Ack.FromString,
        )

        async def frames() -> AsyncIterator[bytes]:
            for i, v in enumerate(values, start=first):
                yield metric_batch(
                    "alert-box", i + 1, t_ms=t0 + i * 1000, values=[v, 10.0], hostname="alert-box"
                ).SerializeToString()

        async for ack in call(frames()):
            if ack.stored_through >= first + len(values):
                break


async def next_alert(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if "topic" in message and message["topic"].startswith("alerts."):
                return dict(message["payload"])


async def test_a_rule_fires_is_pushed_listed_and_resolves_without_flapping(
    system: Running,
) -> None:
    t0 = time.time_ns() // 1_000_000 - 600_000
    t0 -= t0 % 1000
    async with (
        websockets.connect(f"ws://{system.http.removeprefix('http://')}/ws") as ws,
        httpx.AsyncClient(base_url=system.http) as http,
    ):
        await ws.send(json.dumps({"subscribe": ["alerts.>"]}))
        assert "ok" in json.loads(await ws.recv())

        await send(system.grpc, VALUES[: FIRED_AT + 1], 0, t0)
        pending = await next_alert(ws)
        firing = await next_alert(ws)
        assert (pending["state"], firing["state"]) == ("pending", "firing")
        assert pending["id"] == firing["id"]
        assert pending["started_ms"] == t0 + 3000
        assert firing["fired_ms"] == t0 + FIRED_AT * 1000, "fires exactly when `for` has held"
        assert firing["severity"] == "critical"
        assert firing["message"] == "CPU on alert-box at 85%"
        active = (await http.get("/api/v1/alerts")).json()["active"]
        assert [(a["id"], a["state"]) for a in active] == [(firing["id"], "firing")]

        await send(system.grpc, VALUES[FIRED_AT + 1 :], FIRED_AT + 1, t0)
        resolved = await next_alert(ws)
        assert resolved["state"] == "resolved"
        assert resolved["id"] == firing["id"]
        assert resolved["resolved_ms"] == t0 + RESOLVED_AT * 1000, "held by keep_firing_for"
        with contextlib.suppress(TimeoutError):
            extra = await next_alert(ws, timeout=1.5)
            pytest.fail(f"the alert flapped: {extra}")

        body = (await http.get("/api/v1/alerts")).json()
        assert body["active"] == []
        states = [h["state"] for h in body["history"] if h["id"] == firing["id"]]
        assert sorted(states) == ["firing", "pending", "resolved"]
