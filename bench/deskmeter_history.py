"""Synthetic Deskmeter history: years of realistic desktop days on several machines.

Each machine has its own time zone (Europe, North America, Australia: three different DST
calendars, one of them in the southern hemisphere), its own workspaces and its own habits.
A day on a machine is, by chance:

- off (nights always; most weekend days, some weekdays): no events at all, so the interval
  builder closes the last interval at its last event, as for a machine switched off;
- a workday: one session from about 9 to about 18 local time with a lunch break and a few
  shorter breaks spent idle (the machine stays on, the watcher reports idle), now and then
  running past midnight, rarely through the night (across a DST change when one falls there);
- a lighter weekend session in the afternoon.

Inside a session the person switches workspace every minute or two (exponential dwell
times, mean ``mean_dwell_s``) among 4-6 workspaces, and moves between 8 tasks less often.
The history is a list of *segments* per machine (numpy columns: start, stop, workspace, task,
idle, last of its session). What a watcher would send for it (``events``: a SWITCH at each
segment's start, a HEARTBEAT every ``heartbeat_ms`` while nothing changes and one at the
session's end) makes the interval builder produce exactly one interval per segment; the
test in tests/bench checks that, and ``bench.deskmeter_load`` uses it to load years of
history without replaying every event.

Everything is deterministic for a ``HistorySpec`` (its seed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from sysmonstm.domains.deskmeter.builder import silence_limit_ms
from sysmonstm.domains.deskmeter.model import DeskBatch, DeskEvent, EventKind, Interval, Machine

TASKS = (
    "Project X",
    "Project Y",
    "Client Z",
    "Ops",
    "Email",
    "Meetings",
    "Reading",
    "Admin",
)
_MIN_DWELL_MS = 5_000
_MAX_DWELL_MS = 45 * 60_000
_IDLE_AFTER_MS = 300_000  # the watcher's default idle threshold: idle_ms starts there


@dataclass(frozen=True, slots=True)
class MachineProfile:
    """One machine and the habits of the person at it."""

    id: str
    host: str
    time_zone: str
    workspaces: tuple[str, ...]
    weekday_use: float  # chance the machine is used on a weekday
    weekend_use: float
    start_hour: float  # mean local start of a workday
    hours: float  # mean length of a workday session (lunch included)

    @property
    def machine(self) -> Machine:
        return Machine(self.id, self.host, self.time_zone)


MACHINES = (
    MachineProfile(
        "bench-desk-berlin",
        "desk",
        "Europe/Berlin",
        ("Code", "Web", "Mail", "Chat", "Docs", "Music"),
        0.93,
        0.25,
        8.75,
        9.5,
    ),
    MachineProfile(
        "bench-laptop-nyc",
        "laptop",
        "America/New_York",
        ("Code", "Web", "Mail", "Notes", "Calls"),
        0.8,
        0.35,
        9.5,
        8.5,
    ),
    MachineProfile(
        "bench-studio-sydney",
        "studio",
        "Australia/Sydney",
        ("Edit", "Web", "Mail", "Render"),
        0.7,
        0.3,
        10.0,
        7.5,
    ),
)


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """What to generate: ``years`` of local days ending the day before ``end``."""

    years: float = 5.0
    end: date = date(2026, 11, 1)
    seed: int = 4
    heartbeat_ms: int = 300_000  # the watchers' heartbeat period (``--heartbeat 300``)
    mean_dwell_s: float = 70.0
    machines: tuple[MachineProfile, ...] = field(default=MACHINES)

    @property
    def first_day(self) -> date:
        return self.end - timedelta(days=round(self.years * 365.25))

    @property
    def days(self) -> int:
        return (self.end - self.first_day).days


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_ms(day: date, hours: float, tz: str) -> int:
    """The UTC instant of wall-clock time ``hours`` on local ``day`` (a wall time inside a
    DST gap maps forward, as ``zoneinfo`` does with fold=0)."""
    minutes = int(hours * 60)
    local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=_zone(tz))
    return int(local.timestamp()) * 1000


@dataclass(frozen=True, slots=True)
class _Session:
    start_ms: int
    end_ms: int
    breaks: tuple[tuple[int, int], ...]  # idle spans inside the session, in order


def _sessions(p: MachineProfile, day: date, rng: np.random.Generator) -> list[_Session]:
    """The session starting on local ``day``: none, a workday, or a weekend afternoon."""
    weekend = day.weekday() >= 5
    if rng.random() >= (p.weekend_use if weekend else p.weekday_use):
        return []
    tz = p.time_zone
    if weekend:
        start_h = rng.uniform(13.0, 17.0)
        length_h = rng.uniform(0.75, 3.5)
    else:
        start_h = min(max(rng.normal(p.start_hour, 0.6), 6.5), 12.0)
        length_h = max(rng.normal(p.hours, 0.9), 2.0)
        roll = rng.random()
        if roll < 0.01:  # through the night (across a DST change when one falls there)
            length_h = 28.0 - start_h + rng.uniform(0.0, 2.0)
        elif roll < 0.06:  # past midnight
            length_h = 24.0 - start_h + rng.uniform(0.1, 1.5)
    start = _local_ms(day, start_h, tz)
    end = start + int(length_h * 3_600_000)
    breaks: list[tuple[int, int]] = []
    if not weekend:  # lunch
        lunch = _local_ms(day, rng.uniform(12.0, 13.5), tz)
        if start + 1_800_000 < lunch < end - 3_600_000:
            breaks.append((lunch, lunch + int(rng.integers(25, 65)) * 60_000))
    for _ in range(int(rng.integers(0, 4))):  # coffee, a call away from the desk
        at = int(rng.integers(start + 600_000, max(start + 600_001, end - 1_800_000)))
        span = (at, at + int(rng.integers(6, 30)) * 60_000)
        if all(span[1] < b[0] or span[0] > b[1] for b in breaks):
            breaks.append(span)
    breaks.sort()
    return [_Session(start, end, tuple(breaks))]


def _pieces(s: _Session) -> list[tuple[int, int, bool]]:
    """The session cut into active and idle spans ``(start, stop, idle)``."""
    out: list[tuple[int, int, bool]] = []
    t = s.start_ms
    for b_start, b_end in s.breaks:
        if b_start >= s.end_ms:
            break
        if b_start > t:
            out.append((t, b_start, False))
        stop = min(b_end, s.end_ms)
        out.append((b_start, stop, True))
        t = stop
    if t < s.end_ms:
        out.append((t, s.end_ms, False))
    return out


def _dwells(start: int, stop: int, mean_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Segment starts inside an active span: exponential dwell times, clipped."""
    starts = [np.array([start], dtype=np.int64)]
    t = start
    while True:
        n = int((stop - t) / mean_ms * 1.3) + 8
        d = np.clip(rng.exponential(mean_ms, n), _MIN_DWELL_MS, _MAX_DWELL_MS).astype(np.int64)
        more = t + np.cumsum(d)
        inside = more[more < stop]
        starts.append(inside)
        if len(inside) < n:
            return np.concatenate(starts)
        t = int(inside[-1])


