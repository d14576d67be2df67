"""The ``/ws`` endpoint: a small JSON protocol over the hub.

Client → server: ``{"subscribe": [patterns]}`` or ``{"unsubscribe": [patterns]}``.
Server → client: ``{"ok": {"subscribed": [patterns held]}}`` after each request,
``{"error": {"code", "message"}}`` for a bad one (nothing changes; the connection stays
open), ``{"dropped": n}`` when this client's backlog overflowed (n counts every envelope it
lost so far), and every matching envelope as ``{"id", "topic", "source", "time_ms",
"payload"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.hub import Client, Hub

MAX_REQUEST_CHARS = 16_384

router = APIRouter()


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def _patterns(value: Any, verb: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise InvalidInputError(f"{verb!r} takes a list of topic patterns")
    return value


async def handle_request(hub: Hub, client: Client, text: str) -> str:
    """Apply one client request; the reply to send (an ``ok`` or an ``error``)."""
    if len(text) > MAX_REQUEST_CHARS:
        return _error("invalid_argument", f"requests are at most {MAX_REQUEST_CHARS} chars")
    try:
        request = json.loads(text)
    except ValueError:
        return _error("invalid_argument", "requests are JSON objects")
    if (
        not isinstance(request, dict)
        or len(request) != 1
        or not (request.keys() <= {"subscribe", "unsubscribe"})
    ):
        return _error(
            "invalid_argument", 'send {"subscribe": [patterns]} or {"unsubscribe": [patterns]}'
        )
    try:
        if "subscribe" in request:
            held = await hub.subscribe(client, _patterns(request["subscribe"], "subscribe"))
        else:
            held = await hub.unsubscribe(client, _patterns(request["unsubscribe"], "unsubscribe"))
    except InvalidInputError as exc:
        return _error(exc.code.lower(), exc.reason)
    return json.dumps({"ok": {"subscribed": held}})


async def _send_loop(websocket: WebSocket, client: Client) -> None:
    while True:
        await websocket.send_text(await client.next_message())


@router.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    """Push bus envelopes matching the client's patterns (see the module docstring)."""
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    client = hub.attach()
    sender = asyncio.create_task(_send_loop(websocket, client))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                client.reply(_error("invalid_argument", "send text frames holding JSON"))
                continue
            client.reply(await handle_request(hub, client, text))
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(
            asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError
        ):
            await sender
        await hub.detach(client)
