"""serve_gateway: uvicorn inside the caller's loop, stopped by an event, no signal capture."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sysmonstm.config import load_settings
from sysmonstm.errors import ConfigError, SysmonstmError
from sysmonstm.gateway.server import serve_gateway, split_listen
from sysmonstm.runtime import Core
from tests.gateway.support import served


async def test_served_gateway_answers_and_leaves_signal_handlers_alone(core: Core) -> None:
    """The real server answers HTTP; the process's SIGTERM handler is the caller's."""
    before = signal.getsignal(signal.SIGTERM)
    async with served(core) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        assert signal.getsignal(signal.SIGTERM) is before


async def test_stop_closes_open_websockets(core: Core) -> None:
    """Setting stop ends serve_gateway even with a client connected; the client sees 1012."""
    async with served(core) as url:
        ws = await connect(url.replace("http://", "ws://") + "/ws")
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(5):
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":9000", ("0.0.0.0", 9000)),
        ("[::1]:8080", ("::1", 8080)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_setting_is_split_into_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, :PORT (every interface) and [IPv6]:PORT are understood."""
    assert split_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8080", "host:", "host:http", "host:70000"])
def test_bad_listen_setting_is_a_config_error(listen: str) -> None:
    """A listen value without a usable port is refused before anything starts."""
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        split_listen(listen)


async def test_busy_port_is_reported_as_an_error(data_dir: Path) -> None:
    """When the port is taken serve_gateway raises instead of exiting the process."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(
            {"data_dir": str(data_dir), "gateway": {"listen": f"127.0.0.1:{port}"}}
        )
        core = await Core.open(settings)
        try:
            with pytest.raises(SysmonstmError, match=f"could not start on 127.0.0.1:{port}"):
                await serve_gateway(core, asyncio.Event())
        finally:
            await core.close()
