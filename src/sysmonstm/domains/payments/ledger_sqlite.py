"""The ledger in the embedded warm tier's SQLite file (WAL), beside the other tables.

One writer thread owns the writing connection; a write transaction (``BEGIN IMMEDIATE``,
which also waits out another process writing the file) is held by one task at a time, and
every statement of it, the decider's risk reads included, runs on that connection. Reads run
on their own connection and thread and see committed state. No sqlite3 call runs on the
event loop; sqlite3 errors become ``BackendError``.

``in_write`` (``record``, ``outbox_done``) runs a whole transaction in one hop to the writer
thread, its body on that thread's own event loop with statements executed in place: a hop
through the executor costs tens of microseconds, and a recorded event takes a dozen
statements. ``write`` (the rarer writes) hops once per statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from sysmonstm.domains.payments.ledger_rows import PiiCipher, Row
from sysmonstm.domains.payments.ledger_schema import SCHEMA_VERSION, SQLITE_TABLES
from sysmonstm.domains.payments.ledger_sql import Sql, SqlLedger
from sysmonstm.errors import BackendError
from sysmonstm.store import sqlite_db
from sysmonstm.store.warm_sqlite import sqlite_path

T = TypeVar("T")
_Run = Callable[[Callable[[], object]], "asyncio.Future[object]"]
_VERSION_KEY = "payments_schema_version"


def migrate(conn: sqlite3.Connection) -> None:
    """Create what is missing; refuse tables written by a newer sysmonstm."""
    sqlite_db.migrate_tables(
        conn, SQLITE_TABLES, key=_VERSION_KEY, version=SCHEMA_VERSION, what="payment tables"
    )


class _Sql:
    """Statements on one connection, each run on that connection's thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        run: Callable[[Callable[[], object]], asyncio.Future[object]],
    ) -> None:
        self._conn = conn
        self._run = run

    async def execute(self, sql: str, *args: object) -> None:
        await self._run(lambda: self._conn.execute(sql, args))

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        found = await self._run(lambda: self._conn.execute(sql, args).fetchall())
        assert isinstance(found, list)
        return found

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        await self._run(lambda: self._conn.executemany(sql, args))


class _InPlace:
    """Statements run where they are awaited: on the writer thread, inside ``in_write``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> None:
        self._conn.execute(sql, args)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return self._conn.execute(sql, args).fetchall()

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        self._conn.executemany(sql, args)


class SqliteDatabase:
    """The ``Database`` of a ``SqlLedger`` in the SQLite file ``url`` names."""

    def __init__(self, url: str, *, synchronous: str = "full") -> None:
        self.url = url
        self.path = sqlite_path(url)
        self._synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pay-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="pay-reader")
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self._writer_loop: asyncio.AbstractEventLoop | None = None  # lives on the writer thread
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    async def open(self) -> None:
        def run() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._w = sqlite_db.connect(self.path, synchronous=self._synchronous)
            migrate(self._w)
            self._r = sqlite_db.connect(self.path, readonly=True)

        try:
            await asyncio.get_running_loop().run_in_executor(self._writer, run)
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(f"cannot open the ledger {self.path}: {exc}") from exc

    async def close(self) -> None:
        def run() -> None:
            for conn in (self._w, self._r):
                if conn is not None:
                    conn.close()
            self._w = self._r = None
            if self._writer_loop is not None:
                self._writer_loop.close()
                self._writer_loop = None

        async with self._write_lock:
            await asyncio.get_running_loop().run_in_executor(self._writer, run)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    def _runner(self, pool: ThreadPoolExecutor) -> _Run:
        loop = asyncio.get_running_loop()

        def run(fn: Callable[[], object]) -> asyncio.Future[object]:
            return loop.run_in_executor(pool, fn)

        return run

    async def _call(self, run: _Run, fn: Callable[[], object]) -> None:
        try:
            await run(fn)
        except sqlite3.Error as exc:
            raise BackendError(f"ledger {self.path}: {exc}") from exc

    def _conn(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise BackendError(f"ledger {self.path} is not open")
        return conn

    @asynccontextmanager
    async def _tx(
        self,
        conn: sqlite3.Connection | None,
        pool: ThreadPoolExecutor,
        lock: asyncio.Lock,
        begin: str,
        what: str,
    ) -> AsyncIterator[_Sql]:
        async with lock:
            c = self._conn(conn)
            run = self._runner(pool)
            await self._call(run, lambda: c.execute(begin))
            try:
                yield _Sql(c, run)
            except sqlite3.Error as exc:
                await asyncio.shield(self._call(run, lambda: c.execute("ROLLBACK")))
                raise BackendError(f"ledger {self.path}: {what}: {exc}") from exc
            except BaseException:
                await asyncio.shield(self._call(run, lambda: c.execute("ROLLBACK")))
                raise
            await self._call(run, lambda: c.execute("COMMIT"))

    async def in_write(
        self, what: str, body: Callable[[Sql], Awaitable[T]], *, durable: bool = True
    ) -> T:
        """See ``Database.in_write``: ``BEGIN IMMEDIATE``, ``body`` and ``COMMIT`` in one go on
        the writer thread (a body that raises rolls back)."""
        level = "FULL" if self._synchronous == "full" else "NORMAL"

        def run() -> T:
            c = self._conn(self._w)
            if self._writer_loop is None:
                self._writer_loop = asyncio.new_event_loop()
            if not durable:
                c.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: no fsync at commit
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    result = self._writer_loop.run_until_complete(body(_InPlace(c)))
                except BaseException:
                    c.execute("ROLLBACK")
                    raise
                c.execute("COMMIT")
            finally:
                if not durable:
                    c.execute(f"PRAGMA synchronous = {level}")
            return result

        async with self._write_lock:
            try:
                return await asyncio.get_running_loop().run_in_executor(self._writer, run)
            except sqlite3.Error as exc:
                raise BackendError(f"ledger {self.path}: {what}: {exc}") from exc

    def write(self, what: str) -> AbstractAsyncContextManager[_Sql]:
        return self._tx(self._w, self._writer, self._write_lock, "BEGIN IMMEDIATE", what)

    def read(self, what: str) -> AbstractAsyncContextManager[_Sql]:
        return self._tx(self._r, self._reader, self._read_lock, "BEGIN", what)


def sqlite_ledger(url: str, pii: PiiCipher | None = None) -> SqlLedger:
    """A ledger in the SQLite file ``url`` names (not yet opened)."""
    return SqlLedger(SqliteDatabase(url), pii)
