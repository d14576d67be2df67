"""The ``sysmonstm`` command. Thin: parses flags into settings, then calls a service."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sysmonstm.cli_archive import archive_app
from sysmonstm.cli_certs import certs_app
from sysmonstm.cli_db import db_app
from sysmonstm.cli_deskmeter import deskmeter_app
from sysmonstm.cli_payments import payments_app
from sysmonstm.config import Settings, load_settings
from sysmonstm.errors import ConfigError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Streaming telemetry: collectors → aggregator → tiers → rules → dashboards.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect settings.")
rules_app = typer.Typer(no_args_is_help=True, help="Work with rule files.")
app.add_typer(config_app, name="config")
app.add_typer(rules_app, name="rules")
app.add_typer(certs_app, name="certs")
app.add_typer(db_app, name="db")
app.add_typer(archive_app, name="archive")
app.add_typer(deskmeter_app, name="deskmeter")
app.add_typer(payments_app, name="payments")
out = Console()
err = Console(stderr=True)


class _Globals:
    config: Path | None = None
    overrides: dict[str, Any]

    def __init__(self) -> None:
        self.overrides = {}


_G = _Globals()


def _put(tree: dict[str, Any], dotted: str, value: object) -> None:
    if value is None:
        return
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def _settings(**flags: object) -> Settings:
    """Settings with the global flags and this command's flags (``section.key=value``)."""
    overrides = json.loads(json.dumps(_G.overrides))
    for dotted, value in flags.items():
        _put(overrides, dotted.replace("__", "."), value)
    try:
        settings = load_settings(overrides, _G.config)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    from sysmonstm.logs import configure_logging

    configure_logging(settings.log.level, settings.log.format)
    return settings


def _tls(cert: Path | None, key: Path | None, ca: Path | None) -> dict[str, Path] | None:
    found = {k: v for k, v in (("cert", cert), ("key", key), ("ca", ca)) if v is not None}
    return found or None


@app.callback()
def main_options(
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where embedded data lives.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error")] = None,
    log_format: Annotated[str | None, typer.Option(help="auto, json, console")] = None,
) -> None:
    _G.config = config
    _put(_G.overrides, "data_dir", str(data_dir) if data_dir else None)
    _put(_G.overrides, "log.level", log_level)
    _put(_G.overrides, "log.format", log_format)


def _run(service: Any) -> None:
    from sysmonstm.errors import SysmonstmError
    from sysmonstm.services.runner import run_until_signalled

    try:
        run_until_signalled(service)
    except SysmonstmError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def up(
    demo_hosts: Annotated[int, typer.Option(min=0, max=1000, help="Add N simulated machines.")] = 0,
    collect: Annotated[bool, typer.Option(help="Collect this machine.")] = True,
    http: Annotated[str | None, typer.Option(help="Dashboard/API listen address.")] = None,
    grpc: Annotated[str | None, typer.Option(help="gRPC listen address.")] = None,
) -> None:
    """Run everything in one process on the embedded default and print the dashboard URL."""
    from sysmonstm.services.up import UpOptions, run_up

    settings = _settings(**{"gateway.listen": http, "aggregator.listen": grpc})

    def ready(url: str) -> None:
        out.print(
            f"[bold green]sysmonstm is up[/bold green]  dashboard: {url}/  "
            f"API docs: {url}/docs  gRPC: {settings.aggregator.listen}",
            highlight=False,
        )

    _run(lambda stop: run_up(settings, stop, UpOptions(demo_hosts, collect), ready))


@app.command()
def aggregator(
    listen: Annotated[str | None, typer.Option(help="gRPC listen address.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server key (PEM).")] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(help="Require client certificates signed by this CA (mutual TLS)."),
    ] = None,
) -> None:
    """Receive collector streams over gRPC and store them."""
    from sysmonstm.runtime import Core
    from sysmonstm.services.aggregator import serve_aggregator

    settings = _settings(
        **{"aggregator.listen": listen, "aggregator.tls": _tls(tls_cert, tls_key, tls_ca)}
    )

    async def service(stop: asyncio.Event) -> None:
        core = await Core.open(settings)
        try:
            await serve_aggregator(core, stop)
        finally:
            await core.close()

    _run(service)


