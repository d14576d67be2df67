"""Builders for the Deskmeter question tests: batches of events, a core with the Deskmeter
domain over a real interval store (SQLite in a tmp dir, or a throwaway PostgreSQL database),
and a gateway serving it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sysmonstm.config import Settings, load_settings
from sysmonstm.domains import load_domain
from sysmonstm.domains.deskmeter.domain import DOMAIN as DESKMETER
from sysmonstm.domains.deskmeter.model import DeskBatch, DeskEvent, EventKind, Machine
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.runtime import Core
from tests.e2e.processes import SYSMONSTM

BERLIN = "Europe/Berlin"


def berlin_ms(text: str) -> int:
    """Unix ms of a Berlin wall time such as ``2026-03-29 15:00``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(BERLIN)).timestamp() * 1000)


@dataclass(frozen=True)
class Step:
    """One event: at ``t_ms`` the desktop shows ``workspace`` (index ``index``) on ``task``."""

    t_ms: int
    workspace: str = ""
    task: str = ""
    index: int = 0
    idle: bool = False
    kind: EventKind = EventKind.SWITCH


def batch(
    machine: str,
    seq: int,
    steps: Sequence[Step],
    *,
    tz: str = BERLIN,
    host: str = "",
    heartbeat_ms: int = 10_000,
) -> DeskBatch:
    """A validated batch of ``steps`` for ``machine``."""
    events = tuple(
        DeskEvent(
            time_ms=s.t_ms,
            kind=s.kind,
            workspace_index=s.index,
            workspace=s.workspace,
            task=s.task,
            idle=s.idle,
            idle_ms=0,
            time_zone=tz,
        )
        for s in steps
    )
    return DeskBatch(Machine(machine, host or f"{machine}-host", tz), seq, events, heartbeat_ms)


def settings_for(data_dir: Path, warm_url: str | None = None, **extra: Any) -> Settings:
    """Embedded backends under ``data_dir``; the warm tier (and interval store) at
    ``warm_url`` when given; the gateway on an ephemeral port."""
    overrides: dict[str, Any] = {"data_dir": str(data_dir), "gateway": {"listen": "127.0.0.1:0"}}
    if warm_url:
        overrides["warm"] = {"url": warm_url}
    overrides.update(extra)
    return load_settings(overrides)


@asynccontextmanager
async def desk_core(settings: Settings) -> AsyncIterator[Core]:
    """An open core carrying the metrics and Deskmeter domains."""
    core = await Core.open(settings, [load_domain("metrics"), DESKMETER])
    try:
        yield core
    finally:
        await core.close()


async def seed(core: Core, batches: Sequence[DeskBatch]) -> None:
    """Apply ``batches`` to the core's interval store, as the aggregator does."""
    store = await interval_store(core)
    await store.apply(batches)


@dataclass(frozen=True)
class Ran:
    """A finished command: exit code and what it printed."""

    code: int
    out: str
    err: str


def cli_env(data_dir: Path, gateway: str, tz: str = BERLIN, **settings: str) -> dict[str, str]:
    """The environment of a ``sysmonstm`` subprocess: no user config, the gateway, a zone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    env |= {
        "SYSMONSTM_CONFIG": str(data_dir / "absent.toml"),
        "SYSMONSTM_DATA_DIR": str(data_dir),
        "SYSMONSTM_DESKMETER__GATEWAY": gateway,
        "TZ": tz,
        "COLUMNS": "120",
    }
    env.update({f"SYSMONSTM_{k.upper()}": v for k, v in settings.items()})
    return env


async def run_cli(args: Sequence[str], env: dict[str, str], timeout: float = 60) -> Ran:
    """Run ``sysmonstm <args>`` to its end without blocking this event loop (the gateway it
    talks to may be serving from it)."""
    proc = await asyncio.create_subprocess_exec(
        SYSMONSTM,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


HB = EventKind.HEARTBEAT
LONG_HEARTBEAT_MS = 6 * 3_600_000  # hours between events stay one interval
UTC_1200 = berlin_ms("2026-03-29 14:00")  # 12:00 UTC on the DST day


def dst_day_batches() -> list[DeskBatch]:
    """Machine ``m-a`` (Berlin) from 23:00 before the spring DST change of 2026-03-29 (02:00
    CET became 03:00 CEST) to 17:00 that day: Code/Project X to 01:00, Mail (no task) to
    14:00, Code/Project X to 15:30, idle to 16:00, Web/Project Y open to 17:00. Machine
    ``m-b`` (UTC): Docs/Project X from 12:00 UTC, open to 13:30 UTC."""
    a = [
        Step(berlin_ms("2026-03-28 23:00"), "Code", "Project X", 0),
        Step(berlin_ms("2026-03-29 01:00"), "Mail", "", 1),
        Step(berlin_ms("2026-03-29 14:00"), "Code", "Project X", 0),
        Step(berlin_ms("2026-03-29 15:30"), "Code", "Project X", 0, idle=True),
        Step(berlin_ms("2026-03-29 16:00"), "Web", "Project Y", 2),
        Step(berlin_ms("2026-03-29 17:00"), "Web", "Project Y", 2, kind=HB),
    ]
    b = [
        Step(UTC_1200, "Docs", "Project X", 3),
        Step(UTC_1200 + 5_400_000, "Docs", "Project X", 3, kind=HB),
    ]
    return [
        batch("m-a", 1, a[:3], heartbeat_ms=LONG_HEARTBEAT_MS),
        batch("m-a", 2, a[3:], heartbeat_ms=LONG_HEARTBEAT_MS),
        batch("m-b", 1, b, tz="UTC", heartbeat_ms=LONG_HEARTBEAT_MS),
    ]
