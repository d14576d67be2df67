"""The gateway's ASGI app: health, each domain's REST routes, alerts, ``/ws``, the dashboard.

``create_app(core)`` does not open anything: the app's lifespan starts the WebSocket hub and
the alert board on ``core.bus`` and closes them (not the core) at shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

import sysmonstm
from sysmonstm.errors import SysmonstmError
from sysmonstm.gateway.alerts import AlertBoard, alerts_router
from sysmonstm.gateway.errors import install_error_handlers
from sysmonstm.gateway.hub import Hub
from sysmonstm.gateway.spa import STATIC_DIR, mount_dashboard
from sysmonstm.gateway.ws import router as ws_router
from sysmonstm.redact import redact
from sysmonstm.runtime import Core

HEALTH_TIMEOUT_S = 2.0
_PROBE_DOMAIN = "__healthz__"


async def _probe(check: Awaitable[Any]) -> str:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await check
    except TimeoutError:
        return f"timed out after {HEALTH_TIMEOUT_S:g} s"
    except (SysmonstmError, OSError) as exc:
        return redact(f"{type(exc).__name__}: {exc}")[:300]
    return "ok"


async def _bus_probe(core: Core) -> None:
    sub = await core.bus.subscribe("sysmonstm.healthz", maxsize=1)
    await sub.close()


def _health_router(core: Core) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness of the bus and the tiers")
    async def healthz(request: Request) -> JSONResponse:
        """``status`` is ``ok`` with 200 when every backend answers; ``degraded`` with 200
        when only the hot tier is down (the service works from the warm tier; ``live`` is
        ``degraded``); ``degraded`` with 503 when the bus or the warm tier fails. ``checks``
        says which backend is off and why."""
        checks = {
            "bus": await _probe(_bus_probe(core)),
            "hot": await _probe(core.hot.sources(_PROBE_DOMAIN)),
            "warm": await _probe(core.warm.stored_through(_PROBE_DOMAIN, _PROBE_DOMAIN)),
        }
        hot = core.hot
        if hot.degraded:
            checks["hot"] = "degraded"
        failing = any(v not in ("ok", "degraded") for v in checks.values())
        hub: Hub = request.app.state.hub
        stats = hub.stats()
        body = {
            "status": "ok" if not failing and not hot.degraded else "degraded",
            "version": sysmonstm.__version__,
            "time_ms": time.time_ns() // 1_000_000,
            "checks": checks,
            "live": "degraded" if hot.degraded else "ok",
            "hot": {
                "since_ms": hot.since_ms,
                "reason": redact(hot.reason),
                "skipped_batches": hot.skipped_batches,
                "outages": hot.outages,
            },
            "domains": [d.name for d in core.domains],
            "ws": {"clients": stats.clients, "patterns": stats.patterns, "dropped": stats.dropped},
            "alerts": {"active": len(request.app.state.alerts.active())},
        }
        return JSONResponse(body, status_code=503 if failing else 200)

    return router


def create_app(
    core: Core, *, static_dir: Path = STATIC_DIR, ws_outbox: int = 1000, ws_max_patterns: int = 32
) -> FastAPI:
    """The gateway app over an open ``core`` (see the module docstring)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = Hub(core.bus, outbox_size=ws_outbox, max_patterns=ws_max_patterns)
        board = AlertBoard(core.bus, core.warm)
        await board.start()
        app.state.hub = hub
        app.state.alerts = board
        try:
            yield
        finally:
            await hub.close()
            await board.close()

    app = FastAPI(
        title="sysmonstm gateway",
        version=sysmonstm.__version__,
        description="Live state, history and alerts of the streams sysmonstm carries. "
        'Errors are `{"error": {"code", "message"}}`; see docs/api.md.',
        lifespan=lifespan,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(_health_router(core))
    for domain in core.domains:
        for router in domain.api_routers(core):
            app.include_router(router, prefix="/api/v1")
        for router in domain.root_routers(core):
            app.include_router(router)
    app.include_router(alerts_router(), prefix="/api/v1")
    app.include_router(ws_router)
    mount_dashboard(app, static_dir)
    return app
