"""Reads of the PostgreSQL interval store, each one or two statements.

As in SQLite, every interval read is bounded by the ``(machine_id, start_ms)`` key: per
machine (a ``LATERAL`` join), the last interval to start before an instant (one backward
index probe) plus those starting inside the range. Summaries read whole local months from
``desk_months`` and the other whole days from ``desk_days`` for all machines at once, and sum
the partial days at the edges from the intervals (see ``summary``).
"""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and group-key expressions

from __future__ import annotations

from datetime import date

from sysmonstm.domains.deskmeter.model import Interval, MachineInfo, SummaryBy, Total
from sysmonstm.domains.deskmeter.rows import INTERVAL_COLS, SELECT_STATES, interval
from sysmonstm.domains.deskmeter.rows import machine_state as state_of
from sysmonstm.domains.deskmeter.summary import Totals, machine_range
from sysmonstm.store.pg_conn import Conn

_MACHINES = "SELECT id, key, time_zone FROM desk_machines WHERE $1::text IS NULL OR key = $1"
_AT = f"""
    SELECT m.key, i.* FROM desk_machines m CROSS JOIN LATERAL (
        SELECT {INTERVAL_COLS} FROM desk_intervals
        WHERE machine_id = m.id AND start_ms <= $1 ORDER BY start_ms DESC LIMIT 1) i
    WHERE $2::text IS NULL OR m.key = $2
    ORDER BY m.key"""
# spans: one row per (machine id, from, to); what overlaps each, unclipped
_OVERLAPPING = f"""
    WITH s AS (
        SELECT u.id, u.f, u.t, m.key
        FROM unnest($1::int4[], $2::int8[], $3::int8[]) AS u(id, f, t)
        JOIN desk_machines m ON m.id = u.id)
    SELECT s.key, s.f, s.t, p.* FROM s CROSS JOIN LATERAL (
        SELECT {INTERVAL_COLS} FROM desk_intervals
        WHERE machine_id = s.id AND start_ms < s.f ORDER BY start_ms DESC LIMIT 1) p
    WHERE p.end_ms > s.f
    UNION ALL
    SELECT s.key, s.f, s.t, r.* FROM s CROSS JOIN LATERAL (
        SELECT {INTERVAL_COLS} FROM desk_intervals
        WHERE machine_id = s.id AND start_ms >= s.f AND start_ms < s.t
        ORDER BY start_ms LIMIT $4) r
    ORDER BY start_ms, key
    LIMIT $4"""
# the group key of each summary (MACHINE and DAY of partial days: filled in from the row)
_DAY_KEY = {
    SummaryBy.TASK: "d.task",
    SummaryBy.WORKSPACE: "CASE WHEN d.workspace = '' THEN d.workspace_index::text"
    " ELSE d.workspace END",
    SummaryBy.MACHINE: "''",
    SummaryBy.DAY: "to_char(d.day, 'YYYY-MM-DD')",
}
# whole days or months: one row per (machine id, first day, day after the last)
_ROLLUP_SUM = """
    SELECT r.id, {key}, d.idle, sum(d.ms)::int8, sum(d.pieces)::int8
    FROM unnest($1::int4[], $2::date[], $3::date[]) AS r(id, d0, d1)
    JOIN {table} d ON d.machine_id = r.id AND d.day >= r.d0 AND d.day < r.d1
    GROUP BY 1, 2, 3"""
# partial days: one row per (machine id, from, to, local day); the first interval that can
# reach into a span is the last to start before it
_SPAN_SUM = """
    SELECT s.id, s.day, {key}, d.idle,
           sum(least(d.end_ms, s.t) - greatest(d.start_ms, s.f))::int8, count(*)
    FROM unnest($1::int4[], $2::int8[], $3::int8[], $4::text[]) AS s(id, f, t, day)
    CROSS JOIN LATERAL (
        SELECT * FROM desk_intervals
        WHERE machine_id = s.id AND start_ms < s.t AND start_ms >= coalesce((
            SELECT start_ms FROM desk_intervals WHERE machine_id = s.id AND start_ms < s.f
            ORDER BY start_ms DESC LIMIT 1), s.f)) d
    WHERE least(d.end_ms, s.t) > greatest(d.start_ms, s.f)
    GROUP BY 1, 2, 3, 4"""


async def stored_through(conn: Conn, machine: str) -> int:
    found = await conn.fetchval("SELECT stored_through FROM desk_machines WHERE key = $1", machine)
    return 0 if found is None else int(found)


async def machines(conn: Conn) -> list[MachineInfo]:
    rows = await conn.fetch(SELECT_STATES + " ORDER BY m.key")
    return [state_of(tuple(r)[1:]).info() for r in rows]


async def at(conn: Conn, t_ms: int, machine: str | None) -> list[Interval]:
    found = []
    for row in await conn.fetch(_AT, t_ms, machine):
        iv = interval(row[0], tuple(row)[1:])
        if t_ms < iv.end_ms or (iv.open and t_ms == iv.end_ms):
            found.append(iv)
    return found


async def _overlapping(
    conn: Conn, spans: list[tuple[int, int, int]], limit: int | None
) -> list[tuple[int, int, Interval]]:
    """``(from, to, interval)`` for each interval overlapping one of ``spans``
    (``(machine id, from, to)``), by start then machine."""
    if not spans:
        return []
    rows = await conn.fetch(
        _OVERLAPPING,
        [s[0] for s in spans],
        [s[1] for s in spans],
        [s[2] for s in spans],
        limit,
    )
    return [(int(r[1]), int(r[2]), interval(r[0], tuple(r)[3:])) for r in rows]


async def intervals(
    conn: Conn, from_ms: int, to_ms: int, machine: str | None, limit: int | None
) -> list[Interval]:
    if to_ms <= from_ms or limit == 0:
        return []
    ids = [int(r[0]) for r in await conn.fetch(_MACHINES, machine)]
    found = await _overlapping(conn, [(i, from_ms, to_ms) for i in ids], limit)
    return [iv.clipped(from_ms, to_ms) for _, _, iv in found]


async def summary(
    conn: Conn, from_ms: int, to_ms: int, by: SummaryBy, machine: str | None
) -> list[Total]:
    totals = Totals()
    keys: dict[int, str] = {}
    ranges: dict[str, list[tuple[int, date, date]]] = {"desk_months": [], "desk_days": []}
    spans: list[tuple[int, int, int, str]] = []
    for row in await conn.fetch(_MACHINES, machine):
        mid = int(row[0])
        keys[mid] = row[1]
        part = machine_range(row[1], row[2], from_ms, to_ms, months=by is not SummaryBy.DAY)
        whole = [("desk_months", part.months)] + [("desk_days", d) for d in part.days]
        for table, days in whole:
            if days is not None:
                d0, d1 = date.fromisoformat(days[0]), date.fromisoformat(days[1])
                ranges[table].append((mid, d0, d1))
        spans.extend((mid, f, t, day) for f, t, day in part.spans)
    group = _DAY_KEY[by]
    for table, found in ranges.items():
        if found:
            sql = _ROLLUP_SUM.format(key=group, table=table)
            for r in await conn.fetch(sql, *map(list, zip(*found, strict=True))):
                totals.add_rows(by, keys[r[0]], "", [tuple(r)[1:]])
    if spans:
        sql = _SPAN_SUM.format(key="''" if by is SummaryBy.DAY else group)
        for r in await conn.fetch(sql, *map(list, zip(*spans, strict=True))):
            totals.add_rows(by, keys[r[0]], r[1], [tuple(r)[2:]])
    return totals.result()
