"""One SQLite file (WAL) used off the event loop: one writer thread, a pool of readers.

The writer thread owns the only writing connection, so writes run one at a time; each
reader thread opens its own read-only connection on first use and sees the last committed
state. No sqlite3 call runs on the event loop; sqlite3 errors become ``BackendError``
("<what> <path>: ..."). The warm tier and the stores beside it in its file share this.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Generic, TypeVar

from sysmonstm.errors import BackendError
from sysmonstm.store import sqlite_db

T = TypeVar("T")
R = TypeVar("R")


class SqliteThreads(Generic[R]):
    """The threads and connections of one SQLite file; ``reader`` wraps a reader thread's
    connection in what ``on_reader`` hands its functions. Threads are named
    ``<prefix>-writer`` and ``<prefix>-reader``."""

    def __init__(
        self,
        path: Path,
        what: str,
        reader: Callable[[sqlite3.Connection], R],
        *,
        prefix: str,
        synchronous: str = "full",
        readers: int = 4,
    ) -> None:
        self.path = path
        self.what = what
        self._reader = reader
        self._synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{prefix}-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix=f"{prefix}-reader")
        self._local = threading.local()
        self._w: sqlite3.Connection | None = None
        self._all_readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._w is not None

    @property
    def conn(self) -> sqlite3.Connection:
        """The writing connection (use it on the writer thread only)."""
        if self._w is None:
            raise BackendError(f"{self.what} {self.path} is not open")
        return self._w

    async def open(self, migrate: Callable[[sqlite3.Connection], None]) -> None:
        """Create the file if missing, connect the writer and run ``migrate`` on it."""

        def run() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._w = sqlite_db.connect(self.path, synchronous=self._synchronous)
                migrate(self._w)
            except (sqlite3.Error, OSError) as exc:
                raise BackendError(f"cannot open {self.what} {self.path}: {exc}") from exc

        await self.on_writer(run)

    async def close(self, *, checkpoint: bool = False) -> None:
        """Close every connection and stop the threads; ``checkpoint`` first moves the WAL
        into the database file and truncates it."""

        def run() -> None:
            assert self._w is not None
            if checkpoint:
                self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._w.close()
            self._w = None

        if self._w is not None:
            await self.on_writer(run)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    async def on_writer(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the writer thread."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, fn)
        except sqlite3.Error as exc:
            raise BackendError(f"{self.what} {self.path}: {exc}") from exc

    async def on_reader(self, fn: Callable[[R], T]) -> T:
        """``fn(reader)`` on a reader thread, with that thread's reader."""

        def run() -> T:
            reader: R | None = getattr(self._local, "reader", None)
            if reader is None:
                conn = sqlite_db.connect(self.path, readonly=True)
                with self._lock:
                    self._all_readers.append(conn)
                reader = self._reader(conn)
                self._local.reader = reader
            return fn(reader)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, run)
        except sqlite3.Error as exc:
            raise BackendError(f"{self.what} {self.path}: {exc}") from exc

    def in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` in one write transaction (``BEGIN IMMEDIATE``) on the writing
        connection, committed when it returns, rolled back when it raises; call it on the
        writer thread."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result
