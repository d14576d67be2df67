"""``sysmonstm db``: the PostgreSQL warm tier's schema (apply migrations, show the state).

Thin: the work is in ``store.pg_schema``. ``migrate`` is what every aggregator does when it
opens the warm tier; running it first, on its own, is for deployments that change the schema
at a chosen moment. Both commands take ``--url`` or use the configured ``warm.url``, and
print the URL with its password masked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table

from sysmonstm.errors import SysmonstmError
from sysmonstm.redact import redact_url

if TYPE_CHECKING:  # asyncpg is imported only when a db command runs
    from sysmonstm.store.pg_conn import Conn

T = TypeVar("T")

db_app = typer.Typer(
    no_args_is_help=True,
    help="The warm tier's PostgreSQL database: apply schema migrations, show their state.",
)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

Url = Annotated[
    str | None,
    typer.Option("--url", help="postgresql://user@host:5432/db [default: the warm.url setting]"),
]


def _target(url: str | None) -> str:
    if url is None:
        from sysmonstm.cli import _settings  # the global flags live in cli.py

        url = _settings().warm.url
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        _err.print(
            f"[red]error:[/red] {redact_url(url)} is not a PostgreSQL URL"
            " (the SQLite warm tier migrates itself when it opens)"
        )
        raise typer.Exit(2)
    return url


def _on_db(url: str, what: str, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on ``url``; a backend error ends the command."""

    from sysmonstm.store.pg_conn import PgDb

    async def run() -> T:
        db = PgDb(url, min_size=1, max_size=1)
        await db.open()
        try:
            async with db.tx(what) as conn:
                return await work(conn)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except SysmonstmError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@db_app.command("migrate")
def migrate(url: Url = None) -> None:
    """Apply pending schema migrations; safe to repeat, and to run from several hosts at once."""
    from sysmonstm.store.pg_schema import LATEST
    from sysmonstm.store.pg_schema import migrate as apply

    target = _target(url)
    applied = _on_db(target, "migrate", apply)
    for m in applied:
        _out.print(f"applied {m.version}: {m.name}")
    note = "" if applied else ", nothing to apply"
    _out.print(f"{redact_url(target)}: schema version {LATEST}{note}")


@db_app.command("status")
def status(url: Url = None) -> None:
    """Show each schema migration (applied when, or pending) and the time partitions held."""
    from sysmonstm.store import pg_schema
    from sysmonstm.store.partitions import parse_partition
    from sysmonstm.store.pg_partitions import children

    async def look(
        conn: Conn,
    ) -> tuple[list[pg_schema.MigrationState], list[int], dict[str, int], str]:
        known, unknown = await pg_schema.status(conn)
        parts = await children(conn) if all(s.applied_at for s in known) else {}
        version = str(await conn.fetchval("SHOW server_version"))
        return known, unknown, parts, version

    target = _target(url)
    known, unknown, parts, version = _on_db(target, "status", look)
    _out.print(f"{redact_url(target)} (PostgreSQL {version})")
    table = Table("version", "migration", "applied")
    for state in known:
        when = _when(state.applied_at) if state.applied_at else "[yellow]pending[/yellow]"
        table.add_row(str(state.migration.version), state.migration.name, when)
    for v in unknown:
        table.add_row(str(v), "[red]unknown to this sysmonstm[/red]", "")
    _out.print(table)
    pending = sum(1 for s in known if s.applied_at is None)
    if pending:
        _out.print(f"{pending} pending: run `sysmonstm db migrate`")
    by_tier: dict[str, list[str]] = {}
    for name in parts:
        parsed = parse_partition(name)
        if parsed is not None:
            by_tier.setdefault(str(parsed[0]), []).append(name)
    for tier, names in sorted(by_tier.items()):
        names.sort()
        _out.print(f"{tier} partitions: {len(names)} ({names[0]} .. {names[-1]})")


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S %Z}".strip()
