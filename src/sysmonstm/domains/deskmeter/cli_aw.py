"""``sysmonstm deskmeter import-aw FILE``: an ActivityWatch export into sysmonstm.

Opens the ActivityWatch store and the interval store in the warm tier's database (no running
service needed) and runs ``aw_import.import_export`` with a progress bar: buckets as they are
(those present already are skipped, so the command can be run again), then Deskmeter
intervals for machine ``aw:<hostname>`` of each host.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from sysmonstm.cli_deskmeter import deskmeter_app
from sysmonstm.errors import SysmonstmError

if TYPE_CHECKING:
    from sysmonstm.config import Settings
    from sysmonstm.domains.deskmeter.aw_import import ImportReport

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)
_STAGES = {"buckets": "ActivityWatch events", "intervals": "Deskmeter batches"}


async def run_import(
    settings: Settings, path: Path, time_zone: str | None, progress: Progress
) -> ImportReport:
    """Read ``path``, open both stores, import, close them."""
    from sysmonstm.domains.deskmeter.aw_import import import_export, read_export
    from sysmonstm.domains.deskmeter.aw_store import open_aw_store
    from sysmonstm.domains.deskmeter.machine import local_time_zone, valid_zone
    from sysmonstm.domains.deskmeter.stores import open_interval_store
    from sysmonstm.domains.deskmeter.tasks import TaskRules

    zone = time_zone or settings.deskmeter.time_zone or local_time_zone()
    if not valid_zone(zone):
        raise SysmonstmError(f"unknown time zone {zone!r} (use an IANA name)")
    reading = progress.add_task(f"reading {path.name}", total=None)
    exports = await asyncio.to_thread(read_export, path)
    progress.remove_task(reading)
    tasks: dict[str, TaskID] = {}

    def advance(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(_STAGES.get(stage, stage), total=total)
        progress.update(tasks[stage], completed=done, total=total)

    aw = open_aw_store(settings.warm.url)
    intervals = open_interval_store(settings.warm.url)
    await aw.open()
    try:
        await intervals.open()
        try:
            return await import_export(
                exports,
                aw,
                intervals,
                TaskRules(settings.deskmeter.task_rules),
                zone,
                skip_existing=True,
                progress=advance,
            )
        finally:
            await intervals.close()
    finally:
        await aw.close()


def _summary(report: ImportReport) -> None:
    _out.print(
        f"ActivityWatch: {len(report.created)} bucket(s) imported with {report.aw_events} "
        f"event(s)" + (f", {len(report.skipped)} present already" if report.skipped else "")
    )
    for m in report.machines:
        what = f"{m.events} new event(s)" if m.events else "nothing new"
        _out.print(f"Deskmeter: machine {m.machine} (host {m.hostname}): {what}")
    if not report.machines:
        _out.print("Deskmeter: no currentwindow or afkstatus buckets in this export")


@deskmeter_app.command("import-aw")
def import_aw(
    file: Annotated[Path, typer.Argument(help="An ActivityWatch export (JSON).")],
    time_zone: Annotated[
        str | None,
        typer.Option(
            help="IANA zone of the exported machines (default: deskmeter.time_zone, "
            "else this machine's); a machine imported before keeps its own."
        ),
    ] = None,
) -> None:
    """Import an ActivityWatch export: its buckets, and its window and AFK history as
    Deskmeter intervals of machine aw:<hostname>."""
    from sysmonstm.cli import _settings

    settings = _settings()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=_err, transient=True) as bar:
            report = asyncio.run(run_import(settings, file, time_zone, bar))
    except SysmonstmError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    _summary(report)
