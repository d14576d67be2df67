"""The interval store in the embedded warm tier's SQLite file (WAL).

One writer thread owns the only writing connection, so ``apply`` and ``close_silent`` run
one at a time, each in one transaction (``BEGIN IMMEDIATE`` also waits out another process
writing the file, up to the busy timeout). Reads run on a small pool of threads, each with
its own connection, and see the last committed state. No sqlite3 call runs on the event
loop; sqlite3 errors become ``BackendError``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from sysmonstm.domains.deskmeter import sqlite_schema
from sysmonstm.domains.deskmeter.model import DeskBatch, Interval, MachineInfo, SummaryBy, Total
from sysmonstm.domains.deskmeter.plan import plan_apply
from sysmonstm.domains.deskmeter.sqlite_intervals_read import SqliteIntervalReader
from sysmonstm.domains.deskmeter.sqlite_intervals_write import close_silent, load_states, write_plan
from sysmonstm.domains.deskmeter.store import Applied
from sysmonstm.errors import BackendError
from sysmonstm.store.sqlite_threads import SqliteThreads
from sysmonstm.store.warm_sqlite import sqlite_path

T = TypeVar("T")


class SqliteIntervals:
    """Intervals, rollups and watermarks in the SQLite file ``url`` names."""

    def __init__(self, url: str, *, synchronous: str = "full", readers: int = 4) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._db = SqliteThreads(
            self.path,
            "interval store",
            SqliteIntervalReader,
            prefix="desk",
            synchronous=synchronous,
            readers=readers,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        await self._db.open(sqlite_schema.migrate)

    async def close(self) -> None:
        await self._db.close()

    async def _on_reader(self, fn: Callable[[SqliteIntervalReader], T]) -> T:
        if not self._db.is_open:
            raise BackendError(f"interval store {self.path} is not open")
        return await self._db.on_reader(fn)

    # -- writes ----------------------------------------------------------------------------

    async def apply(self, batches: Sequence[DeskBatch]) -> list[Applied]:
        """See ``IntervalStore.apply``; ``ValueError`` (nothing written) for an event older
        than its machine's last one."""
        if not batches:
            return []

        def run(conn: sqlite3.Connection) -> list[Applied]:
            states, ids = load_states(conn, batches)
            plan = plan_apply(states, batches)
            write_plan(conn, plan, ids)
            return plan.applied

        return await self._db.on_writer(lambda: self._db.in_transaction(run))

    async def close_silent(self, now_ms: int) -> list[Interval]:
        return await self._db.on_writer(
            lambda: self._db.in_transaction(lambda conn: close_silent(conn, now_ms))
        )

    # -- reads -----------------------------------------------------------------------------

    async def stored_through(self, machine: str) -> int:
        return await self._on_reader(lambda r: r.stored_through(machine))

    async def machines(self) -> list[MachineInfo]:
        return await self._on_reader(lambda r: r.machines())

    async def at(self, t_ms: int, machine: str | None = None) -> list[Interval]:
        return await self._on_reader(lambda r: r.at(t_ms, machine))

    async def intervals(
        self, from_ms: int, to_ms: int, machine: str | None = None, limit: int | None = None
    ) -> list[Interval]:
        return await self._on_reader(lambda r: r.intervals(from_ms, to_ms, machine, limit))

    async def summary(
        self, from_ms: int, to_ms: int, by: SummaryBy, machine: str | None = None
    ) -> list[Total]:
        return await self._on_reader(lambda r: r.summary(from_ms, to_ms, by, machine))
