"""Reads of the SQLite interval store (one reader connection per thread).

Every read is bounded by the ``(machine_id, start_ms)`` key: a machine's intervals never
overlap, so the only interval starting before an instant that can reach past it is the last
one to start before it (one index probe), and the rest of a range are those starting inside
it. Summaries read whole local months from ``desk_months`` and other whole days from
``desk_days`` (see ``summary``).
"""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and group-key expressions

from __future__ import annotations

import heapq
import sqlite3

from sysmonstm.domains.deskmeter.builder import MachineState
from sysmonstm.domains.deskmeter.model import Interval, MachineInfo, SummaryBy, Total
from sysmonstm.domains.deskmeter.rows import INTERVAL_COLS, SELECT_STATES, interval
from sysmonstm.domains.deskmeter.rows import machine_state as state_of
from sysmonstm.domains.deskmeter.summary import Totals, machine_range

_LAST_BEFORE = (
    f"SELECT {INTERVAL_COLS} FROM desk_intervals WHERE machine_id = ? AND start_ms {{op}} ?"
    " ORDER BY start_ms DESC LIMIT 1"
)
_STARTING_IN = (
    f"SELECT {INTERVAL_COLS} FROM desk_intervals WHERE machine_id = ? AND start_ms >= ?"
    " AND start_ms < ? ORDER BY start_ms LIMIT ?"
)
# the group key of each summary over rollup rows (MACHINE: filled in per machine)
_DAY_KEY = {
    SummaryBy.TASK: "task",
    SummaryBy.WORKSPACE: "CASE WHEN workspace = '' THEN CAST(workspace_index AS TEXT)"
    " ELSE workspace END",
    SummaryBy.MACHINE: "''",
    SummaryBy.DAY: "day",
}
# over desk_days or desk_months
_ROLLUP_SUM = (
    "SELECT {key}, idle, SUM(ms), SUM(pieces) FROM {table}"
    " WHERE machine_id = ? AND day >= ? AND day < ? GROUP BY 1, 2"
)
# over the intervals of a partial day [:f, :t) (MACHINE and DAY: filled in per span); the
# first interval that can reach into it is the last to start before :f
_SPAN_SUM = """
    SELECT {key}, idle, SUM(MIN(end_ms, :t) - MAX(start_ms, :f)), COUNT(*)
    FROM desk_intervals
    WHERE machine_id = :m AND start_ms < :t AND MIN(end_ms, :t) > MAX(start_ms, :f)
      AND start_ms >= COALESCE((
          SELECT start_ms FROM desk_intervals WHERE machine_id = :m AND start_ms < :f
          ORDER BY start_ms DESC LIMIT 1), :f)
    GROUP BY 1, 2"""


class SqliteIntervalReader:
    """Queries on one connection (not shared between threads)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _machines(self, machine: str | None) -> list[tuple[int, str, str]]:
        """(id, key, time zone) of every machine, or of ``machine`` only."""
        sql = "SELECT id, key, time_zone FROM desk_machines"
        rows = (
            self.conn.execute(sql + " WHERE key = ?", (machine,))
            if machine is not None
            else self.conn.execute(sql + " ORDER BY key")
        )
        return [(int(r[0]), r[1], r[2]) for r in rows]

    def stored_through(self, machine: str) -> int:
        row = self.conn.execute(
            "SELECT stored_through FROM desk_machines WHERE key = ?", (machine,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def machines(self) -> list[MachineInfo]:
        rows = self.conn.execute(SELECT_STATES + " ORDER BY m.key").fetchall()
        return [state_of(r[1:]).info() for r in rows]

    def states(self) -> list[MachineState]:
        rows = self.conn.execute(SELECT_STATES + " ORDER BY m.key").fetchall()
        return [state_of(r[1:]) for r in rows]

    def at(self, t_ms: int, machine: str | None) -> list[Interval]:
        found = []
        for mid, key, _ in self._machines(machine):
            row = self.conn.execute(_LAST_BEFORE.format(op="<="), (mid, t_ms)).fetchone()
            if row is None:
                continue
            iv = interval(key, row)
            if t_ms < iv.end_ms or (iv.open and t_ms == iv.end_ms):
                found.append(iv)
        return found

    def _overlapping(
        self, mid: int, key: str, from_ms: int, to_ms: int, limit: int
    ) -> list[Interval]:
        """One machine's intervals overlapping ``[from_ms, to_ms)`` (unclipped), by start."""
        out: list[Interval] = []
        row = self.conn.execute(_LAST_BEFORE.format(op="<"), (mid, from_ms)).fetchone()
        if row is not None and int(row[1]) > from_ms:
            out.append(interval(key, row))
        rows = self.conn.execute(_STARTING_IN, (mid, from_ms, to_ms, limit)).fetchall()
        out.extend(interval(key, r) for r in rows)
        return out

    def intervals(
        self, from_ms: int, to_ms: int, machine: str | None, limit: int | None
    ) -> list[Interval]:
        if to_ms <= from_ms or limit == 0:
            return []
        cap = -1 if limit is None else limit  # SQLite: a negative LIMIT is none
        per_machine = [
            self._overlapping(mid, key, from_ms, to_ms, cap)
            for mid, key, _ in self._machines(machine)
        ]
        merged = heapq.merge(*per_machine, key=lambda iv: (iv.start_ms, iv.machine))
        out: list[Interval] = []
        for iv in merged:
            if limit is not None and len(out) == limit:
                break
            out.append(iv.clipped(from_ms, to_ms))
        return out

    def summary(self, from_ms: int, to_ms: int, by: SummaryBy, machine: str | None) -> list[Total]:
        totals = Totals()
        month_sql = _ROLLUP_SUM.format(key=_DAY_KEY[by], table="desk_months")
        day_sql = _ROLLUP_SUM.format(key=_DAY_KEY[by], table="desk_days")
        span_sql = _SPAN_SUM.format(key=_DAY_KEY[by] if by is not SummaryBy.DAY else "''")
        for mid, key, tz in self._machines(machine):
            part = machine_range(key, tz, from_ms, to_ms, months=by is not SummaryBy.DAY)
            if part.months is not None:
                totals.add_rows(by, key, "", self.conn.execute(month_sql, (mid, *part.months)))
            for days in part.days:
                totals.add_rows(by, key, "", self.conn.execute(day_sql, (mid, *days)))
            for f, t, day in part.spans:
                rows = self.conn.execute(span_sql, {"m": mid, "f": f, "t": t})
                totals.add_rows(by, key, day, rows)
        return totals.result()