@dataclass(frozen=True, slots=True)
class MachineHistory:
    """A machine's segments, in time order; each one becomes one interval.

    Consecutive segments of a session touch (``stop[i] == start[i + 1]``) and differ in
    workspace, task or idle; sessions are separated by more than the builder's silence limit.
    """

    profile: MachineProfile
    start: np.ndarray  # int64 UTC ms
    stop: np.ndarray  # int64 UTC ms
    ws: np.ndarray  # index into profile.workspaces
    task: np.ndarray  # index into TASKS
    idle: np.ndarray  # bool
    session_last: np.ndarray  # bool: the session ends with this segment

    def __len__(self) -> int:
        return len(self.start)

    def interval(self, i: int) -> Interval:
        """Segment ``i`` as the builder stores it (the very last one is still open)."""
        p = self.profile
        ws = int(self.ws[i])
        return Interval(
            p.id,
            int(self.start[i]),
            int(self.stop[i]),
            ws,
            p.workspaces[ws],
            TASKS[int(self.task[i])],
            bool(self.idle[i]),
            open=i == len(self.start) - 1,
            time_zone=p.time_zone,
        )

    def intervals(self, lo: int = 0, hi: int | None = None) -> list[Interval]:
        """Segments ``lo:hi`` as intervals (``interval`` for each, in bulk)."""
        hi = len(self.start) if hi is None else min(hi, len(self.start))
        p = self.profile
        names = p.workspaces
        tz = p.time_zone
        last = len(self.start) - 1
        columns = zip(
            range(lo, hi),
            self.start[lo:hi].tolist(),
            self.stop[lo:hi].tolist(),
            self.ws[lo:hi].tolist(),
            self.task[lo:hi].tolist(),
            self.idle[lo:hi].tolist(),
            strict=True,
        )
        return [
            Interval(p.id, a, b, w, names[w], TASKS[t], i, i_ == last, tz)
            for i_, a, b, w, t, i in columns
        ]

    def covering(self, t_ms: int) -> int | None:
        """The segment covering instant ``t_ms`` (``start <= t < stop``; the open last one
        also at its stop), or None."""
        i = int(np.searchsorted(self.start, t_ms, side="right")) - 1
        if i < 0:
            return None
        stop = int(self.stop[i])
        last = i == len(self.start) - 1
        return i if t_ms < stop or (last and t_ms == stop) else None


