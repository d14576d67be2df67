"""Writes of the SQLite interval store; each function runs inside the caller's transaction
on the writer connection."""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and group-key expressions

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sysmonstm.domains.deskmeter.builder import MachineState, close_if_silent
from sysmonstm.domains.deskmeter.model import DeskBatch, Interval
from sysmonstm.domains.deskmeter.plan import Plan, by_month
from sysmonstm.domains.deskmeter.rows import INTERVAL_COLS, SELECT_STATES, interval_values
from sysmonstm.domains.deskmeter.rows import machine_state as state_of


def load_states(
    conn: sqlite3.Connection, batches: Sequence[DeskBatch]
) -> tuple[dict[str, MachineState], dict[str, int]]:
    """The state and row id of every machine the batches name; new machines get a row."""
    machines = {b.machine.id: b.machine for b in batches}
    states: dict[str, MachineState] = {}
    ids: dict[str, int] = {}
    for key, machine in machines.items():
        row = conn.execute(SELECT_STATES + " WHERE m.key = ?", (key,)).fetchone()
        if row is None:
            cur = conn.execute(
                "INSERT INTO desk_machines (key, host, time_zone, heartbeat_ms, last_event_ms,"
                " stored_through, last_start_ms) VALUES (?, ?, ?, ?, 0, 0, NULL)",
                (key, machine.host, machine.time_zone, MachineState(machine).heartbeat_ms),
            )
            assert cur.lastrowid is not None
            ids[key], states[key] = cur.lastrowid, MachineState(machine)
        else:
            ids[key], states[key] = int(row[0]), state_of(row[1:])
    return states, ids


def write_plan(conn: sqlite3.Connection, plan: Plan, ids: dict[str, int]) -> None:
    """Store the plan's intervals, daily and monthly rollup deltas and machine states."""
    conn.executemany(
        f"INSERT INTO desk_intervals (machine_id, {INTERVAL_COLS}) VALUES (?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (machine_id, start_ms) DO UPDATE SET end_ms = excluded.end_ms,"
        " workspace_index = excluded.workspace_index, workspace = excluded.workspace,"
        " task = excluded.task, idle = excluded.idle, open = excluded.open,"
        " time_zone = excluded.time_zone",
        [(ids[iv.machine], *interval_values(iv)) for iv in plan.intervals.values()],
    )
    for table, rollup in (("desk_days", plan.days), ("desk_months", by_month(plan.days))):
        conn.executemany(
            f"INSERT INTO {table} (machine_id, day, task, workspace, workspace_index, idle, ms,"
            " pieces) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET"
            " ms = ms + excluded.ms, pieces = pieces + excluded.pieces",
            [
                (ids[k.machine], k.day, k.task, k.workspace, k.workspace_index, k.idle, ms, n)
                for k, (ms, n) in rollup.items()
            ],
        )
    conn.executemany(
        "UPDATE desk_machines SET host = ?, time_zone = ?, heartbeat_ms = ?, last_event_ms = ?,"
        " stored_through = ?, last_start_ms = ? WHERE id = ?",
        [
            (
                s.machine.host,
                s.machine.time_zone,
                s.heartbeat_ms,
                s.last_event_ms,
                s.stored_through,
                None if s.last is None else s.last.start_ms,
                ids[key],
            )
            for key, s in plan.states.items()
        ],
    )


def close_silent(conn: sqlite3.Connection, now_ms: int) -> list[Interval]:
    """Close the open intervals of machines silent at ``now_ms``; return them."""
    closed: list[Interval] = []
    rows = conn.execute(SELECT_STATES + " WHERE i.open = 1 ORDER BY m.key").fetchall()
    for row in rows:
        _, gone = close_if_silent(state_of(row[1:]), now_ms)
        if gone is not None:
            conn.execute(
                "UPDATE desk_intervals SET open = 0 WHERE machine_id = ? AND start_ms = ?",
                (row[0], gone.start_ms),
            )
            closed.append(gone)
    return closed
