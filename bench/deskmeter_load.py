"""Load a synthetic Deskmeter history into an interval store, in bulk, through the store's code.

Replaying years of watcher events through ``IntervalStore.apply`` runs the interval builder
once per event (about 25k events/s here: a minute per backend for five years of three
machines). The history is made of segments that the builder turns into exactly one interval
each (``bench.deskmeter_history``; tests/bench/test_deskmeter_history.py checks it against
``apply``), so the load skips the per-event replay and writes what ``apply`` would have
written:

- the intervals, one per segment (the machine's very last one open, as ``apply`` leaves it);
- the daily rollups: each interval's time per local day of its machine's zone, with the
  local day starts from ``localdays.day_start_ms`` and the intervals that cross a local
  midnight split by the builder's own ``extension_deltas``;
- each machine's state: last event, heartbeat period, its last interval, and the watermark
  of a replay in batches of ``BATCH_EVENTS`` events.

That ``Plan`` is written by the backend's own ``write_plan`` (the SQL ``apply`` runs), in one
transaction, after the backend's own ``open`` created the tables.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.deskmeter_history import TASKS, HistorySpec, MachineHistory, event_count
from sysmonstm.domains.deskmeter import pg_intervals_write, sqlite_intervals_write
from sysmonstm.domains.deskmeter.builder import DayKey, MachineState, extension_deltas
from sysmonstm.domains.deskmeter.localdays import day_start_ms, local_day
from sysmonstm.domains.deskmeter.model import DeskBatch
from sysmonstm.domains.deskmeter.plan import Plan
from sysmonstm.domains.deskmeter.store_pg import PgIntervals
from sysmonstm.domains.deskmeter.store_sqlite import SqliteIntervals
from sysmonstm.store import sqlite_db

BATCH_EVENTS = 2_000  # the replay the loaded watermark stands for
_CHUNK = 100_000  # intervals per write_plan call


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a load wrote."""

    intervals: int
    day_rows: int
    events: int  # what the watchers would have sent for it


def _day_rollups(h: MachineHistory) -> dict[DayKey, tuple[int, int]]:
    """Milliseconds and interval pieces per (local day, task, workspace, idle) of a machine."""
    p = h.profile
    lo = local_day(int(h.start[0]), p.time_zone) - timedelta(days=2)
    hi = local_day(int(h.stop[-1]), p.time_zone) + timedelta(days=2)
    days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
    starts = np.array([day_start_ms(d, p.time_zone) for d in days], dtype=np.int64)
    first_day = np.searchsorted(starts, h.start, side="right") - 1
    last_day = np.searchsorted(starts, h.stop - 1, side="right") - 1
    single = first_day == last_day
    n_ws, n_task = len(p.workspaces), len(TASKS)
    code = (
        (first_day[single].astype(np.int64) * n_task + h.task[single]) * n_ws + h.ws[single]
    ) * 2 + h.idle[single]
    keys, inverse = np.unique(code, return_inverse=True)
    ms = np.zeros(len(keys), dtype=np.int64)
    np.add.at(ms, inverse, (h.stop - h.start)[single])
    pieces = np.bincount(inverse, minlength=len(keys))
    out: dict[DayKey, tuple[int, int]] = {}
    for key, total, count in zip(keys.tolist(), ms.tolist(), pieces.tolist(), strict=True):
        rest, idle = divmod(key, 2)
        rest, ws = divmod(rest, n_ws)
        day, task = divmod(rest, n_task)
        k = DayKey(p.id, days[day].isoformat(), TASKS[task], p.workspaces[ws], ws, bool(idle))
        out[k] = (total, count)
    for i in np.flatnonzero(~single).tolist():
        iv = h.interval(i)
        for delta in extension_deltas(iv, iv.start_ms, iv.end_ms):
            ms_, n_ = out.get(delta.key, (0, 0))
            out[delta.key] = (ms_ + delta.ms, n_ + delta.pieces)
    return out


def _state(h: MachineHistory, spec: HistorySpec) -> MachineState:
    last = h.interval(len(h) - 1)
    n_events = event_count(h, spec.heartbeat_ms)
    return MachineState(
        h.profile.machine,
        heartbeat_ms=spec.heartbeat_ms,
        last_event_ms=last.end_ms,
        stored_through=math.ceil(n_events / BATCH_EVENTS),
        last=last,
    )


def plans(histories: list[MachineHistory], spec: HistorySpec) -> Iterator[Plan]:
    """The writes of the whole history, in parts of at most ``_CHUNK`` intervals: rollups
    and machine states in the first part, intervals spread over all of them."""
    first = Plan()
    for h in histories:
        first.days.update(_day_rollups(h))
        first.states[h.profile.id] = _state(h, spec)
    pending = first
    for h in histories:
        for lo in range(0, len(h), _CHUNK):
            for iv in h.intervals(lo, lo + _CHUNK):
                pending.intervals[(iv.machine, iv.start_ms)] = iv
            yield pending
            pending = Plan()


def _identities(histories: list[MachineHistory]) -> list[DeskBatch]:
    """What ``load_states`` reads of a batch: its machine (a new one gets its row)."""
    return [DeskBatch(h.profile.machine, 0, ()) for h in histories]


def _summary(histories: list[MachineHistory], spec: HistorySpec, day_rows: int) -> Loaded:
    return Loaded(
        sum(len(h) for h in histories),
        day_rows,
        sum(event_count(h, spec.heartbeat_ms) for h in histories),
    )


async def load_sqlite(histories: list[MachineHistory], spec: HistorySpec, path: Path) -> Loaded:
    """Load into the SQLite file ``path`` (created by the store's own ``open``)."""
    store = SqliteIntervals(f"sqlite:///{path}")
    await store.open()
    await store.close()
    conn = sqlite_db.connect(path, synchronous="normal")
    day_rows = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        _, ids = sqlite_intervals_write.load_states(conn, _identities(histories))
        for plan in plans(histories, spec):
            day_rows += len(plan.days)
            sqlite_intervals_write.write_plan(conn, plan, ids)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return _summary(histories, spec, day_rows)


async def load_pg(histories: list[MachineHistory], spec: HistorySpec, dsn: str) -> Loaded:
    """Load into the PostgreSQL database ``dsn`` (migrated by the store's own ``open``),
    then ANALYZE it, as autovacuum would after a load this size."""
    store = PgIntervals(dsn)
    await store.open()
    day_rows = 0
    try:
        async with store.db.tx("bulk load") as conn:
            _, ids = await pg_intervals_write.load_states(conn, _identities(histories))
            for plan in plans(histories, spec):
                day_rows += len(plan.days)
                await pg_intervals_write.write_plan(conn, plan, ids)
        async with store.db.tx("analyze") as conn:
            await conn.execute("ANALYZE desk_machines, desk_intervals, desk_days")
    finally:
        await store.close()
    return _summary(histories, spec, day_rows)


def sqlite_counts(path: Path) -> tuple[int, int]:
    """(intervals, rollup rows) in the file."""
    conn = sqlite3.connect(path)
    try:
        n = conn.execute("SELECT count(*) FROM desk_intervals").fetchone()[0]
        d = conn.execute("SELECT count(*) FROM desk_days").fetchone()[0]
    finally:
        conn.close()
    return int(n), int(d)