def machine_history(spec: HistorySpec, p: MachineProfile) -> MachineHistory:
    """Machine ``p``'s segments over the history."""
    rng = np.random.default_rng([spec.seed, *p.id.encode()])
    mean_ms = spec.mean_dwell_s * 1000
    gap = silence_limit_ms(spec.heartbeat_ms)
    starts: list[np.ndarray] = []
    idles: list[np.ndarray] = []
    ends: list[int] = []  # session end of each piece, to derive stops
    last_end = -gap
    day = spec.first_day
    while day < spec.end:
        for s in _sessions(p, day, rng):
            if s.start_ms <= last_end + gap:  # the night before ran into this morning
                continue
            for a, b, idle in _pieces(s):
                seg = np.array([a], dtype=np.int64) if idle else _dwells(a, b, mean_ms, rng)
                starts.append(seg)
                idles.append(np.full(len(seg), idle))
                ends.append(b)
            ends[-1] = -s.end_ms  # marks the session's last piece
            last_end = s.end_ms
        day += timedelta(days=1)
    start = np.concatenate(starts)
    piece_stop = np.concatenate(
        [np.full(len(a), abs(e), np.int64) for a, e in zip(starts, ends, strict=True)]
    )
    last_piece = np.concatenate([np.arange(len(a)) == len(a) - 1 for a in starts])
    session_end = np.concatenate(
        [np.full(len(a), e < 0) for a, e in zip(starts, ends, strict=True)]
    )
    # inside a piece a segment ends where the next starts; a piece's last ends with the piece
    stop = np.where(last_piece, piece_stop, np.append(start[1:], 0))
    n = len(start)
    moved = rng.random(n) < 0.85
    ws_step = np.where(moved, rng.integers(1, len(p.workspaces), n), 0)
    task_step = np.where(~moved | (rng.random(n) < 0.1), rng.integers(1, len(TASKS), n), 0)
    ws = (int(rng.integers(len(p.workspaces))) + np.cumsum(ws_step)) % len(p.workspaces)
    task = (int(rng.integers(len(TASKS))) + np.cumsum(task_step)) % len(TASKS)
    return MachineHistory(
        p,
        start,
        stop,
        ws.astype(np.int16),
        task.astype(np.int16),
        np.concatenate(idles),
        last_piece & session_end,
    )


def history(spec: HistorySpec) -> list[MachineHistory]:
    return [machine_history(spec, p) for p in spec.machines]


def events(h: MachineHistory, heartbeat_ms: int) -> Iterator[DeskEvent]:
    """What the machine's watcher sends for its segments, in time order: a SWITCH at each
    segment's start, HEARTBEATs every ``heartbeat_ms`` inside it, one at a session's end."""
    p = h.profile
    for i in range(len(h)):
        start, stop = int(h.start[i]), int(h.stop[i])
        ws, task, idle = int(h.ws[i]), TASKS[int(h.task[i])], bool(h.idle[i])
        state = (ws, p.workspaces[ws], task, idle)
        times = [start, *range(start + heartbeat_ms, stop, heartbeat_ms)]
        if h.session_last[i]:
            times.append(stop)
        for t in times:
            kind = EventKind.SWITCH if t == start else EventKind.HEARTBEAT
            idle_ms = _IDLE_AFTER_MS + t - start if idle else 0
            yield DeskEvent(t, kind, *state, idle_ms, p.time_zone)


def event_count(h: MachineHistory, heartbeat_ms: int) -> int:
    """``len(list(events(h, heartbeat_ms)))`` without building them."""
    per_segment = -((h.start - h.stop) // heartbeat_ms)  # ceil(duration / heartbeat)
    return int(per_segment.sum()) + int(h.session_last.sum())


def batches(h: MachineHistory, heartbeat_ms: int, size: int) -> Iterator[DeskBatch]:
    """The machine's events in batches of ``size``, sequences 1, 2, ..."""
    machine = h.profile.machine
    chunk: list[DeskEvent] = []
    sequence = 0
    for event in events(h, heartbeat_ms):
        chunk.append(event)
        if len(chunk) == size:
            sequence += 1
            yield DeskBatch(machine, sequence, tuple(chunk), heartbeat_ms)
            chunk = []
    if chunk:
        yield DeskBatch(machine, sequence + 1, tuple(chunk), heartbeat_ms)
