"""``sysmonstm deskmeter task | at | summary | export | status`` as subprocesses against a
real gateway (uvicorn on a free port) over a real SQLite interval store; times typed in the
local zone (TZ=Europe/Berlin)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from sysmonstm.domains.deskmeter.humantime import wall_ms
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
    run_cli,
    seed,
    settings_for,
)
from tests.gateway.support import served

pytestmark = pytest.mark.e2e


def table_rows(printed: str) -> list[list[str]]:
    """The cells of each row of a rich table as printed (header, body and footer rows)."""
    return [
        [cell.strip() for cell in line.replace("┃", "│").split("│")[1:-1]]
        for line in printed.splitlines()
        if line.startswith(("│", "┃"))
    ]


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    async with desk_core(settings_for(data_dir)) as opened:
        await seed(opened, dst_day_batches())
        yield opened


@pytest.fixture
async def env(core: Core, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The CLI's environment, pointed at a gateway serving ``core``; this machine is m-a."""
    async with served(core) as url:
        cli_data = tmp_path / "cli"
        cli_data.mkdir()
        yield cli_env(cli_data, url, deskmeter__machine_id="m-a")


async def test_task_sets_this_machines_task_through_the_gateway(
    core: Core, env: dict[str, str]
) -> None:
    """``task`` publishes deskmeter.task.<this machine> for its watcher and says so."""
    sub = await core.bus.subscribe("deskmeter.task.>")
    try:
        ran = await run_cli(["deskmeter", "task", "Project Z"], env)
        assert ran.code == 0, ran.err
        assert ran.out.strip() == "task of m-a set to 'Project Z'"
        envelope = await asyncio.wait_for(anext(aiter(sub)), 5)
        assert envelope.topic == "deskmeter.task.m-a"
        assert envelope.payload["task"] == "Project Z"
    finally:
        await sub.close()


async def test_task_for_an_unknown_machine_fails_with_the_gateways_reason(
    env: dict[str, str],
) -> None:
    """A refusal ends the command with status 1 and the gateway's message."""
    ran = await run_cli(["deskmeter", "task", "X", "--machine", "m-nobody"], env)
    assert ran.code == 1
    assert "no machine 'm-nobody'" in ran.err
    assert "HTTP 404" in ran.err


async def test_at_yesterday_1500_shows_what_was_open(core: Core, env: dict[str, str]) -> None:
    """'yesterday 15:00' on the local calendar finds yesterday's interval, shown as a table."""
    zone = ZoneInfo(BERLIN)
    yesterday = datetime.now(zone).date() - timedelta(days=1)
    start, end = wall_ms(yesterday, time(14), zone), wall_ms(yesterday, time(16, 30), zone)
    steps = [Step(start, "Write", "Report", 4), Step(end, "Write", "Report", 4, kind=HB)]
    await seed(core, [batch("m-y", 1, steps, heartbeat_ms=LONG_HEARTBEAT_MS)])
    ran = await run_cli(["deskmeter", "at", "yesterday 15:00", "--json"], env)
    assert ran.code == 0, ran.err
    body = json.loads(ran.out)
    assert body["time_ms"] == wall_ms(yesterday, time(15), zone)
    assert [(i["machine"], i["task"], i["start_ms"]) for i in body["intervals"]] == [
        ("m-y", "Report", start)
    ]
    ran = await run_cli(["deskmeter", "at", "yesterday 15:00"], env)
    assert ran.code == 0, ran.err
    day = yesterday.isoformat()
    assert table_rows(ran.out) == [
        ["machine", "task", "workspace", "from", "to", "for"],
        ["m-y", "Report", "Write", f"{day} 14:00", f"{day} 16:30 (open)", "2:30"],
    ]


async def test_at_a_time_with_nothing_says_so(env: dict[str, str]) -> None:
    """An instant before any data prints that nothing was tracked, in local time."""
    ran = await run_cli(["deskmeter", "at", "2026-03-28 12:00"], env)
    assert ran.code == 0, ran.err
    assert ran.out.strip() == "nothing tracked at 2026-03-28 12:00 (Europe/Berlin)"


async def test_summary_of_a_day_is_a_table_of_hours_and_minutes(env: dict[str, str]) -> None:
    """The DST day on m-a by task: hours:minutes, idle apart, shares, a total row."""
    ran = await run_cli(
        ["deskmeter", "summary", "--day", "--at", "2026-03-29 12:00", "--machine", "m-a"], env
    )
    assert ran.code == 0, ran.err
    assert table_rows(ran.out) == [
        ["task", "active", "idle", "share"],
        ["(none)", "12:00", "", "77%"],
        ["Project X", "2:30", "0:30", "16%"],
        ["Project Y", "1:00", "", "6%"],
        ["total", "15:30", "0:30", ""],
    ]
    title = "2026-03-29 00:00 → 2026-03-30 00:00 (Europe/Berlin) on m-a"
    assert title in " ".join(ran.out.split())
    assert ran.err == ""  # no request log lines: the answer is the output


