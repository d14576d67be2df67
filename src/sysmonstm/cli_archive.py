"""``sysmonstm archive``: the cold tier by hand (run the archiving job, list, restore).

Thin: opens the warm tier and the archive named by the settings, then calls
``store.archiving``. The aggregator runs the same job every hour on its own; ``run`` is for
doing it now (and watching it), ``restore`` for bringing a partition back into the warm tier.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sysmonstm.config import Settings
from sysmonstm.errors import SysmonstmError
from sysmonstm.store.tiers import Tier

if TYPE_CHECKING:  # the stores' modules load numpy and msgspec: only when a command runs
    from sysmonstm.store.archive import Archive, Manifest
    from sysmonstm.store.model import PartitionInfo
    from sysmonstm.store.warm import WarmTier

T = TypeVar("T")

archive_app = typer.Typer(
    no_args_is_help=True,
    help="The cold tier: archive warm partitions past retention to Parquet, list, restore.",
)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _settings() -> Settings:
    from sysmonstm.cli import _settings as load  # the global flags live in cli.py

    return load()


@asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[tuple[WarmTier, Archive]]:
    from sysmonstm.runtime import retention_of
    from sysmonstm.store.archive_registry import open_archive
    from sysmonstm.store.registry import open_warm

    archive = open_archive(settings.archive)
    if archive is None:
        raise SysmonstmError("no archive is configured: set archive.url (file:///… or s3://…)")
    warm = open_warm(settings.warm.url, retention_of(settings))
    await warm.open()
    try:
        await archive.open()
        try:
            yield warm, archive
        finally:
            await archive.close()
    finally:
        await warm.close()


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(work())
    except SysmonstmError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def size(n: float) -> str:
    """``1536`` → ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def period(m: Manifest | PartitionInfo) -> str:
    """The partition's period as people write it: a day, a month or a year (UTC)."""
    start = datetime.fromtimestamp(m.start_ms / 1000, UTC)
    return start.strftime({Tier.RAW: "%Y-%m-%d", Tier.M1: "%Y-%m"}.get(m.tier, "%Y"))


@archive_app.command("run")
def run_cmd(
    dry_run: Annotated[bool, typer.Option(help="Only list the partitions that are due.")] = False,
) -> None:
    """Archive every warm partition past its tier's retention now (verified, then dropped)."""
    from sysmonstm.runtime import retention_of
    from sysmonstm.store.archiving import Archiver, Status

    settings = _settings()

    async def work() -> int:
        async with _opened(settings) as (warm, archive):
            archiver = Archiver(warm, archive, retention_of(settings))
            if dry_run:
                for info in await archiver.due():
                    _out.print(f"{info.name}  {info.tier}  {period(info)}")
                return 0
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=_err, transient=True) as bar:
                task = bar.add_task("archiving", total=None)

                def progress(info: PartitionInfo, done: int, total: int) -> None:
                    bar.update(task, total=total, completed=done, description=info.name)

                outcomes = await archiver.run(progress=progress)
            table = Table("partition", "status", "rows", "bytes", "B/row", box=box.SIMPLE_HEAD)
            for o in outcomes:
                m = o.manifest
                table.add_row(
                    o.partition.name,
                    str(o.status) if not o.error else f"[red]{o.status}[/red]: {o.error}",
                    f"{m.rows:,}" if m else "",
                    size(m.bytes) if m else "",
                    f"{m.bytes_per_row:.2f}" if m else "",
                )
            _out.print(table if outcomes else "nothing is due for archiving")
            return sum(o.status is Status.FAILED for o in outcomes)

    if _run(work):
        raise typer.Exit(1)


@archive_app.command("list")
def list_cmd(
    tier: Annotated[Tier | None, typer.Option(help="Only this tier.")] = None,
) -> None:
    """The archived partitions: tier, period, rows, bytes and bytes per sample."""
    settings = _settings()

    async def work() -> list[Manifest]:
        async with _opened(settings) as (_, archive):
            return await archive.manifests()

    found = [m for m in _run(work) if tier is None or m.tier is tier]
    table = Table(
        title=f"archive {settings.archive.url}",
        caption="raw: a row is a sample; 1m, 1h: a row is a bucket (min, max, sum, count, last)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("partition", no_wrap=True)
    table.add_column("tier", no_wrap=True)
    table.add_column("period", no_wrap=True)
    for name in ("rows", "bytes", "B/sample"):
        table.add_column(name, justify="right", no_wrap=True)
    for m in found:
        table.add_row(
            m.name,
            str(m.tier),
            period(m),
            f"{m.rows:,}",
            size(m.bytes),
            f"{m.bytes_per_row:.2f}",
        )
    _out.print(table)
    if found:
        rows, stored = sum(m.rows for m in found), sum(m.bytes for m in found)
        _out.print(f"{len(found)} partitions, {rows:,} rows, {size(stored)}")


@archive_app.command("restore")
def restore_cmd(
    partition: Annotated[str, typer.Argument(help="e.g. raw_20261204, m1_202612, h1_2026")],
) -> None:
    """Write an archived partition back into the warm tier (checked against its manifest).

    If it is still past its tier's retention, the next retention pass archives and drops it
    again; raise the retention first to keep it."""
    from sysmonstm.store.archiving import restore_partition

    settings = _settings()

    async def work() -> int:
        async with _opened(settings) as (warm, archive):
            with _err.status(f"restoring {partition}"):
                return await restore_partition(warm, archive, partition)

    rows = _run(work)
    _out.print(f"restored {partition}: {rows:,} rows in the warm tier {settings.warm.url}")
