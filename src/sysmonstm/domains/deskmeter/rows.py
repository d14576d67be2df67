"""Rows to values and back, the same for both backends (column order of ``INTERVAL_COLS``)."""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and group-key expressions

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sysmonstm.domains.deskmeter.builder import MachineState
from sysmonstm.domains.deskmeter.model import Interval, Machine

#: the columns of ``desk_intervals`` read into an ``Interval`` (after the machine)
INTERVAL_COLS = "start_ms, end_ms, workspace_index, workspace, task, idle, open, time_zone"
#: the columns of ``desk_machines`` read into a ``MachineState`` (before the last interval)
MACHINE_COLS = "key, host, time_zone, heartbeat_ms, last_event_ms, stored_through"
#: each machine's row id, ``MACHINE_COLS`` and its last interval's ``INTERVAL_COLS``
SELECT_STATES = f"""
    SELECT m.id, {", ".join("m." + c.strip() for c in MACHINE_COLS.split(","))},
           {", ".join("i." + c.strip() for c in INTERVAL_COLS.split(","))}
    FROM desk_machines m
    LEFT JOIN desk_intervals i ON i.machine_id = m.id AND i.start_ms = m.last_start_ms"""


def interval(machine: str, row: Sequence[Any]) -> Interval:
    """An ``Interval`` from the ``INTERVAL_COLS`` of a row."""
    start, end, index, workspace, task, idle, is_open, tz = row
    return Interval(
        machine, int(start), int(end), int(index), workspace, task, bool(idle), bool(is_open), tz
    )


def interval_values(iv: Interval) -> tuple[int, int, int, str, str, bool, bool, str]:
    """The ``INTERVAL_COLS`` values of an interval."""
    return (
        iv.start_ms,
        iv.end_ms,
        iv.workspace_index,
        iv.workspace,
        iv.task,
        iv.idle,
        iv.open,
        iv.time_zone,
    )


def machine_state(row: Sequence[Any]) -> MachineState:
    """A ``MachineState`` from ``MACHINE_COLS`` followed by ``INTERVAL_COLS`` (NULLs when the
    machine has no interval yet)."""
    key, host, tz, heartbeat, last_event, stored = row[:6]
    last = interval(key, row[6:]) if row[6] is not None else None
    return MachineState(Machine(key, host, tz), int(heartbeat), int(last_event), int(stored), last)