@app.command()
def collector(
    aggregator: Annotated[
        list[str] | None,
        typer.Option("--aggregator", help="HOST:PORT; repeat to fail over between several."),
    ] = None,
    interval: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds between samples.")
    ] = None,
    machine_id: Annotated[str | None, typer.Option(help="Stable id of this machine.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Name shown for this machine.")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value; repeatable.")] = None,
    spool_dir: Annotated[Path | None, typer.Option(help="On-disk spool directory.")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="Trust this CA.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Client certificate (mTLS).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Client key (mTLS).")] = None,
    batch_frames: Annotated[
        int | None,
        typer.Option(
            min=1, max=3600, help="Samples per message: fewer messages, later live views."
        ),
    ] = None,
) -> None:
    """Sample this machine with psutil and stream to an aggregator."""
    from sysmonstm.transport.lean_client import lean_grpc_client

    lean_grpc_client()  # before grpc is imported
    # not services.up: a collector runs all day on every machine and needs none of the
    # gateway's, the stores' or the archive's libraries (issue 6, collector cost and memory)
    from sysmonstm.domains.metrics.collector import collector_options, run_collector

    labels = None
    if label:
        bad = [item for item in label if "=" not in item]
        if bad:
            err.print(f"[red]error:[/red] labels are key=value, not {bad[0]!r}")
            raise typer.Exit(2)
        labels = dict(item.split("=", 1) for item in label)
    settings = _settings(
        **{
            "collector.aggregators": aggregator,
            "collector.interval_s": interval,
            "collector.machine_id": machine_id,
            "collector.hostname": hostname,
            "collector.labels": labels,
            "collector.spool_dir": str(spool_dir) if spool_dir else None,
            "collector.tls": _tls(tls_cert, tls_key, tls_ca),
            "collector.batch_frames": batch_frames,
        }
    )
    opts = collector_options(settings, tuple(settings.collector.aggregators))
    _run(lambda stop: run_collector(opts, stop))


@app.command()
def alerts(
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", help="Rule file or directory; repeatable.")
    ] = None,
    defaults: Annotated[bool, typer.Option(help="Also load the domains' shipped rules.")] = True,
) -> None:
    """Evaluate rules on the event stream and publish alerts."""
    from sysmonstm.runtime import Core
    from sysmonstm.services.rules import serve_rules

    settings = _settings(
        **{"rules.files": [str(r) for r in rules] if rules else None, "rules.defaults": defaults}
    )

    async def service(stop: asyncio.Event) -> None:
        core = await Core.open(settings)
        try:
            await serve_rules(core, stop)
        finally:
            await core.close()

    _run(service)


@app.command()
def gateway(
    listen: Annotated[str | None, typer.Option(help="HTTP listen address.")] = None,
) -> None:
    """Serve the REST API, the WebSocket push and the dashboard."""
    from sysmonstm.gateway.server import serve_gateway
    from sysmonstm.runtime import Core

    settings = _settings(**{"gateway.listen": listen})

    async def service(stop: asyncio.Event) -> None:
        core = await Core.open(settings)
        try:
            await serve_gateway(core, stop)
        finally:
            await core.close()

    _run(service)


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of TOML.")] = False,
) -> None:
    """Print the effective settings (defaults < file < SYSMONSTM_* env < flags); passwords in
    URLs are shown as ``***``."""
    from sysmonstm.config import dump_toml
    from sysmonstm.redact import redact

    settings = _settings()
    if as_json:
        print(redact(json.dumps(settings.model_dump(mode="json"), indent=2)))
    else:
        print(redact(dump_toml(settings)), end="")


@rules_app.command("check")
def rules_check(files: Annotated[list[Path], typer.Argument(help="Rule files.")]) -> None:
    """Load rule files and list their rules, or say exactly what is wrong."""
    from rich.table import Table

    from sysmonstm.rules.loader import load_rules

    try:
        loaded = load_rules(files)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table("rule", "topic", "condition", "for", "severity")
    for r in loaded:
        cond = f"{r.field or ''} {r.op} {r.threshold if r.threshold is not None else ''}"
        table.add_row(r.name, r.topic, cond.strip(), f"{r.for_ms / 1000:g} s", str(r.severity))
    out.print(table)


def main() -> None:
    app()
