"""``sysmonstm deskmeter status --follow`` as a subprocess: a line at start, a new line on
every switch the gateway pushes for its machine (nothing for heartbeats, other machines or
unchanged states), and the state read again after the gateway comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.domains.deskmeter.model import DeskEvent, EventKind, Interval, Machine
from sysmonstm.domains.deskmeter.payloads import heartbeat_topic, step_payload, switch_topic
from sysmonstm.domains.deskmeter.store import Step as AppliedStep
from sysmonstm.runtime import Core
from tests.conftest import free_port
from tests.deskmeter.query_support import (
    BERLIN,
    HB,
    LONG_HEARTBEAT_MS,
    Step,
    batch,
    berlin_ms,
    cli_env,
    desk_core,
    dst_day_batches,
    seed,
    settings_for,
)
from tests.e2e.processes import SYSMONSTM
from tests.gateway.support import served

pytestmark = pytest.mark.e2e

WAIT_S = 15.0  # how long a line may take to appear (a deadline, not a speed check)
T = berlin_ms("2026-03-29 18:00")


def switch(
    machine: str, t_ms: int, workspace: str, task: str, *, idle: bool = False
) -> dict[str, object]:
    """The ``workspace.switch.<machine>`` payload the aggregator publishes for this switch."""
    event = DeskEvent(t_ms, EventKind.SWITCH, 1, workspace, task, idle, 0, BERLIN)
    current = Interval(machine, t_ms, t_ms, 1, workspace, task, idle, True, BERLIN)
    return step_payload(
        Machine(machine, f"{machine}-host", BERLIN), AppliedStep(event, current, None), True
    )


class Follower:
    """A running ``status --follow`` and the lines it printed so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._new.set()

    async def wait_lines(self, n: int) -> list[str]:
        """The first ``n`` lines, once printed (fails after ``WAIT_S``)."""
        async with asyncio.timeout(WAIT_S):
            while len(self.lines) < n:
                self._new.clear()
                await self._new.wait()
        return self.lines[:n]

    async def stop(self) -> str:
        """End it (SIGTERM, as a panel does); what it wrote to stderr."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        await self.proc.wait()
        await self._reader
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    listen = f"127.0.0.1:{free_port()}"
    async with desk_core(settings_for(data_dir, gateway={"listen": listen})) as opened:
        await seed(opened, dst_day_batches())
        yield opened


async def start_follow(data_dir: Path, gateway: str, *args: str) -> Follower:
    env = cli_env(data_dir, gateway, deskmeter__machine_id="m-a")
    proc = await asyncio.create_subprocess_exec(
        SYSMONSTM,
        "deskmeter",
        "status",
        "--follow",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Follower(proc)


async def test_follow_prints_a_line_on_each_switch_of_its_machine(
    core: Core, tmp_path: Path
) -> None:
    """The current task at start, then one line per change; heartbeats, other machines and
    a switch that changes nothing shown print nothing."""
    async with served(core) as url:
        follower = await start_follow(tmp_path, url)
        try:
            assert await follower.wait_lines(1) == ["Project Y · Web"]
            await core.bus.publish(switch_topic("m-a"), switch("m-a", T, "Mail", "Project Z"))
            assert await follower.wait_lines(2) == ["Project Y · Web", "Project Z · Mail"]
            await core.bus.publish(heartbeat_topic("m-a"), switch("m-a", T + 1, "Mail", "X"))
            await core.bus.publish(switch_topic("m-b"), switch("m-b", T + 2, "Docs", "Other"))
            await core.bus.publish(switch_topic("m-a"), switch("m-a", T + 3, "Mail", "Project Z"))
            await core.bus.publish(
                switch_topic("m-a"), switch("m-a", T + 4, "Mail", "Project Z", idle=True)
            )
            # published after the others, so had they printed, they would come first
            assert await follower.wait_lines(3) == [
                "Project Y · Web",
                "Project Z · Mail",
                "Project Z · Mail (idle)",
            ]
        finally:
            stderr = await follower.stop()
    assert len(follower.lines) == 3, stderr


async def test_follow_json_lines_are_waybar_objects(core: Core, tmp_path: Path) -> None:
    """--json prints one JSON object per change: text, tooltip, class, alt."""
    async with served(core) as url:
        follower = await start_follow(tmp_path, url, "--json")
        try:
            await follower.wait_lines(1)
            await core.bus.publish(switch_topic("m-a"), switch("m-a", T, "Mail", "", idle=True))
            first, second = await follower.wait_lines(2)
        finally:
            await follower.stop()
    assert json.loads(first) == {
        "text": "Project Y",
        "tooltip": "Project Y on Web since 16:00\nm-a-host",
        "class": "active",
        "alt": "Web",
    }
    assert json.loads(second) == {
        "text": "Mail",
        "tooltip": "no task on Mail since 18:00 (idle)\nm-a-host",
        "class": "idle",
        "alt": "Mail",
    }


async def test_follow_reads_the_state_again_after_the_gateway_returns(
    core: Core, tmp_path: Path
) -> None:
    """A switch stored while the gateway was away shows once it is back (reconnect, then
    the current state over REST)."""
    async with served(core) as url:
        follower = await start_follow(tmp_path, url)
        assert await follower.wait_lines(1) == ["Project Y · Web"]
    try:
        steps = [
            Step(T, "Docs", "Project W", 3),
            Step(T + 60_000, "Docs", "Project W", 3, kind=HB),
        ]
        await seed(core, [batch("m-a", 3, steps, heartbeat_ms=LONG_HEARTBEAT_MS)])
        async with served(core) as again:
            assert again == url
            assert await follower.wait_lines(2) == ["Project Y · Web", "Project W · Docs"]
    finally:
        await follower.stop()
