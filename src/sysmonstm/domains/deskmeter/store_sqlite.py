"""The interval store in the embedded warm tier's SQLite file (WAL).

One writer thread owns the only writing connection, so ``apply`` and ``close_silent`` run
one at a time, each in one transaction (``BEGIN IMMEDIATE`` also waits out another process
writing the file, up to the busy timeout). Reads run on a small pool of threads, each with
its own connection, and see the last committed state. No sqlite3 call runs on the event
loop; sqlite3 errors become ``BackendError``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sysmonstm.domains.deskmeter import sqlite_schema
from sysmonstm.domains.deskmeter.model import DeskBatch, Interval, MachineInfo, SummaryBy, Total
from sysmonstm.domains.deskmeter.plan import plan_apply
from sysmonstm.domains.deskmeter.sqlite_intervals_read import SqliteIntervalReader
from sysmonstm.domains.deskmeter.sqlite_intervals_write import close_silent, load_states, write_plan
from sysmonstm.domains.deskmeter.store import Applied
from sysmonstm.errors import BackendError
from sysmonstm.store import sqlite_db
from sysmonstm.store.warm_sqlite import sqlite_path

T = TypeVar("T")


class SqliteIntervals:
    """Intervals, rollups and watermarks in the SQLite file ``url`` names."""

    def __init__(self, url: str, *, synchronous: str = "full", readers: int = 4) -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="desk-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="desk-reader")
        self._local = threading.local()
        self._w: sqlite3.Connection | None = None
        self._all_readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        await self._on_writer(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._w = sqlite_db.connect(self.path, synchronous=self._synchronous)
            sqlite_schema.migrate(self._w)
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(f"cannot open interval store {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._w is not None:
            await self._on_writer(self._close_sync)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    def _close_sync(self) -> None:
        assert self._w is not None
        self._w.close()
        self._w = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._w is None:
            raise BackendError(f"interval store {self.path} is not open")
        return self._w

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, fn)
        except sqlite3.Error as exc:
            raise BackendError(f"interval store {self.path}: {exc}") from exc

    async def _on_reader(self, fn: Callable[[SqliteIntervalReader], T]) -> T:
        if self._w is None:
            raise BackendError(f"interval store {self.path} is not open")

        def run() -> T:
            reader: SqliteIntervalReader | None = getattr(self._local, "reader", None)
            if reader is None:
                conn = sqlite_db.connect(self.path, readonly=True)
                with self._lock:
                    self._all_readers.append(conn)
                reader = self._local.reader = SqliteIntervalReader(conn)
            return fn(reader)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, run)
        except sqlite3.Error as exc:
            raise BackendError(f"interval store {self.path}: {exc}") from exc

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

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

        return await self._on_writer(lambda: self._in_transaction(run))

    async def close_silent(self, now_ms: int) -> list[Interval]:
        return await self._on_writer(
            lambda: self._in_transaction(lambda conn: close_silent(conn, now_ms))
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
