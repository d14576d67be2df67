"""Run the gateway with uvicorn inside the current event loop, until ``stop`` is set.

Signals stay with the caller (``services.runner``): uvicorn's own handlers are not
installed. On stop the server refuses new connections, closes open WebSockets (code 1012)
and waits up to ``GRACE_S`` for requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator

import structlog
import uvicorn
from starlette.types import ASGIApp

from sysmonstm.errors import ConfigError, SysmonstmError
from sysmonstm.gateway.app import create_app
from sysmonstm.runtime import Core

log = structlog.get_logger(__name__)

GRACE_S = 5


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"``, ``":8080"`` or ``"[::1]:8080"`` to (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"gateway.listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - ":PORT" asks for every interface
    return host, int(port)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def serve_or_fail(self) -> bool:
        """Serve; False when uvicorn gave up (it calls ``sys.exit`` when it cannot bind or
        start the app, which must not escape a task into the caller's event loop)."""
        try:
            await self.serve()
        except SystemExit:
            return False
        return True


async def serve_gateway(
    core: Core, stop: asyncio.Event, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve ``create_app(core)`` on ``core.settings.gateway.listen`` until ``stop`` is set.

    ``on_ready`` receives the base URL once the port is bound (the real port when the
    setting asks for port 0). Raises ``SysmonstmError`` when the server cannot start.
    """
    await serve_app(
        create_app(core), core.settings.gateway.listen, stop, name="gateway", on_ready=on_ready
    )


async def serve_app(
    app: ASGIApp,
    listen: str,
    stop: asyncio.Event,
    *,
    name: str,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve any ASGI ``app`` on ``listen`` (``HOST:PORT``) until ``stop`` is set, as the
    gateway is served (also the payment adapters' webhook apps). ``on_ready`` receives the
    base URL once bound; ``SysmonstmError`` when the server cannot start."""
    host, port = split_listen(listen)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=GRACE_S,
        server_header=False,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve_or_fail(), name=name)
    stopping = asyncio.create_task(stop.wait())
    try:
        while not server.started:
            if task.done() or stopping.done():
                break
            await asyncio.wait({task, stopping}, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
        if server.started:
            sock = server.servers[0].sockets[0].getsockname()
            shown = f"[{sock[0]}]" if ":" in sock[0] else sock[0]
            url = f"http://{shown}:{sock[1]}"
            log.info(f"{name} listening", url=f"{url}/")
            if on_ready is not None:
                on_ready(url)
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        served = await task
    if not served:
        raise SysmonstmError(f"{name} could not start on {listen}")
