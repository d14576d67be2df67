"""``make run`` end to end: this machine on the dashboard, live, and a second collector.

Drives the README's first Quick start command and a real headless Chromium.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.conftest import free_port
from tests.e2e.processes import (
    SYSMONSTM,
    Proc,
    base_env,
    get_json,
    poll,
    spawn,
    stop,
)

pytestmark = pytest.mark.e2e


@dataclass
class System:
    proc: Proc
    base: str
    grpc: str
    data: Path


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data = tmp_path_factory.mktemp("up")
    http, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = base_env(data, gateway__listen=http, aggregator__listen=grpc)
    proc = spawn(["make", "--no-print-directory", "run"], env, data / "up.log")
    yield System(proc, f"http://{http}", grpc, data)
    stop(proc)
    assert "aggregator stopped" in proc.text(), "SIGTERM must end in a clean flush"


def this_host(system: System) -> dict[str, Any] | None:
    for host in get_json(f"{system.base}/api/v1/hosts"):
        if host["hostname"] == socket.gethostname():
            return dict(host)
    return None


def fresh(host: dict[str, Any], prefix: str, now_ms: int) -> bool:
    """Some series starting with ``prefix`` has a value under 3 s old."""
    return any(k.startswith(prefix) and now_ms - v["t"] < 3000 for k, v in host["values"].items())


def test_this_machine_is_listed_with_fresh_values_within_10_s(system: System) -> None:
    def ready() -> dict[str, Any] | None:
        host = this_host(system)
        now = time.time_ns() // 1_000_000
        if host and all(
            fresh(host, p, now) for p in ("cpu.used", "mem.used_pct", "disk.used_pct", "net.rx_bps")
        ):
            return host
        return None

    remaining = 10.0 - (time.monotonic() - system.proc.started)
    host = poll(ready, max(remaining, 0.1), "this machine with CPU, memory, disk, network")
    assert host["age_s"] < 3
    assert 0 <= host["values"]["cpu.used"]["v"] <= 100


async def test_the_dashboard_shows_this_machine_changing_live(
    system: System, browser: Browser
) -> None:
    host = poll(lambda: this_host(system), 30, "this machine")
    page = await browser.new_page()
    await page.goto(f"{system.base}/")
    cell = page.locator(f'[data-host="{host["id"]}"] [data-metric="cpu.used"]').first
    await cell.wait_for(timeout=15_000)
    seen = {await cell.inner_text()}
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        seen.add(await cell.inner_text())
    assert len(seen) >= 3, f"the CPU value did not change live: {seen}"
    await page.close()


async def test_a_collector_in_another_process_appears_within_3_s(
    system: System, browser: Browser, tmp_path: Path
) -> None:
    page = await browser.new_page()
    await page.goto(f"{system.base}/")
    await page.locator("[data-host]").first.wait_for(timeout=15_000)
    env = base_env(tmp_path)
    other = spawn(
        [
            SYSMONSTM,
            "collector",
            "--aggregator",
            system.grpc,
            "--machine-id",
            "e2e-second",
            "--hostname",
            "second-box",
            "--label",
            "role=e2e",
            "--spool-dir",
            str(tmp_path / "spool"),
        ],
        env,
        tmp_path / "collector.log",
    )
    try:
        other.wait_log("collector started")
        ready_at = time.monotonic()

        def listed() -> bool:
            return any(
                h["id"] == "e2e-second"
                and h["hostname"] == "second-box"
                and h["labels"] == {"role": "e2e"}
                for h in get_json(f"{system.base}/api/v1/hosts")
            )

        poll(listed, 3.0, "the second collector in /api/v1/hosts")
        remaining_ms = max(100, int((3.0 - (time.monotonic() - ready_at)) * 1000))
        await page.locator('[data-host="e2e-second"]').first.wait_for(timeout=remaining_ms)
    finally:
        assert stop(other) == 0, other.text()[-2000:]
        await page.close()
