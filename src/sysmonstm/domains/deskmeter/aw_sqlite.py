"""The ActivityWatch store in the embedded warm tier's SQLite file (its own ``aw_*`` tables).

One connection on one thread: every call is one transaction run there, so heartbeats to a
bucket are applied one at a time in arrival order, as aw-server's heartbeat lock does.
"""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and range conditions

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sysmonstm.domains.deskmeter.aw_json import dumps, loads
from sysmonstm.domains.deskmeter.aw_merge import heartbeat_apply
from sysmonstm.domains.deskmeter.aw_store import (
    AwBucket,
    AwBucketExport,
    AwEvent,
    AwRange,
    Bounds,
    NoSuchBucketError,
    trimmed,
)
from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.store import sqlite_db
from sysmonstm.store.warm_sqlite import sqlite_path

T = TypeVar("T")

_DDL = (
    "CREATE TABLE IF NOT EXISTS aw_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS aw_buckets (
        key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_us INTEGER NOT NULL,
        name TEXT, type TEXT NOT NULL, client TEXT NOT NULL, hostname TEXT NOT NULL,
        data TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS aw_events (
        id INTEGER PRIMARY KEY, bucket INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
        dur_us INTEGER NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS aw_events_by_time ON aw_events (bucket, ts_ms)",
)
_BUCKET_COLUMNS = "id, type, client, hostname, created_us, name, data"
# the end of a bucket's latest event (ties: the newest id, as every read orders)
_LAST_END = """(SELECT e.ts_ms * 1000 + e.dur_us FROM aw_events e WHERE e.bucket = b.key
               ORDER BY e.ts_ms DESC, e.id DESC LIMIT 1)"""


def _bucket(row: Sequence[Any]) -> AwBucket:
    last = row[7] if len(row) > 7 else None
    return AwBucket(row[0], row[1], row[2], row[3], row[4], row[5], loads(row[6]), last)


def _event(row: Sequence[Any]) -> AwEvent:
    return AwEvent(row[1], row[2], loads(row[3]), row[0])


def _where(bounds: Bounds) -> tuple[str, list[int]]:
    sql, args = "", []
    if bounds.min_ts_ms is not None and bounds.min_end_us is not None:
        sql += " AND ts_ms >= ? AND ts_ms * 1000 + dur_us >= ?"
        args += [bounds.min_ts_ms, bounds.min_end_us]
    if bounds.max_ts_ms is not None:
        sql += " AND ts_ms <= ?"
        args.append(bounds.max_ts_ms)
    return sql, args


class SqliteAw:
    """ActivityWatch buckets and events in the SQLite file ``url`` names."""

    def __init__(self, url: str, *, synchronous: str = "full") -> None:
        self.path = sqlite_path(url)
        self._synchronous = synchronous
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="aw-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._device_id = ""

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite_db.connect(self.path, synchronous=self._synchronous)
        except OSError as exc:
            raise BackendError(f"cannot open {self.path}: {exc}") from exc
        self._conn = conn
        with self._tx() as c:
            for stmt in _DDL:
                c.execute(stmt)
            c.execute("INSERT OR IGNORE INTO aw_meta VALUES ('device_id', ?)", (str(uuid.uuid4()),))
            self._device_id = c.execute(
                "SELECT value FROM aw_meta WHERE key = 'device_id'"
            ).fetchone()[0]

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        assert self._conn is not None
        self._conn.close()
        self._conn = None

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            raise BackendError(f"ActivityWatch store {self.path}: {exc}") from exc

    def _tx(self, *, write: bool = True) -> _Tx:
        if self._conn is None:
            raise BackendError("the ActivityWatch store is not open")
        return _Tx(self._conn, write)

    def _key(self, conn: sqlite3.Connection, bucket_id: str) -> int:
        row = conn.execute("SELECT key FROM aw_buckets WHERE id = ?", (bucket_id,)).fetchone()
        if row is None:
            raise NoSuchBucketError(bucket_id)
        return int(row[0])

    # -- buckets -----------------------------------------------------------------------------

    async def device_id(self) -> str:
        return self._device_id

    async def buckets(self) -> list[AwBucket]:
        def read() -> list[AwBucket]:
            with self._tx(write=False) as c:
                rows = c.execute(
                    f"SELECT {_BUCKET_COLUMNS}, {_LAST_END} FROM aw_buckets b ORDER BY id"
                ).fetchall()
            return [_bucket(r) for r in rows]

        return await self._run(read)

    async def bucket(self, bucket_id: str) -> AwBucket | None:
        def read() -> AwBucket | None:
            with self._tx(write=False) as c:
                row = c.execute(
                    f"SELECT {_BUCKET_COLUMNS} FROM aw_buckets WHERE id = ?", (bucket_id,)
                ).fetchone()
            return None if row is None else _bucket(row)

        return await self._run(read)

    async def create_bucket(self, bucket: AwBucket) -> bool:
        def write() -> bool:
            with self._tx() as c:
                return self._insert_bucket(c, bucket)

        return await self._run(write)

    @staticmethod
    def _insert_bucket(c: sqlite3.Connection, b: AwBucket) -> bool:
        cur = c.execute(
            f"INSERT OR IGNORE INTO aw_buckets ({_BUCKET_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
            (b.id, b.type, b.client, b.hostname, b.created_us, b.name, dumps(dict(b.data))),
        )
        return cur.rowcount == 1

    async def delete_bucket(self, bucket_id: str) -> bool:
        def write() -> bool:
            with self._tx() as c:
                try:
                    key = self._key(c, bucket_id)
                except NoSuchBucketError:
                    return False
                c.execute("DELETE FROM aw_events WHERE bucket = ?", (key,))
                c.execute("DELETE FROM aw_buckets WHERE key = ?", (key,))
                return True

        return await self._run(write)

    # -- events ------------------------------------------------------------------------------

    async def events(self, bucket_id: str, query: AwRange) -> list[AwEvent]:
        where, args = _where(Bounds.of(query))

        def read() -> list[AwEvent]:
            with self._tx(write=False) as c:
                key = self._key(c, bucket_id)
                if query.limit == 0:
                    return []
                rows = c.execute(
                    "SELECT id, ts_ms, dur_us, data FROM aw_events WHERE bucket = ?"
                    f"{where} ORDER BY ts_ms DESC, id DESC LIMIT ?",
                    (key, *args, query.limit if query.limit > 0 else -1),
                ).fetchall()
            return [_event(r) for r in rows]

        events = await self._run(read)
        if not query.trim:
            return events
        return [trimmed(e, query.start_us, query.end_us) for e in events]

    async def count(self, bucket_id: str, query: AwRange) -> int:
        where, args = _where(Bounds.of(query))

        def read() -> int:
            with self._tx(write=False) as c:
                key = self._key(c, bucket_id)
                row = c.execute(
                    f"SELECT count(*) FROM aw_events WHERE bucket = ?{where}", (key, *args)
                ).fetchone()
            return int(row[0])

        return await self._run(read)

    async def event(self, bucket_id: str, event_id: int) -> AwEvent | None:
        def read() -> AwEvent | None:
            with self._tx(write=False) as c:
                key = self._key(c, bucket_id)
                row = c.execute(
                    "SELECT id, ts_ms, dur_us, data FROM aw_events WHERE id = ? AND bucket = ?",
                    (event_id, key),
                ).fetchone()
            return None if row is None else _event(row)

        return await self._run(read)

    async def delete_event(self, bucket_id: str, event_id: int) -> int:
        def write() -> int:
            with self._tx() as c:
                key = self._key(c, bucket_id)
                cur = c.execute(
                    "DELETE FROM aw_events WHERE id = ? AND bucket = ?", (event_id, key)
                )
                return cur.rowcount

        return await self._run(write)

    async def insert(self, bucket_id: str, events: Sequence[AwEvent]) -> list[AwEvent]:
        def write() -> list[AwEvent]:
            with self._tx() as c:
                key = self._key(c, bucket_id)
                return [self._put(c, key, e) for e in events]

        return await self._run(write)

    @staticmethod
    def _put(c: sqlite3.Connection, key: int, e: AwEvent) -> AwEvent:
        """Replace the event ``e.id`` of bucket ``key`` when there is one, else add ``e``."""
        data = dumps(dict(e.data))
        if e.id is not None:
            cur = c.execute(
                "UPDATE aw_events SET ts_ms = ?, dur_us = ?, data = ? WHERE id = ? AND bucket = ?",
                (e.timestamp_ms, e.duration_us, data, e.id, key),
            )
            if cur.rowcount == 1:
                return e
        cur = c.execute(
            "INSERT INTO aw_events (bucket, ts_ms, dur_us, data) VALUES (?,?,?,?)",
            (key, e.timestamp_ms, e.duration_us, data),
        )
        return e.with_id(cur.lastrowid)

    async def heartbeat(self, bucket_id: str, heartbeat: AwEvent, pulsetime_us: int) -> AwEvent:
        def write() -> AwEvent:
            with self._tx() as c:
                key = self._key(c, bucket_id)
                row = c.execute(
                    "SELECT id, ts_ms, dur_us, data FROM aw_events WHERE bucket = ?"
                    " ORDER BY ts_ms DESC, id DESC LIMIT 1",
                    (key,),
                ).fetchone()
                last = None if row is None else _event(row)
                stored, _ = heartbeat_apply(last, heartbeat, pulsetime_us)
                return self._put(c, key, stored)

        return await self._run(write)

    async def import_buckets(self, exports: Sequence[AwBucketExport]) -> None:
        def write() -> None:
            with self._tx() as c:
                ids = [x.bucket.id for x in exports]
                taken = sorted(
                    r[0]
                    for r in c.execute(
                        "SELECT id FROM aw_buckets WHERE id IN (SELECT value FROM json_each(?))",
                        (dumps(ids),),
                    )
                )
                if taken:
                    raise InvalidInputError(f"buckets {taken} exist already; nothing was imported")
                for x in exports:
                    self._insert_bucket(c, x.bucket)
                    key = self._key(c, x.bucket.id)
                    c.executemany(
                        "INSERT INTO aw_events (bucket, ts_ms, dur_us, data) VALUES (?,?,?,?)",
                        [
                            (key, e.timestamp_ms, e.duration_us, dumps(dict(e.data)))
                            for e in x.events  # in the export's order, as aw-server
                        ],
                    )

        await self._run(write)


class _Tx:
    """A transaction: ``COMMIT`` at the end of the block, ``ROLLBACK`` when it raises.

    Writers begin ``IMMEDIATE`` (the write lock first, so a read-then-write never fails on
    a lock taken meanwhile); readers begin deferred and never block the warm tier's writer."""

    def __init__(self, conn: sqlite3.Connection, write: bool) -> None:
        self.conn = conn
        self.write = write

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE" if self.write else "BEGIN")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
