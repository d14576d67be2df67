"""Writes of the PostgreSQL interval store; each runs in the caller's transaction.

Several aggregators may share the database: ``load_states`` locks the rows of the machines a
call touches (in id order, so two writers cannot deadlock on them), which makes the
watermark check and the interval continuation authoritative. Writes are set-based upserts
from arrays (``unnest``), one statement per table.
"""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and group-key expressions

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sysmonstm.domains.deskmeter.builder import MachineState, close_if_silent
from sysmonstm.domains.deskmeter.model import DeskBatch, Interval
from sysmonstm.domains.deskmeter.plan import Plan, by_month
from sysmonstm.domains.deskmeter.rows import INTERVAL_COLS, SELECT_STATES
from sysmonstm.domains.deskmeter.rows import machine_state as state_of
from sysmonstm.store.pg_conn import Conn

_ADD_MACHINES = """
    INSERT INTO desk_machines (key, host, time_zone, heartbeat_ms, last_event_ms, stored_through)
    SELECT k, h, z, b, 0, 0 FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[])
        AS u(k, h, z, b)
    ORDER BY k
    ON CONFLICT (key) DO NOTHING"""
_UPSERT_INTERVALS = f"""
    INSERT INTO desk_intervals (machine_id, {INTERVAL_COLS})
    SELECT * FROM unnest($1::int4[], $2::int8[], $3::int8[], $4::int4[], $5::text[],
                         $6::text[], $7::bool[], $8::bool[], $9::text[])
    ON CONFLICT (machine_id, start_ms) DO UPDATE SET end_ms = EXCLUDED.end_ms,
        workspace_index = EXCLUDED.workspace_index, workspace = EXCLUDED.workspace,
        task = EXCLUDED.task, idle = EXCLUDED.idle, open = EXCLUDED.open,
        time_zone = EXCLUDED.time_zone"""
_ADD_ROLLUP = """
    INSERT INTO {table} (machine_id, day, task, workspace, workspace_index, idle, ms, pieces)
    SELECT * FROM unnest($1::int4[], $2::date[], $3::text[], $4::text[], $5::int4[],
                         $6::bool[], $7::int8[], $8::int4[])
    ON CONFLICT (machine_id, day, task, workspace, workspace_index, idle) DO UPDATE SET
        ms = {table}.ms + EXCLUDED.ms, pieces = {table}.pieces + EXCLUDED.pieces"""
_UPDATE_MACHINES = """
    UPDATE desk_machines m SET host = u.h, time_zone = u.z, heartbeat_ms = u.b,
        last_event_ms = u.e, stored_through = u.s, last_start_ms = u.l
    FROM unnest($1::int4[], $2::text[], $3::text[], $4::int4[], $5::int8[], $6::int8[],
                $7::int8[]) AS u(id, h, z, b, e, s, l)
    WHERE m.id = u.id"""


async def load_states(
    conn: Conn, batches: Sequence[DeskBatch]
) -> tuple[dict[str, MachineState], dict[str, int]]:
    """Lock, and read, the state and row id of every machine the batches name (new machines
    get a row)."""
    machines = {b.machine.id: b.machine for b in batches}
    fresh = [MachineState(m) for m in machines.values()]
    await conn.execute(
        _ADD_MACHINES,
        [s.machine.id for s in fresh],
        [s.machine.host for s in fresh],
        [s.machine.time_zone for s in fresh],
        [s.heartbeat_ms for s in fresh],
    )
    rows = await conn.fetch(
        SELECT_STATES + " WHERE m.key = ANY($1::text[]) ORDER BY m.id FOR UPDATE OF m",
        list(machines),
    )
    return {r[1]: state_of(tuple(r)[1:]) for r in rows}, {r[1]: int(r[0]) for r in rows}


async def write_plan(conn: Conn, plan: Plan, ids: dict[str, int]) -> None:
    """Store the plan's intervals, daily and monthly rollup deltas and machine states."""
    if plan.intervals:
        ivs = list(plan.intervals.values())
        await conn.execute(
            _UPSERT_INTERVALS,
            [ids[iv.machine] for iv in ivs],
            [iv.start_ms for iv in ivs],
            [iv.end_ms for iv in ivs],
            [iv.workspace_index for iv in ivs],
            [iv.workspace for iv in ivs],
            [iv.task for iv in ivs],
            [iv.idle for iv in ivs],
            [iv.open for iv in ivs],
            [iv.time_zone for iv in ivs],
        )
    for table, rollup in (("desk_days", plan.days), ("desk_months", by_month(plan.days))):
        if not rollup:
            continue
        keys = list(rollup)
        await conn.execute(
            _ADD_ROLLUP.format(table=table),
            [ids[k.machine] for k in keys],
            [date.fromisoformat(k.day) for k in keys],
            [k.task for k in keys],
            [k.workspace for k in keys],
            [k.workspace_index for k in keys],
            [k.idle for k in keys],
            [rollup[k][0] for k in keys],
            [rollup[k][1] for k in keys],
        )
    if plan.states:
        states = list(plan.states.items())
        await conn.execute(
            _UPDATE_MACHINES,
            [ids[key] for key, _ in states],
            [s.machine.host for _, s in states],
            [s.machine.time_zone for _, s in states],
            [s.heartbeat_ms for _, s in states],
            [s.last_event_ms for _, s in states],
            [s.stored_through for _, s in states],
            [None if s.last is None else s.last.start_ms for _, s in states],
        )


async def close_silent(conn: Conn, now_ms: int) -> list[Interval]:
    """Close the open intervals of machines silent at ``now_ms``; return them."""
    rows = await conn.fetch(SELECT_STATES + " WHERE i.open ORDER BY m.id FOR UPDATE OF m")
    closed: list[tuple[int, Interval]] = []
    for row in rows:
        _, gone = close_if_silent(state_of(tuple(row)[1:]), now_ms)
        if gone is not None:
            closed.append((int(row[0]), gone))
    if closed:
        await conn.execute(
            "UPDATE desk_intervals SET open = false FROM unnest($1::int4[], $2::int8[]) AS"
            " u(m, s) WHERE machine_id = u.m AND start_ms = u.s",
            [m for m, _ in closed],
            [iv.start_ms for _, iv in closed],
        )
    return sorted((iv for _, iv in closed), key=lambda iv: iv.machine)
