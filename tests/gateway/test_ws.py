"""The /ws endpoint over a real uvicorn: subscribe, push, unsubscribe, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from sysmonstm.runtime import Core
from tests.gateway.support import alert, metrics_payload, now_ms


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def request(ws: ClientConnection, body: Any) -> dict[str, Any]:
    await ws.send(body if isinstance(body, str | bytes) else json.dumps(body))
    return await recv(ws)


@pytest.fixture
async def ws(gateway_url: str) -> AsyncIterator[ClientConnection]:
    async with connect(gateway_url.replace("http://", "ws://") + "/ws") as conn:
        yield conn


async def test_subscribed_patterns_get_matching_envelopes_pushed(
    core: Core, ws: ClientConnection
) -> None:
    """After {"subscribe"} is acknowledged, matching envelopes arrive as JSON, others do not."""
    reply = await request(ws, {"subscribe": ["metrics.*"]})
    assert reply == {"ok": {"subscribed": ["metrics.*"]}}

    t = now_ms()
    await core.bus.publish("deskmeter.switch", {"ignored": True})
    sent = await core.bus.publish(
        "metrics.m-1", metrics_payload("m-1", t, [1, 2, 3, 4]), source="agg"
    )

    env = await recv(ws)
    assert env == {
        "id": sent.id,
        "topic": "metrics.m-1",
        "source": "agg",
        "time_ms": sent.time_ms,
        "payload": metrics_payload("m-1", t, [1, 2, 3, 4]),
    }


async def test_unsubscribe_stops_a_pattern(core: Core, ws: ClientConnection) -> None:
    """An unsubscribed pattern delivers nothing more; the others carry on."""
    await request(ws, {"subscribe": ["metrics.*", "alerts.>"]})
    reply = await request(ws, {"unsubscribe": ["metrics.*", "never.held"]})
    assert reply == {"ok": {"subscribed": ["alerts.>"]}}

    await core.bus.publish("metrics.m-1", metrics_payload("m-1", now_ms(), [1, 2, 3, 4]))
    await core.bus.publish("alerts.cpu_high", alert("a", "firing", now_ms()))

    env = await recv(ws)
    assert env["topic"] == "alerts.cpu_high"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"subscribe": ["metrics.>.x"]}, "'>' must be the last token"),
        ({"subscribe": ["metrics..x"]}, "tokens must be non-empty"),
        ({"subscribe": ["ok.*", "bad pattern"]}, "tokens must be non-empty"),
        ({"subscribe": "metrics.*"}, "list of topic patterns"),
        ({"publish": ["x"]}, '{"subscribe": [patterns]}'),
        ("not json", "JSON objects"),
        (b"\x00binary", "text frames"),
    ],
    ids=[
        "gt-not-last",
        "empty-token",
        "one-bad-of-two",
        "not-a-list",
        "unknown-verb",
        "not-json",
        "binary",
    ],
)
async def test_bad_requests_get_an_error_and_change_nothing(
    core: Core, ws: ClientConnection, body: Any, needle: str
) -> None:
    """A refused request leaves the subscriptions as they were and the connection open."""
    await request(ws, {"subscribe": ["alerts.>"]})

    reply = await request(ws, body)

    assert needle in reply["error"]["message"]
    assert reply["error"]["code"] == "invalid_argument"
    still = await request(ws, {"subscribe": []})
    assert still == {"ok": {"subscribed": ["alerts.>"]}}
    await core.bus.publish("ok.x", {"n": 1})
    await core.bus.publish("alerts.r", alert("a", "firing", now_ms()))
    assert (await recv(ws))["topic"] == "alerts.r"


async def test_patterns_per_connection_are_capped(ws: ClientConnection) -> None:
    """Past 32 patterns a subscribe is refused whole with resource_exhausted."""
    held = [f"metrics.h{i}" for i in range(30)]
    await request(ws, {"subscribe": held})

    reply = await request(ws, {"subscribe": ["a.x", "a.y", "a.z"]})

    assert reply["error"]["code"] == "resource_exhausted"
    assert "at most 32 patterns" in reply["error"]["message"]
    assert (await request(ws, {"subscribe": held[:1]}))["ok"]["subscribed"] == held


async def test_overlapping_patterns_deliver_each_envelope_once(
    core: Core, ws: ClientConnection
) -> None:
    """metrics.* and metrics.> both match metrics.m-1; the client still gets it once."""
    await request(ws, {"subscribe": ["metrics.*", "metrics.>", "alerts.>"]})

    await core.bus.publish("metrics.m-1", metrics_payload("m-1", now_ms(), [1, 2, 3, 4]))
    await core.bus.publish("alerts.r", alert("a", "firing", now_ms()))

    assert (await recv(ws))["topic"] == "metrics.m-1"
    assert (await recv(ws))["topic"] == "alerts.r"


async def test_every_client_gets_its_own_copy(core: Core, gateway_url: str) -> None:
    """Two connections on the same pattern (one bus subscription) both receive the event."""
    url = gateway_url.replace("http://", "ws://") + "/ws"
    async with connect(url) as a, connect(url) as b:
        for conn in (a, b):
            await request(conn, {"subscribe": ["alerts.>"]})
        await core.bus.publish("alerts.r", alert("a", "firing", now_ms()))
        assert (await recv(a))["payload"]["id"] == "a"
        assert (await recv(b))["payload"]["id"] == "a"