async def test_summary_month_by_day_as_json(env: dict[str, str]) -> None:
    """--month --by day --json gives the gateway's answer: totals in seconds per local day."""
    ran = await run_cli(
        ["deskmeter", "summary", "--month", "--at", "2026-03-15", "--by", "day", "--json"], env
    )
    assert ran.code == 0, ran.err
    body = json.loads(ran.out)
    assert (body["from_ms"], body["to_ms"]) == (
        berlin_ms("2026-03-01 00:00"),
        berlin_ms("2026-04-01 00:00"),
    )
    assert {t["key"]: (t["active_s"], t["idle_s"]) for t in body["totals"]} == {
        "2026-03-28": (3600.0, 0.0),
        "2026-03-29": (55800.0 + 5400.0, 1800.0),  # m-b's hour and a half counts too
    }


async def test_summary_refuses_two_periods_and_bad_groupings(env: dict[str, str]) -> None:
    """Two period flags are a usage error (2); an unknown --by is the gateway's 400 (1)."""
    ran = await run_cli(["deskmeter", "summary", "--day", "--week"], env)
    assert ran.code == 2
    assert "choose one of --day, --week, --month, --year" in ran.err
    ran = await run_cli(["deskmeter", "summary", "--by", "mood"], env)
    assert ran.code == 1
    assert "by: 'mood' is not one of task, workspace, machine, day (HTTP 400)" in ran.err


async def test_export_writes_the_gateways_csv_to_a_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    """``export -o`` writes exactly what GET /export streams, and nothing partial."""
    target = tmp_path / "out.csv"
    args = ["--from", "2026-03-29", "--to", "2026-03-30", "--format", "csv"]
    ran = await run_cli(["deskmeter", "export", *args, "-o", str(target)], env)
    assert ran.code == 0, ran.err
    gateway = env["SYSMONSTM_DESKMETER__GATEWAY"]
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{gateway}/api/v1/deskmeter/export",
            params={"from": "2026-03-29", "to": "2026-03-30", "tz": BERLIN},
        )
    assert target.read_bytes() == response.content
    assert len(target.read_text().splitlines()) == 1 + 6
    assert not (tmp_path / "out.csv.part").exists()


async def test_export_json_to_stdout(env: dict[str, str]) -> None:
    """Without -o the export goes to stdout."""
    args = ["--from", "2026-03-29 14:00", "--to", "2026-03-29 16:00", "--machine", "m-a"]
    ran = await run_cli(["deskmeter", "export", *args, "--format", "json"], env)
    assert ran.code == 0, ran.err
    body = json.loads(ran.out)
    assert [(i["workspace"], i["idle"], i["duration_s"]) for i in body["intervals"]] == [
        ("Code", False, 5400.0),
        ("Code", True, 1800.0),
    ]


async def test_unreadable_time_fails_with_the_accepted_forms(env: dict[str, str]) -> None:
    """A time the gateway cannot read ends with status 1 and its explanation."""
    ran = await run_cli(["deskmeter", "at", "teatime"], env)
    assert ran.code == 1
    assert "time: cannot read 'teatime'; use e.g. 'yesterday 15:00'" in ran.err


async def test_status_prints_the_current_task_once(env: dict[str, str]) -> None:
    """``status`` prints this machine's open interval: plain, or as waybar JSON."""
    ran = await run_cli(["deskmeter", "status"], env)
    assert ran.code == 0, ran.err
    assert ran.out == "Project Y · Web\n"
    ran = await run_cli(["deskmeter", "status", "--json", "--machine", "m-b"], env)
    assert ran.code == 0, ran.err
    assert json.loads(ran.out) == {
        "text": "Project X",
        "tooltip": "Project X on Docs since 12:00\nm-b-host",
        "class": "active",
        "alt": "Docs",
    }
    ran = await run_cli(["deskmeter", "status", "--json", "--machine", "m-none"], env)
    assert json.loads(ran.out)["class"] == "off"


async def test_an_unreachable_gateway_is_named(tmp_path: Path) -> None:
    """No gateway: status 1 and the URL that did not answer."""
    url = f"http://127.0.0.1:{free_port()}"
    ran = await run_cli(["deskmeter", "summary", "--week"], cli_env(tmp_path, url))
    assert ran.code == 1
    assert f"cannot reach {url}/api/v1/deskmeter/summary" in ran.err


async def test_export_to_an_unwritable_place_fails_cleanly(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An output file that cannot be written ends with status 1 and the OS's reason."""
    target = tmp_path / "missing-dir" / "out.csv"
    ran = await run_cli(["deskmeter", "export", "--from", "-1d", "-o", str(target)], env)
    assert ran.code == 1
    assert "No such file or directory" in ran.err
    assert not target.parent.exists()
