"""Deskmeter's tables in the embedded warm tier's SQLite file (beside the metric tables).

- ``desk_machines``: one row per machine: identity, heartbeat period, last event, the
  exactly-once watermark ``stored_through`` and the start of its last interval.
- ``desk_intervals``: one row per interval, keyed ``(machine_id, start_ms)``; that key
  serves "the interval at t" (the last start at or before t) and range reads.
- ``desk_days``: daily rollups, milliseconds per (machine, local day, task, workspace,
  workspace index, idle), keyed in that order so a machine's days form one index range;
  ``desk_months`` the same per local month (so a year reads twelve rows per group).
"""

from __future__ import annotations

import sqlite3

from sysmonstm.store import sqlite_db

SCHEMA_VERSION = 1
_VERSION_KEY = "deskmeter_schema_version"

_DDL = (
    """CREATE TABLE IF NOT EXISTS desk_machines (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        host TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        heartbeat_ms INTEGER NOT NULL,
        last_event_ms INTEGER NOT NULL,
        stored_through INTEGER NOT NULL,
        last_start_ms INTEGER)""",
    """CREATE TABLE IF NOT EXISTS desk_intervals (
        machine_id INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        workspace_index INTEGER NOT NULL,
        workspace TEXT NOT NULL,
        task TEXT NOT NULL,
        idle INTEGER NOT NULL,
        open INTEGER NOT NULL,
        time_zone TEXT NOT NULL,
        PRIMARY KEY (machine_id, start_ms)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS desk_days (
        machine_id INTEGER NOT NULL,
        day TEXT NOT NULL,
        task TEXT NOT NULL,
        workspace TEXT NOT NULL,
        workspace_index INTEGER NOT NULL,
        idle INTEGER NOT NULL,
        ms INTEGER NOT NULL,
        pieces INTEGER NOT NULL,
        PRIMARY KEY (machine_id, day, task, workspace, workspace_index, idle)) WITHOUT ROWID""",
    # the same per month; ``day`` is the month's first day
    """CREATE TABLE IF NOT EXISTS desk_months (
        machine_id INTEGER NOT NULL,
        day TEXT NOT NULL,
        task TEXT NOT NULL,
        workspace TEXT NOT NULL,
        workspace_index INTEGER NOT NULL,
        idle INTEGER NOT NULL,
        ms INTEGER NOT NULL,
        pieces INTEGER NOT NULL,
        PRIMARY KEY (machine_id, day, task, workspace, workspace_index, idle)) WITHOUT ROWID""",
)


def migrate(conn: sqlite3.Connection) -> None:
    """Create what is missing; refuse tables written by a newer sysmonstm."""
    sqlite_db.migrate_tables(
        conn, _DDL, key=_VERSION_KEY, version=SCHEMA_VERSION, what="deskmeter tables"
    )
