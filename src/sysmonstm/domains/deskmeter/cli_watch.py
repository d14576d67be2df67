"""``sysmonstm deskmeter watch``: the workspace watcher of this desktop session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer

from sysmonstm.cli_deskmeter import deskmeter_app

if TYPE_CHECKING:  # the watcher's imports (gRPC, X11) wait until the command runs
    from sysmonstm.config import Settings
    from sysmonstm.domains.deskmeter.sources import SourceKind
    from sysmonstm.domains.deskmeter.watcher import Companion, WatchOptions

log = structlog.get_logger(__name__)


def watch_options(settings: Settings, source: SourceKind, display: str | None) -> WatchOptions:
    """The watcher's options from the ``deskmeter`` settings section."""
    from sysmonstm.domains.deskmeter.watcher import WatchOptions
    from sysmonstm.transport.source import ClientTls

    d = settings.deskmeter
    assert d.spool_dir is not None  # derived from data_dir by the settings
    tls = None
    if d.tls.ca or d.tls.cert:
        tls = ClientTls(ca=d.tls.ca, cert=d.tls.cert, key=d.tls.key)
    return WatchOptions(
        aggregators=tuple(d.aggregators),
        spool_dir=d.spool_dir,
        heartbeat_s=d.heartbeat_s,
        idle_after_s=d.idle_after_s,
        poll_s=d.poll_s,
        source=source,
        display=display,
        machine_id=d.machine_id,
        hostname=d.hostname,
        time_zone=d.time_zone,
        gateway=d.gateway or None,
        spool_max_bytes=d.spool_max_bytes,
        tls=tls,
    )


def session_bus_reachable(env: dict[str, str] | None = None) -> bool:
    """Whether a D-Bus session bus is announced: ``$DBUS_SESSION_BUS_ADDRESS`` naming a
    socket that exists (or an abstract one), else ``$XDG_RUNTIME_DIR/bus``."""
    env = dict(os.environ) if env is None else env
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "")
    for part in (p for p in address.split(";") if p):
        options = dict(kv.split("=", 1) for kv in part.partition(":")[2].split(",") if "=" in kv)
        if "abstract" in options or "tcp" in part.partition(":")[0]:
            return True
        if "path" in options and Path(options["path"]).exists():
            return True
    runtime = env.get("XDG_RUNTIME_DIR")
    return not address and bool(runtime) and Path(runtime or "", "bus").exists()


def notifications(settings: Settings) -> list[Companion]:
    """Desktop notifications of focus alerts, when wanted and a session bus is there."""
    if not settings.deskmeter.notify:
        return []
    if not session_bus_reachable():
        log.info("no D-Bus session bus: focus alerts are not shown as notifications")
        return []

    async def run() -> None:
        from sysmonstm.domains.deskmeter.notify import run_notifications

        await run_notifications(settings)

    return [run]


@deskmeter_app.command("watch")
def watch(
    aggregator: Annotated[
        list[str] | None,
        typer.Option("--aggregator", help="HOST:PORT; repeat to fail over between several."),
    ] = None,
    heartbeat: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds between heartbeats.")
    ] = None,
    idle_after: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds without input that count as idle.")
    ] = None,
    poll: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds between wmctrl polls (fallback).")
    ] = None,
    machine_id: Annotated[str | None, typer.Option(help="Stable id of this machine.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Name shown for this machine.")] = None,
    display: Annotated[
        str | None, typer.Option(help="X display, e.g. :0 (default: $DISPLAY).")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Gateway URL to follow task changes from.")
    ] = None,
    source: Annotated[
        str, typer.Option(help="auto (X11 events, else wmctrl), x11 or wmctrl.")
    ] = "auto",
    notify: Annotated[
        bool | None, typer.Option(help="Show focus alerts as desktop notifications.")
    ] = None,
) -> None:
    """Track the current workspace, task and idleness and stream them to an aggregator."""
    from sysmonstm.transport.lean_client import lean_grpc_client

    lean_grpc_client()  # before grpc is imported
    from sysmonstm.cli import _run, _settings, err
    from sysmonstm.domains.deskmeter.watcher import run_watcher
    from sysmonstm.errors import ConfigError

    if source not in ("auto", "x11", "wmctrl"):
        err.print(f"[red]error:[/red] --source is auto, x11 or wmctrl, not {source!r}")
        raise typer.Exit(2)
    settings = _settings(
        **{
            "deskmeter.aggregators": aggregator,
            "deskmeter.heartbeat_s": heartbeat,
            "deskmeter.idle_after_s": idle_after,
            "deskmeter.poll_s": poll,
            "deskmeter.machine_id": machine_id,
            "deskmeter.hostname": hostname,
            "deskmeter.gateway": gateway,
            "deskmeter.notify": notify,
        }
    )
    kind: SourceKind = "x11" if source == "x11" else "wmctrl" if source == "wmctrl" else "auto"
    try:
        opts = watch_options(settings, kind, display)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    companions = notifications(settings)
    _run(lambda stop: run_watcher(opts, stop, companions))
