"""``sysmonstm deskmeter task | at | summary | export | status``: set the task, ask about the
past, follow the present. Each asks the gateway (``settings.deskmeter.gateway``, or
``--gateway``) over HTTP; times are read in this machine's zone (``deskmeter.time_zone``,
else the system's). The machine is this one (its id as the watcher and the metrics collector
derive it) unless ``--machine`` names another.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from sysmonstm.cli_deskmeter import deskmeter_app

if TYPE_CHECKING:
    import httpx

    from sysmonstm.domains.deskmeter.panel import Status

T = TypeVar("T")
API = "/api/v1/deskmeter"
TIMEOUT_S = 30.0

GatewayOpt = Annotated[
    str | None, typer.Option("--gateway", help="Gateway URL (default: deskmeter.gateway).")
]
MachineOpt = Annotated[str | None, typer.Option("--machine", help="Machine id.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


class GatewayError(Exception):
    """The gateway could not be reached or refused the request; ``str()`` says why."""


@dataclass(frozen=True)
class Ask:
    """Where and how a command asks: the gateway, this machine's zone and the machine."""

    gateway: str
    zone: str
    machine: str


def _ask(gateway: str | None, machine: str | None) -> Ask:
    from sysmonstm.cli import _settings
    from sysmonstm.domains.deskmeter.machine import local_time_zone
    from sysmonstm.transport.source import resolve_machine_id

    settings = _settings(**{"deskmeter.gateway": gateway})
    # httpx logs every request at info; a command's answer is its output, not a request log
    logging.getLogger("httpx").setLevel(logging.WARNING)
    d = settings.deskmeter
    assert d.spool_dir is not None  # derived from data_dir by the settings
    return Ask(
        gateway=d.gateway.rstrip("/"),
        zone=d.time_zone or local_time_zone(),
        machine=machine or resolve_machine_id(d.machine_id, d.spool_dir),
    )


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; a ``GatewayError`` ends the command with its message and status 1."""
    from rich.markup import escape

    from sysmonstm.cli import err

    try:
        return asyncio.run(_guarded(work))
    except (GatewayError, OSError) as exc:  # OSError: the export's output file
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _guarded(work: Callable[[], Awaitable[T]]) -> T:
    import httpx

    try:
        return await work()
    except httpx.HTTPError as exc:
        try:
            url = str(exc.request.url)
        except RuntimeError:  # an error raised before any request was made
            url = "the gateway"
        raise GatewayError(f"cannot reach {url}: {exc or type(exc).__name__}") from exc


def _client(ask: Ask) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(base_url=ask.gateway + API, timeout=TIMEOUT_S)


def _refusal(response: httpx.Response) -> GatewayError:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:300] or response.reason_phrase
    return GatewayError(f"{message} (HTTP {response.status_code})")


async def _call(ask: Ask, method: str, path: str, **kwargs: Any) -> Any:
    async with _client(ask) as client:
        response = await client.request(method, path, **kwargs)
    if response.status_code >= 400:
        raise _refusal(response)
    return response.json()


def _local(ms: int, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    from sysmonstm.domains.deskmeter.humantime import local_datetime, zone_of

    return local_datetime(ms, zone_of(zone)).strftime(fmt)


def _print_json(body: Any) -> None:
    import json

    print(json.dumps(body, indent=2, ensure_ascii=False))


@deskmeter_app.command("task")
def task_command(
    task: Annotated[str, typer.Argument(help='The task, e.g. "Project X"; "" clears it.')],
    machine: MachineOpt = None,
    gateway: GatewayOpt = None,
) -> None:
    """Set the current task of this machine (or --machine); its watcher applies it."""
    from sysmonstm.cli import out

    ask = _ask(gateway, machine)
    body = _run(lambda: _call(ask, "PUT", "/task", json={"machine": ask.machine, "task": task}))
    shown = repr(body["task"]) if body["task"] else "none"
    out.print(f"task of {ask.machine} set to {shown}", highlight=False)


@deskmeter_app.command("at")
def at_command(
    time: Annotated[str, typer.Argument(help='e.g. "yesterday 15:00", "monday 9:30", "-2h".')],
    machine: Annotated[
        str | None, typer.Option("--machine", help="Machine id (default: every machine).")
    ] = None,
    gateway: GatewayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What each machine was doing at an instant."""
    from rich.table import Table

    from sysmonstm.cli import out
    from sysmonstm.domains.deskmeter.humantime import hours_minutes

    ask = _ask(gateway, machine)
    params = {"time": time, "tz": ask.zone} | ({"machine": machine} if machine else {})
    body = _run(lambda: _call(ask, "GET", "/at", params=params))
    if as_json:
        _print_json(body)
        return
    when = _local(body["time_ms"], ask.zone)
    if not body["intervals"]:
        out.print(f"nothing tracked at {when} ({ask.zone})", highlight=False)
        return
    table = Table("machine", "task", "workspace", "from", "to", "for", title=f"{when} ({ask.zone})")
    for iv in body["intervals"]:
        table.add_row(
            iv["machine"],
            (iv["task"] or "-") + (" (idle)" if iv["idle"] else ""),
            iv["workspace"] or str(iv["workspace_index"] + 1),
            _local(iv["start_ms"], ask.zone),
            _local(iv["end_ms"], ask.zone) + (" (open)" if iv["open"] else ""),
            hours_minutes(iv["duration_s"]),
        )
    out.print(table)


