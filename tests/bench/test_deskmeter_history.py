"""The benchmark's synthetic Deskmeter history is valid, and its bulk load writes exactly what
replaying the watchers' events through ``IntervalStore.apply`` writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
import pytest

from bench.deskmeter_history import (
    TASKS,
    HistorySpec,
    MachineHistory,
    batches,
    event_count,
    events,
    history,
)
from bench.deskmeter_load import BATCH_EVENTS, load_pg, load_sqlite
from bench.pg import fresh_database
from sysmonstm.domains.deskmeter.builder import silence_limit_ms
from sysmonstm.domains.deskmeter.localdays import local_day
from sysmonstm.domains.deskmeter.model import EventKind
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.stores import open_interval_store
from sysmonstm.store import sqlite_db

# six weeks over the spring DST changes of all three zones (New York 8 March, Berlin
# 29 March, Sydney 5 April 2026)
SPEC = HistorySpec(years=0.12, end=date(2026, 4, 12))
TABLES = ("desk_machines", "desk_intervals", "desk_days", "desk_months")


@pytest.fixture(scope="module")
def histories() -> list[MachineHistory]:
    return history(SPEC)


def _local_hour(t_ms: int, tz: str) -> int:
    return datetime.fromtimestamp(t_ms / 1000, ZoneInfo(tz)).hour


def _state(h: MachineHistory, i: int) -> tuple[int, int, bool]:
    return int(h.ws[i]), int(h.task[i]), bool(h.idle[i])


def test_segments_are_ordered_non_overlapping_and_each_a_change(
    histories: list[MachineHistory],
) -> None:
    """Every segment has a length; a machine's segments never overlap; inside a session they
    touch and each changes workspace, task or idle; sessions are further apart than the
    silence limit (so each segment is one interval)."""
    gap = silence_limit_ms(SPEC.heartbeat_ms)
    for h in histories:
        assert len(h) > 1000
        assert bool(np.all(h.stop > h.start))
        assert bool(np.all(h.start[1:] >= h.stop[:-1]))
        for i in range(len(h) - 1):
            if h.session_last[i]:
                assert h.start[i + 1] - h.stop[i] > gap
            else:
                assert h.start[i + 1] == h.stop[i]
                assert _state(h, i) != _state(h, i + 1)
        assert bool(h.session_last[-1])
        assert set(h.task.tolist()) == set(range(len(TASKS)))
        assert set(h.ws.tolist()) == set(range(len(h.profile.workspaces)))


def test_days_look_like_desk_days(histories: list[MachineHistory]) -> None:
    """Sessions start in the local morning or afternoon, some run past local midnight, and
    some segments are idle; weekdays carry more sessions than weekends."""
    past_midnight = 0
    for h in histories:
        tz = h.profile.time_zone
        firsts = np.flatnonzero(np.concatenate([[True], h.session_last[:-1]]))
        starts = [local_day(int(h.start[i]), tz) for i in firsts]
        lasts = [local_day(int(h.stop[i]), tz) for i in np.flatnonzero(h.session_last)]
        past_midnight += sum(b > a for a, b in zip(starts, lasts, strict=True))
        assert all(6 <= _local_hour(int(h.start[i]), tz) < 18 for i in firsts)
        weekday = sum(d.weekday() < 5 for d in starts)
        assert weekday > 2 * (len(starts) - weekday)
        assert 0 < int(h.idle.sum()) < len(h) // 10
    assert past_midnight > 0


def test_events_are_what_a_watcher_sends(histories: list[MachineHistory]) -> None:
    """One SWITCH per segment, heartbeats no further apart than the heartbeat period inside
    a session, events in time order, counted by ``event_count``."""
    for h in histories:
        evs = list(events(h, SPEC.heartbeat_ms))
        assert len(evs) == event_count(h, SPEC.heartbeat_ms)
        assert sum(e.kind is EventKind.SWITCH for e in evs) == len(h)
        times = [e.time_ms for e in evs]
        assert times == sorted(times)
        assert all(e.time_zone == h.profile.time_zone for e in evs)


@asynccontextmanager
async def _store(url: str) -> AsyncIterator[IntervalStore]:
    store = open_interval_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _apply_all(url: str, hs: list[MachineHistory]) -> None:
    async with _store(url) as store:
        for h in hs:
            chunk = []
            for batch in batches(h, SPEC.heartbeat_ms, BATCH_EVENTS):
                chunk.append(batch)
                if len(chunk) == 10:
                    await store.apply(chunk)
                    chunk = []
            await store.apply(chunk)


_DUMP = {
    "desk_machines": "SELECT key, host, time_zone, heartbeat_ms, last_event_ms, stored_through,"
    " last_start_ms FROM desk_machines ORDER BY key",
    "desk_intervals": "SELECT m.key, start_ms, end_ms, workspace_index, workspace, task, idle,"
    " open, i.time_zone FROM desk_intervals i JOIN desk_machines m ON m.id = machine_id"
    " ORDER BY 1, 2",
}
for _table in ("desk_days", "desk_months"):
    _DUMP[_table] = (
        "SELECT m.key, CAST(day AS TEXT), task, workspace, workspace_index, idle, ms, pieces"
        f" FROM {_table} r JOIN desk_machines m ON m.id = machine_id ORDER BY 1, 2, 3, 4, 5, 6"
    )


def _rows(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(int(v) if isinstance(v, bool) else v for v in r) for r in rows]


def _sqlite_dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite_db.connect(path, readonly=True)
    try:
        return {t: _rows(conn.execute(sql).fetchall()) for t, sql in _DUMP.items()}
    finally:
        conn.close()


async def _pg_dump(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: _rows([tuple(r) for r in await conn.fetch(sql)]) for t, sql in _DUMP.items()}
    finally:
        await conn.close()


def test_sqlite_bulk_load_equals_replaying_every_event(
    histories: list[MachineHistory], tmp_path: Path
) -> None:
    """Intervals, daily and monthly rollups and machine rows of the bulk load are exactly
    those of ``apply`` over the watchers' events, across DST changes and midnights."""
    bulk, replay = tmp_path / "bulk.db", tmp_path / "replay.db"
    loaded = asyncio.run(load_sqlite(histories, SPEC, bulk))
    asyncio.run(_apply_all(f"sqlite:///{replay}", histories))
    got, want = _sqlite_dump(bulk), _sqlite_dump(replay)
    assert loaded.intervals == sum(len(h) for h in histories) == len(want["desk_intervals"])
    for table in TABLES:
        assert got[table] == want[table], table


def test_postgresql_bulk_load_equals_replaying_every_event(
    histories: list[MachineHistory], pg_dsn: str, postgres_server_dsn: str
) -> None:
    """The same on PostgreSQL: the bulk load and ``apply`` leave identical tables."""

    async def run(dump: Callable[[str], Any]) -> tuple[Any, Any]:
        await load_pg(histories, SPEC, pg_dsn)
        async with fresh_database(postgres_server_dsn) as other:
            await _apply_all(other, histories)
            return await dump(pg_dsn), await dump(other)

    got, want = asyncio.run(run(_pg_dump))
    assert len(want["desk_intervals"]) == sum(len(h) for h in histories)
    for table in TABLES:
        assert got[table] == want[table], table
