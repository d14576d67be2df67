"""``sysmonstm payments adapter stripe|paypal|bank``: receive a processor's webhooks (or the
bank's feed and statements) and stream them to the hub.

Flags choose where to listen and where the hub is; secrets (webhook secrets, the PayPal
webhook id, the bank token, the card key) come only from settings, env or key files.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sysmonstm.cli_payments import payments_app


@payments_app.command("adapter")
def adapter(
    kind: Annotated[str, typer.Argument(help="stripe, paypal or bank")],
    listen: Annotated[
        str | None, typer.Option(help="HOST:PORT for the webhooks (default: from settings).")
    ] = None,
    hub: Annotated[
        list[str] | None,
        typer.Option("--hub", help="Hub (aggregator) HOST:PORT; repeat to fail over."),
    ] = None,
    machine_id: Annotated[
        str | None, typer.Option(help="Stable id of this adapter's machine.")
    ] = None,
) -> None:
    """Verify and normalize a processor's webhooks, spool them, stream them to the hub."""
    from sysmonstm.cli import _run, _settings, err, out
    from sysmonstm.domains.payments.adapter_run import KINDS, Kind, check, run_adapter
    from sysmonstm.errors import ConfigError

    if kind not in KINDS:
        err.print(f"[red]error:[/red] adapter is stripe, paypal or bank, not {kind!r}")
        raise typer.Exit(2)
    chosen: Kind = "stripe" if kind == "stripe" else "paypal" if kind == "paypal" else "bank"
    settings = _settings(**{f"payments.{chosen}.listen": listen, "payments.hub": hub})
    try:  # refuse a missing secret before anything listens
        check(chosen, settings)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc

    def ready(url: str) -> None:
        out.print(f"[bold green]{chosen} adapter is up[/bold green]  {url}")

    _run(lambda stop: run_adapter(chosen, settings, stop, machine_id=machine_id, on_ready=ready))
