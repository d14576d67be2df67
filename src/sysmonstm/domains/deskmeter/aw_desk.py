"""ActivityWatch buckets → Deskmeter events: one machine per host, apps as workspaces.

Per hostname of an export, its ``currentwindow`` buckets say which app was in front and its
``afkstatus`` buckets whether the person was away. Together they cut time into segments of
one state: workspace = the app (``""`` where only the AFK watcher saw the machine), idle =
AFK said ``afk``, task = the first matching ``deskmeter.task_rules`` glob of the app. Where
spans overlap (two window watchers), the one that started last wins.

Each segment becomes a SWITCH where the state changes, HEARTBEATs every ``HEARTBEAT_MS``
inside it (the interval builder ends an interval that hears nothing for
``2 * heartbeat + 5 s``) and one at its end, so the builder's own rules rebuild the
segments: a gap of more than ``silence_limit_ms(HEARTBEAT_MS)`` (two minutes) between AW
events (the machine was off or asleep) ends the interval at the last event; shorter gaps are
bridged, as ActivityWatch's pulsetime bridges them.

The machine id is ``aw:<hostname>`` (characters a machine id cannot hold become ``-``).
Batches are cut only between events at different instants, so a machine's last applied
event marks exactly what was imported: a second import of the same or a longer export applies
only what comes after it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sysmonstm.domains.deskmeter.aw_store import AwBucketExport
from sysmonstm.domains.deskmeter.model import DeskBatch, DeskEvent, EventKind, Machine
from sysmonstm.domains.deskmeter.tasks import TaskRules

WINDOW_TYPE = "currentwindow"
AFK_TYPE = "afkstatus"
HEARTBEAT_MS = 60_000
BATCH_EVENTS = 2_000
MACHINE_PREFIX = "aw:"
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9._:-]")


def machine_id(hostname: str) -> str:
    """``aw:<hostname>`` as a valid machine id (1..128 of ``[A-Za-z0-9._:-]``)."""
    return (MACHINE_PREFIX + _NOT_IN_ID.sub("-", hostname or "unknown"))[:128]


@dataclass(frozen=True, slots=True)
class Span:
    """A time span ``[start_ms, end_ms)`` in which a watcher saw ``value``."""

    start_ms: int
    end_ms: int
    value: str
    rank: int  # order of appearance: breaks ties between overlapping spans


@dataclass(slots=True)
class HostTimeline:
    """What the watchers of one host saw."""

    hostname: str
    windows: list[Span]
    afk: list[Span]

    @property
    def machine_id(self) -> str:
        return machine_id(self.hostname)


def timelines(exports: Sequence[AwBucketExport]) -> list[HostTimeline]:
    """The hosts of an export with their window and AFK spans (buckets of other types are
    not Deskmeter's); hosts sorted by name. Spans of no length are dropped."""
    hosts: dict[str, HostTimeline] = {}
    rank = 0
    for export in exports:
        kind = export.bucket.type
        if kind not in (WINDOW_TYPE, AFK_TYPE):
            continue
        host = hosts.setdefault(
            export.bucket.hostname, HostTimeline(export.bucket.hostname, [], [])
        )
        for e in export.events:
            start, end = e.timestamp_ms, e.end_us // 1000
            if end <= start:
                continue
            rank += 1
            if kind == WINDOW_TYPE:
                host.windows.append(Span(start, end, str(e.data.get("app", "")), rank))
            else:
                host.afk.append(Span(start, end, str(e.data.get("status", "")), rank))
    return [hosts[h] for h in sorted(hosts)]


@dataclass(frozen=True, slots=True)
class Segment:
    start_ms: int
    end_ms: int
    app: str
    idle: bool
    idle_since_ms: int | None  # start of the AFK span, when idle


def _covering(spans: list[Span], active: set[int]) -> Span | None:
    if not active:
        return None
    return spans[max(active, key=lambda i: (spans[i].start_ms, spans[i].rank))]


def segments(timeline: HostTimeline) -> Iterator[Segment]:
    """The host's time cut into spans of one state, in time order; gaps left out."""
    points: dict[int, list[tuple[int, bool, int]]] = {}  # t -> (source, opens, index)
    for source, spans in enumerate((timeline.windows, timeline.afk)):
        for i, s in enumerate(spans):
            points.setdefault(s.start_ms, []).append((source, True, i))
            points.setdefault(s.end_ms, []).append((source, False, i))
    active: tuple[set[int], set[int]] = (set(), set())
    times = sorted(points)
    for t, following in itertools.pairwise(times):
        for source, opens, i in points[t]:
            (active[source].add if opens else active[source].discard)(i)
        window = _covering(timeline.windows, active[0])
        afk = _covering(timeline.afk, active[1])
        if window is None and afk is None:
            continue
        away = afk if afk is not None and afk.value == "afk" else None
        app = window.value if window is not None else ""
        yield Segment(t, following, app, away is not None, away.start_ms if away else None)


def desk_events(
    timeline: HostTimeline, rules: TaskRules, time_zone: str, after_ms: int = 0
) -> list[DeskEvent]:
    """The events that rebuild the host's segments (module docstring), only those after
    ``after_ms`` (the machine's last applied event)."""
    out: list[DeskEvent] = []
    previous: Segment | None = None
    for seg in segments(timeline):
        task = rules.task_for(seg.app)
        continues = (
            previous is not None
            and previous.end_ms == seg.start_ms
            and (previous.app, previous.idle) == (seg.app, seg.idle)
        )
        beats = range(seg.start_ms + HEARTBEAT_MS, seg.end_ms, HEARTBEAT_MS)
        times = [*beats, seg.end_ms] if continues else [seg.start_ms, *beats, seg.end_ms]
        for t in times:
            if t <= after_ms:
                continue
            kind = EventKind.SWITCH if t == seg.start_ms else EventKind.HEARTBEAT
            idle_ms = t - seg.idle_since_ms if seg.idle_since_ms is not None else 0
            out.append(DeskEvent(t, kind, 0, seg.app, task, seg.idle, idle_ms, time_zone))
        previous = seg
    return out


def desk_batches(
    machine: Machine, events: Sequence[DeskEvent], first_sequence: int
) -> list[DeskBatch]:
    """``events`` in batches of about ``BATCH_EVENTS``, cut only between different instants,
    numbered from ``first_sequence``."""
    batches: list[DeskBatch] = []
    start = 0
    while start < len(events):
        end = min(start + BATCH_EVENTS, len(events))
        while end < len(events) and events[end].time_ms == events[end - 1].time_ms:
            end += 1
        batches.append(
            DeskBatch(
                machine, first_sequence + len(batches), tuple(events[start:end]), HEARTBEAT_MS
            )
        )
        start = end
    return batches