def _period(day: bool, week: bool, month: bool, year: bool) -> str | None:
    chosen = [n for n, on in (("day", day), ("week", week), ("month", month), ("year", year)) if on]
    if len(chosen) > 1:
        from sysmonstm.cli import err

        err.print("[red]error:[/red] choose one of --day, --week, --month, --year")
        raise typer.Exit(2)
    return chosen[0] if chosen else None


@deskmeter_app.command("summary")
def summary_command(
    day: Annotated[bool, typer.Option("--day", help="Today (or the day of --at).")] = False,
    week: Annotated[bool, typer.Option("--week", help="This week, from Monday.")] = False,
    month: Annotated[bool, typer.Option("--month", help="This month.")] = False,
    year: Annotated[bool, typer.Option("--year", help="This year.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="An instant in the period.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start of a range.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End of the range (default now).")] = None,
    by: Annotated[str, typer.Option("--by", help="task, workspace, machine or day.")] = "task",
    machine: Annotated[
        str | None, typer.Option("--machine", help="Machine id (default: every machine).")
    ] = None,
    gateway: GatewayOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Time per task (or workspace, machine, day) over a period or range; idle apart."""
    period = _period(day, week, month, year)
    if period is None and at is not None and from_ is None and to is None:
        period = "day"  # --at alone: that day
    ask = _ask(gateway, machine)
    given = {"period": period, "at": at, "from": from_, "to": to, "machine": machine}
    params = {"by": by, "tz": ask.zone} | {k: v for k, v in given.items() if v}
    body = _run(lambda: _call(ask, "GET", "/summary", params=params))
    if as_json:
        _print_json(body)
        return
    _print_summary(body, ask.zone)


def _print_summary(body: dict[str, Any], zone: str) -> None:
    from rich.table import Table

    from sysmonstm.cli import out
    from sysmonstm.domains.deskmeter.humantime import hours_minutes

    span = f"{_local(body['from_ms'], zone)} → {_local(body['to_ms'], zone)} ({zone})"
    scope = f" on {body['machine']}" if body["machine"] else ""
    table = Table(body["by"], "active", "idle", "share", title=f"{span}{scope}", show_footer=True)
    total = body["active_s"]
    for t in body["totals"]:
        share = f"{100 * t['active_s'] / total:.0f}%" if total else ""
        idle = hours_minutes(t["idle_s"]) if t["idle_s"] else ""
        table.add_row(t["key"] or "(none)", hours_minutes(t["active_s"]), idle, share)
    table.columns[0].footer = "total"
    table.columns[1].footer = hours_minutes(total)
    table.columns[2].footer = hours_minutes(body["idle_s"])
    for column in table.columns[1:]:
        column.justify = "right"
    out.print(table)


@deskmeter_app.command("export")
def export_command(
    from_: Annotated[str, typer.Option("--from", help="Start of the range.")],
    to: Annotated[str | None, typer.Option("--to", help="End (default now).")] = None,
    format_: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    machine: Annotated[
        str | None, typer.Option("--machine", help="Machine id (default: every machine).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    gateway: GatewayOpt = None,
) -> None:
    """Every interval of a range as CSV or JSON, streamed."""
    ask = _ask(gateway, machine)
    params = {"from": from_, "format": format_, "tz": ask.zone}
    if to is not None:
        params["to"] = to
    if machine:
        params["machine"] = machine

    async def download() -> None:
        async with _client(ask) as client, client.stream("GET", "/export", params=params) as r:
            if r.status_code >= 400:
                await r.aread()
                raise _refusal(r)
            partial = output.with_name(output.name + ".part") if output else None
            sink = partial.open("wb") if partial else sys.stdout.buffer
            try:
                async for chunk in r.aiter_bytes():
                    sink.write(chunk)
            finally:
                if partial is not None:
                    sink.close()
            if partial is not None and output is not None:
                partial.replace(output)  # a broken download never passes for a whole one

    _run(download)


@deskmeter_app.command("status")
def status_command(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Print a line on every change.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="waybar/polybar JSON lines: text, tooltip, class, alt.")
    ] = False,
    machine: MachineOpt = None,
    gateway: GatewayOpt = None,
) -> None:
    """The current task of this machine (or --machine), once or on every change."""
    import httpx

    from sysmonstm.domains.deskmeter.panel import (
        from_current,
        json_line,
        off_status,
        plain_line,
        status_lines,
    )

    ask = _ask(gateway, machine)
    render = json_line if as_json else plain_line

    async def current() -> Status:
        return from_current(
            ask.machine, await _call(ask, "GET", "/current", params={"machine": ask.machine})
        )

    async def once() -> None:
        print(render(await current()), flush=True)

    async def forever() -> None:
        async def current_or_off() -> Status:
            # the WebSocket is up but the REST read failed: show "off", keep following
            try:
                return await current()
            except (httpx.HTTPError, GatewayError) as exc:
                print(f"cannot read the current state: {exc}", file=sys.stderr, flush=True)
                return off_status(ask.machine)

        async for line in status_lines(ask.gateway, ask.machine, current_or_off, render):
            print(line, flush=True)

    _run(forever if follow else once)
