"""Import an ActivityWatch export: its buckets as they are, and Deskmeter intervals from them.

Two stages, each safe to run again:

1. ActivityWatch data is stored faithfully in the ActivityWatch store (what ``/api/0``
   serves). ``skip_existing=False`` (``POST /api/0/import``) is all or nothing and refuses a
   bucket that exists, as aw-server does; ``skip_existing=True`` (``sysmonstm deskmeter
   import-aw``) stores bucket by bucket, each in one transaction, and skips buckets already
   present, so an interrupted import resumes where it stopped.
2. Each host's ``currentwindow`` and ``afkstatus`` buckets become Deskmeter events
   (``aw_desk``) for machine ``aw:<hostname>``, applied through the interval store's
   ``apply`` after that machine's last applied event (so a second import changes nothing and
   a longer export adds only what is new). A machine's last interval stays open until the
   aggregator's silence sweep closes it at its last event, as for a watcher that stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sysmonstm.domains.deskmeter.aw_desk import desk_batches, desk_events, timelines
from sysmonstm.domains.deskmeter.aw_json import parse_export
from sysmonstm.domains.deskmeter.aw_store import AwBucketExport, AwStore
from sysmonstm.domains.deskmeter.model import Machine
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.tasks import TaskRules
from sysmonstm.errors import InvalidInputError

APPLY_BATCHES = 10  # batches per interval-store transaction (and per progress step)

#: ``progress(stage, done, total)``: stage "buckets" counts events, "intervals" batches
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class MachineImport:
    """What stage 2 did for one host."""

    machine: str
    hostname: str
    events: int  # Deskmeter events applied (0: everything was imported before)


@dataclass(slots=True)
class ImportReport:
    created: list[str] = field(default_factory=list)  # buckets stored
    skipped: list[str] = field(default_factory=list)  # buckets present already
    aw_events: int = 0  # ActivityWatch events stored
    machines: list[MachineImport] = field(default_factory=list)


def read_export(path: Path) -> list[AwBucketExport]:
    """The export in ``path``, validated whole (``InvalidInputError`` says where it is off)."""
    try:
        raw = json.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvalidInputError(f"{path} is not JSON: {exc}"[:300]) from None
    return parse_export(raw)


async def store_buckets(
    aw: AwStore,
    exports: Sequence[AwBucketExport],
    report: ImportReport,
    *,
    skip_existing: bool,
    progress: Progress = _no_progress,
) -> None:
    """Stage 1 (module docstring)."""
    total = sum(len(x.events) for x in exports)
    if not skip_existing:
        await aw.import_buckets(exports)
        report.created += [x.bucket.id for x in exports]
        report.aw_events += total
        progress("buckets", total, total)
        return
    done = 0
    progress("buckets", 0, total)
    for x in exports:
        if await aw.bucket(x.bucket.id) is not None:
            report.skipped.append(x.bucket.id)
        else:
            await aw.import_buckets([x])
            report.created.append(x.bucket.id)
            report.aw_events += len(x.events)
        done += len(x.events)
        progress("buckets", done, total)


async def feed_intervals(
    intervals: IntervalStore,
    exports: Sequence[AwBucketExport],
    rules: TaskRules,
    time_zone: str,
    report: ImportReport,
    *,
    progress: Progress = _no_progress,
) -> None:
    """Stage 2 (module docstring). A machine seen before keeps its time zone."""
    known = {m.machine.id: m for m in await intervals.machines()}
    plans = []
    for timeline in timelines(exports):
        info = known.get(timeline.machine_id)
        zone = info.machine.time_zone if info is not None else time_zone
        machine = Machine(timeline.machine_id, timeline.hostname, zone)
        after = info.last_event_ms if info is not None else 0
        events = desk_events(timeline, rules, zone, after_ms=after)
        stored = info.stored_through if info is not None else 0
        plans.append((timeline, desk_batches(machine, events, stored + 1), len(events)))
    total = sum(len(batches) for _, batches, _ in plans)
    done = 0
    progress("intervals", 0, total)
    for timeline, batches, n_events in plans:
        for i in range(0, len(batches), APPLY_BATCHES):
            chunk = batches[i : i + APPLY_BATCHES]
            await intervals.apply(chunk)
            done += len(chunk)
            progress("intervals", done, total)
        report.machines.append(MachineImport(timeline.machine_id, timeline.hostname, n_events))


async def import_export(
    exports: Sequence[AwBucketExport],
    aw: AwStore,
    intervals: IntervalStore,
    rules: TaskRules,
    time_zone: str,
    *,
    skip_existing: bool,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Both stages, in order (module docstring)."""
    report = ImportReport()
    await store_buckets(aw, exports, report, skip_existing=skip_existing, progress=progress)
    await feed_intervals(intervals, exports, rules, time_zone, report, progress=progress)
    return report
