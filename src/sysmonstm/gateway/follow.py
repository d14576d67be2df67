"""Follow the gateway's ``/ws`` from another process: panels, watchers, notifiers.

``follow(gateway, patterns)`` yields every envelope (``{"id", "topic", "source", "time_ms",
"payload"}``) published on the bus under ``patterns``, reconnecting with backoff for as long
as the caller iterates. The gateway pushes; nothing here polls.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
import websockets

log = structlog.get_logger(__name__)


def ws_url(gateway: str) -> str:
    """``http://host:port`` (or ``ws://…``, or ``host:port``) → ``ws://host:port/ws``."""
    if "://" not in gateway:
        gateway = f"http://{gateway}"
    parts = urlsplit(gateway)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, parts.netloc, f"{path}/ws" if path != "/ws" else path, "", ""))


async def follow(
    gateway: str,
    patterns: list[str],
    *,
    backoff_initial_s: float = 0.2,
    backoff_max_s: float = 10.0,
) -> AsyncIterator[dict[str, Any]]:
    """Envelopes matching ``patterns``, across reconnects (messages published while
    disconnected are missed; callers that need the current state read it over REST after
    each ``{"connected": true}`` marker this yields on every (re)connect, once the gateway
    has acknowledged the subscription, so nothing published after the marker is missed)."""
    url = ws_url(gateway)
    delay = backoff_initial_s
    while True:
        try:
            async with websockets.connect(url, open_timeout=5) as ws:
                await ws.send(json.dumps({"subscribe": patterns}))
                delay = backoff_initial_s
                subscribed = False
                async for raw in ws:
                    msg = json.loads(raw)
                    if "topic" in msg:
                        yield msg
                    elif "ok" in msg and not subscribed:
                        subscribed = True
                        yield {"connected": True}
                    elif "error" in msg:
                        log.warning("gateway refused", error=msg["error"], url=url)
        except (TimeoutError, OSError, websockets.WebSocketException) as exc:
            log.info("gateway unreachable, retrying", url=url, error=str(exc), retry_s=delay)
        await asyncio.sleep(random.uniform(0, delay))
        delay = min(delay * 2, backoff_max_s)
