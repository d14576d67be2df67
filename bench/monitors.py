"""The other monitors the collector's CPU is compared with, started as a user would run them.

- Glances (PyPI, Python, psutil like us) from the venv ``make glances-venv`` builds
  (``.make/glances-venv``, pinned there), as its web server: ``glances -w -t 1`` on a free
  loopback port with its home (config, log) in the run's directory. Glances samples when
  its REST API is asked (at most once per ``--cached-time``, 1 s), so a client polling
  ``/api/4/all`` once a second is what makes it collect at 1 s, as its web UI does.
- ``prometheus-node-exporter`` (Debian, Go) with its default collectors, on a free loopback
  port; it reads the host when scraped, so it is scraped once a second.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.procs import ROOT, BenchError, Child, Children, child_env, free_port

GLANCES_VENV = ROOT / ".make" / "glances-venv"
GLANCES = GLANCES_VENV / "bin" / "glances"
NODE_EXPORTER = "prometheus-node-exporter"
START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Monitor:
    """A started monitor and the URL that makes it sample (polled once a second)."""

    child: Child
    url: str


def glances_version() -> str:
    found = sorted(GLANCES_VENV.glob("lib/python*/site-packages/glances-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else "unknown"


def node_exporter_path() -> str | None:
    return shutil.which(NODE_EXPORTER) or shutil.which(NODE_EXPORTER, path="/usr/bin")


def node_exporter_version() -> str:
    path = node_exporter_path()
    if path is None:
        return "unknown"
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).split("\n", 1)[0]  # "node_exporter, version 1.5.0 (...)"
    return first.split("version", 1)[-1].split("(", 1)[0].strip() or "unknown"


GLANCES_COMMAND = (
    "glances -w -t 1 -B 127.0.0.1 -p $PORT --disable-autodiscover, GET /api/4/all once a second"
)
NODE_EXPORTER_COMMAND = (
    "prometheus-node-exporter --web.listen-address=127.0.0.1:$PORT, "
    "GET /metrics once a second (Accept-Encoding: gzip, as Prometheus asks)"
)


def start_glances(kids: Children, home: Path) -> Monitor:
    if not GLANCES.exists():
        raise BenchError(f"Glances is not installed at {GLANCES}: run `make glances-venv` first")
    port = free_port()
    for name in ("config", "cache"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env = child_env(
        HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache")
    )
    argv = [str(GLANCES), "-w", "-t", "1", "-B", "127.0.0.1", "-p", str(port)]
    child = kids.start("glances", [*argv, "--disable-autodiscover"], env)
    return Monitor(child, f"http://127.0.0.1:{port}/api/4/all")


def start_node_exporter(kids: Children) -> Monitor:
    path = node_exporter_path()
    if path is None:
        raise BenchError(f"{NODE_EXPORTER} is not installed: run `make system` first")
    port = free_port()
    child = kids.start(
        "node-exporter", [path, f"--web.listen-address=127.0.0.1:{port}"], child_env()
    )
    return Monitor(child, f"http://127.0.0.1:{port}/metrics")


def wait_ready(monitor: Monitor, deadline: float) -> None:
    """Until ``monitor.url`` answers 200 (or fail by ``deadline``, a monotonic time)."""
    while True:
        try:
            if httpx.get(monitor.url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if monitor.child.popen.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{monitor.child.name} did not start:\n{monitor.child.text()[-3000:]}")
        time.sleep(0.1)
