"""ActivityWatch's own programs, from the venv ``make aw-venv`` builds (``.make/aw-venv``).

aw-server and aw-client pin libraries that clash with ours, so they run as subprocesses with
that venv's python, each in a throwaway home (config, data, client queues and locks under
``tmp_path``). ``AwServer`` starts ``aw-server --testing`` on a free port with its SQLite
database there; ``run_aw_script`` runs a script of ours with aw-client importable.
Benchmarks reuse these helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
AW_VENV = ROOT / ".make" / "aw-venv"
AW_PYTHON = AW_VENV / "bin" / "python"
AW_SERVER = AW_VENV / "bin" / "aw-server"
CLIENT_SCRIPT = Path(__file__).with_name("aw_client_script.py")
START_TIMEOUT_S = 30.0


def aw_home(base: Path) -> dict[str, str]:
    """Environment for an ActivityWatch program living entirely under ``base``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "AW_"))}
    for name in ("config", "data", "cache", "state"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(base),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_DATA_HOME=str(base / "data"),
        XDG_CACHE_HOME=str(base / "cache"),
        XDG_STATE_HOME=str(base / "state"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def require_aw_venv() -> Path:
    """The venv's python; fails the test (not skips) when the venv was not built."""
    if not (AW_PYTHON.exists() and AW_SERVER.exists()):
        pytest.fail(f"ActivityWatch venv missing at {AW_VENV}: run `make aw-venv`")
    return AW_PYTHON


def run_aw_script(script: Path, args: Sequence[str], home: Path, timeout_s: float = 90.0) -> Any:
    """Run ``script`` with the ActivityWatch venv's python; its stdout is JSON, returned.

    A failing script fails the test with its stderr."""
    python = require_aw_venv()
    proc = subprocess.run(
        [str(python), str(script), *args],
        env=aw_home(home),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"{script.name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def run_aw_code(code: str, payload: Any, home: Path, timeout_s: float = 90.0) -> Any:
    """Run ``code`` with the ActivityWatch venv's python, ``payload`` as JSON on its stdin;
    its stdout is JSON, returned. A failure fails the test with its stderr."""
    python = require_aw_venv()
    proc = subprocess.run(
        [str(python), "-c", code],
        input=json.dumps(payload),
        env=aw_home(home),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"ActivityWatch venv code failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def wait_for_info(base_url: str, timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
    """``GET /api/0/info`` once the server answers it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            resp = httpx.get(f"{base_url}/api/0/info", timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        body: dict[str, Any] = resp.json()
        return body


@dataclass
class AwServer:
    """A running ``aw-server --testing`` (real aw-server, SQLite storage in its home)."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def start_aw_server(home: Path) -> AwServer:
    require_aw_venv()
    port = free_port()
    log = home / "aw-server.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(AW_SERVER), "--testing", "--host", "127.0.0.1", "--port", str(port)],
            env=aw_home(home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = AwServer(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        wait_for_info(server.url)
    except BaseException:
        stop_aw_server(server)
        sys.stderr.write(log.read_text(errors="replace"))
        raise
    return server


def stop_aw_server(server: AwServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


@pytest.fixture
def aw_server(tmp_path: Path) -> Iterator[AwServer]:
    """ActivityWatch's own server, fresh for one test."""
    server = start_aw_server(tmp_path / "aw-server-home")
    try:
        yield server
    finally:
        stop_aw_server(server)
