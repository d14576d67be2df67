"""The heartbeats the ingestion benchmark sends, and what a correct server must have stored.

One source (an ActivityWatch window watcher, or a Deskmeter watcher) reports the window in
front once a second, as aw-watcher-window does (poll 1 s, ``pulsetime`` 2 s). The person
stays on one app for a while (geometric dwell, ``MEAN_DWELL`` seconds on average), then moves
to another. Source ``i`` of a run gets its own deterministic sequence (seed ``i``), all
sources the same start time, so the same ``(count, sources)`` always means the same
heartbeats, whichever server receives them.

What must be stored afterwards, exactly:

- ActivityWatch (aw-server, and our ``/api/0``): heartbeats with equal data less than
  ``pulsetime`` apart merge, so each run of one app is one event from its first heartbeat to
  its last (``aw_events``);
- Deskmeter (the native gRPC path): a change of app is a SWITCH, the rest HEARTBEATs, so each
  run is one interval from its first heartbeat to the next run's first (the last one, still
  open, to the last heartbeat) (``desk_intervals``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from sysmonstm.domains.deskmeter.model import DeskEvent, EventKind, Machine
from sysmonstm.domains.deskmeter.watcher import wire_event
from sysmonstm.v1 import deskmeter_pb2 as pb
from sysmonstm.v1.common_pb2 import SourceIdentity

STEP_MS = 1_000  # one heartbeat a second
PULSETIME_S = 2.0  # aw-watcher-window's: poll time + 1 s
MEAN_DWELL = 20  # heartbeats on one app, on average
TIME_ZONE = "Europe/Berlin"
APPS = (
    ("firefox", "sysmonstm - Deskmeter benchmarks - Mozilla Firefox"),
    ("code", "deskmeter_queries.py - sysmonstm - Visual Studio Code"),
    ("kitty", "make bench"),
    ("slack", "#deskmeter | sysmonstm - Slack"),
    ("thunderbird", "Inbox - Thunderbird"),
    ("evince", "activitywatch-paper.pdf"),
)


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive heartbeats on one app: ``count`` of them from ``start_ms``."""

    app: int
    start_ms: int
    count: int

    @property
    def last_ms(self) -> int:
        return self.start_ms + (self.count - 1) * STEP_MS


def runs(source: int, count: int, start_ms: int) -> list[Run]:
    """Source ``source``'s ``count`` heartbeats from ``start_ms``, as runs of one app."""
    rng = random.Random(f"heartbeats:{source}")
    out: list[Run] = []
    app = rng.randrange(len(APPS))
    done = 0
    while done < count:
        n = min(count - done, 1 + int(rng.expovariate(1.0 / (MEAN_DWELL - 1))))
        out.append(Run(app, start_ms + done * STEP_MS, n))
        done += n
        app = (app + rng.randrange(1, len(APPS))) % len(APPS)
    return out


def apps(source: int, count: int, start_ms: int) -> list[int]:
    """The app of each heartbeat, in order."""
    return [r.app for r in runs(source, count, start_ms) for _ in range(r.count)]


def bucket_id(source: int) -> str:
    return f"aw-watcher-window_bench-{source}"


def machine_id(source: int) -> str:
    return f"bench-hb-{source}"


def _iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat()


def aw_heartbeat(app: int, t_ms: int) -> dict[str, object]:
    """The event an ActivityWatch window watcher posts."""
    name, title = APPS[app]
    return {"timestamp": _iso(t_ms), "duration": 0, "data": {"app": name, "title": title}}


def aw_events(source: int, count: int, start_ms: int) -> list[tuple[int, float, str]]:
    """The merged events a correct ActivityWatch server stores: (start ms, duration s, app),
    oldest first."""
    return [
        (r.start_ms, (r.last_ms - r.start_ms) / 1000, APPS[r.app][0])
        for r in runs(source, count, start_ms)
    ]


def desk_intervals(source: int, count: int, start_ms: int) -> list[tuple[int, int, str]]:
    """The intervals a correct Deskmeter store holds: (start ms, end ms, workspace)."""
    rs = runs(source, count, start_ms)
    ends = [r.start_ms for r in rs[1:]] + [rs[-1].last_ms]
    return [(r.start_ms, end, APPS[r.app][0]) for r, end in zip(rs, ends, strict=True)]


def desk_events(source: int, count: int, start_ms: int) -> list[DeskEvent]:
    """Source ``source``'s heartbeats as a Deskmeter watcher reports them: a SWITCH where the
    app changes, a HEARTBEAT otherwise."""
    out: list[DeskEvent] = []
    previous = -1
    for i, app in enumerate(apps(source, count, start_ms)):
        kind = EventKind.SWITCH if app != previous else EventKind.HEARTBEAT
        out.append(
            DeskEvent(start_ms + i * STEP_MS, kind, app, APPS[app][0], "", False, 400, TIME_ZONE)
        )
        previous = app
    return out


def desk_machine(source: int) -> Machine:
    return Machine(machine_id(source), f"bench-host-{source}", TIME_ZONE)


def desk_batches(source: int, count: int, start_ms: int, per_batch: int) -> list[bytes]:
    """Source ``source``'s heartbeats as serialized ``DeskBatch``es of ``per_batch`` events
    (1: every heartbeat its own batch), sequences 1, 2, ..."""
    m = desk_machine(source)
    identity = SourceIdentity(machine_id=m.id, hostname=m.host)
    events = [wire_event(e) for e in desk_events(source, count, start_ms)]
    return [
        pb.DeskBatch(
            source=identity,
            sequence=seq,
            events=events[lo : lo + per_batch],
            heartbeat_ms=STEP_MS,
        ).SerializeToString()
        for seq, lo in enumerate(range(0, len(events), per_batch), start=1)
    ]
