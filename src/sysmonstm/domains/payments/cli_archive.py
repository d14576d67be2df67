"""``sysmonstm payments archive``: closed months of the audit log and the ledger to the core's
archive (``archive.url``) as verified Parquet (``domains/payments/archive.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from sysmonstm.cli_payments import payments_app

DEFAULT_AFTER_S = 90 * 86_400.0


@payments_app.command("archive")
def archive(
    after: Annotated[
        str | None,
        typer.Option(help="Archive months that ended this long ago (e.g. 90d; default 90 days)."),
    ] = None,
) -> None:
    """Archive the audit log and ledger months past ``--after`` as verified Parquet."""
    import asyncio

    from sysmonstm.cli import _settings, err, out
    from sysmonstm.config import parse_duration
    from sysmonstm.domains.payments.archive import PaymentsArchiver, Status
    from sysmonstm.domains.payments.ledgers import open_ledger
    from sysmonstm.domains.payments.pii import cipher_for
    from sysmonstm.errors import SysmonstmError
    from sysmonstm.store.archive_registry import open_store

    settings = _settings()
    if not settings.archive.url:
        err.print("[red]error:[/red] archive.url is not set: there is nowhere to archive to")
        raise typer.Exit(2)
    try:
        after_s = DEFAULT_AFTER_S if after is None else parse_duration(after)
    except ValueError as exc:
        err.print(f"[red]error:[/red] --after {after!r}: {exc}")
        raise typer.Exit(2) from exc

    async def work() -> list[tuple[str, Status, int, str]]:
        assert settings.warm.url  # derived from data_dir by the settings
        ledger = open_ledger(settings.warm.url, cipher_for(settings.payments))
        store = open_store(settings.archive)
        await ledger.open()
        try:
            await store.open()
            outcomes = await PaymentsArchiver(ledger, store, int(after_s * 1000)).run()
        finally:
            await store.close()
            await ledger.close()
        return [(o.name, o.status, o.rows, o.error) for o in outcomes]

    try:
        outcomes = asyncio.run(work())
    except SysmonstmError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for name, status, rows, error in outcomes:
        out.print(f"{name}: {status} ({rows} rows){' ' + error if error else ''}", highlight=False)
    if not outcomes:
        out.print("nothing due")
    if any(s in (Status.FAILED, Status.CONFLICT) for _, s, _, _ in outcomes):
        raise typer.Exit(1)
