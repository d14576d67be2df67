"""ActivityWatch's own server (aw-server from PyPI) for the heartbeat benchmark.

It runs from the separate venv ``make aw-venv`` builds (``.make/aw-venv``; its pins clash
with ours), the same one the compatibility tests use (``tests/deskmeter/aw_venv.py``), as
``aw-server --testing`` on a free loopback port with its home (config, SQLite database,
logs) in the run's directory, and is stopped with the run's other child processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bench.procs import BenchError, Child, Children, free_port
from tests.deskmeter.aw_venv import AW_SERVER, AW_VENV, aw_home

START_TIMEOUT_S = 30.0
COMMAND = "aw-server --testing --host 127.0.0.1 --port $PORT"


def available() -> bool:
    return AW_SERVER.exists()


def version() -> str:
    """aw-server's version, from its venv's package metadata."""
    found = sorted(AW_VENV.glob("lib/python*/site-packages/aw_server-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else "unknown"


def start(kids: Children, home: Path) -> tuple[Child, str]:
    """A running aw-server and its base URL."""
    if not available():
        raise BenchError(f"aw-server is not installed at {AW_SERVER}: run `make aw-venv` first")
    port = free_port()
    child = kids.start(
        "aw-server",
        [str(AW_SERVER), "--testing", "--host", "127.0.0.1", "--port", str(port)],
        aw_home(home),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/api/0/info", timeout=2).status_code == 200:
                return child, url
        except httpx.TransportError:
            pass
        if child.popen.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"aw-server did not start:\n{child.text()[-3000:]}")
        time.sleep(0.1)
