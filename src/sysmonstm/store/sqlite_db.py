"""SQLite plumbing for the embedded warm tier: connections, schema, partitions, id lookups.

Layout (chosen for bytes per sample and write speed, see docs/benchmarks.md):
- ``raw_YYYYMMDD``: one row per (source, instant): the batch's values as a float64 blob in
  the order of a stored *layout* (the list of series ids). A row carries ~100 samples, so the
  index costs 1/100 of a narrow row's.
- ``m1_YYYYMM`` / ``h1_YYYY``: one narrow row per (series, bucket): min, max, sum, count, last.
- ``sources`` (watermarks and rollup progress), ``series``, ``layouts``, ``dirty`` (buckets to
  roll up again after late data), ``records`` (alert history and similar documents).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from sysmonstm.errors import BackendError
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import partition_name

SCHEMA_VERSION = 1
PAGE_SIZE = 32768
# schema versions, the warm tier's and those of the stores beside it in its file
META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

_DDL = [
    META_DDL,
    """CREATE TABLE IF NOT EXISTS sources (
        id INTEGER PRIMARY KEY,
        domain TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        labels TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        interval_ms INTEGER NOT NULL,
        stored_seq INTEGER NOT NULL,
        m1_through INTEGER NOT NULL,
        h1_through INTEGER NOT NULL,
        UNIQUE (domain, key))""",
    """CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        UNIQUE (source_id, key))""",
    "CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY, ids BLOB NOT NULL UNIQUE)",
    """CREATE TABLE IF NOT EXISTS dirty (
        source_id INTEGER NOT NULL, tier TEXT NOT NULL, bucket INTEGER NOT NULL,
        PRIMARY KEY (source_id, tier, bucket)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS records (
        kind TEXT NOT NULL, id TEXT NOT NULL, time_ms INTEGER NOT NULL, key TEXT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (kind, id))""",
    "CREATE INDEX IF NOT EXISTS records_by_time ON records (kind, time_ms)",
    "CREATE INDEX IF NOT EXISTS records_by_key ON records (kind, key, time_ms)",
]


def connect(path: Path, *, synchronous: str = "full", readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode; the caller owns it (one thread at a time)."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=30.0,
        cached_statements=256,
    )
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        # Only a new, empty file takes a page size (and only before WAL mode). A raw row holds
        # a whole frame: with 4 KiB pages a WITHOUT ROWID row spills to an overflow page past
        # ~124 values (1 KiB of local payload) and a sample costs 37 bytes instead of 8.5;
        # 32 KiB pages keep frames of up to ~1,000 series inline.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Create what is missing; refuse a database written by a newer schema."""
    row = (
        conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if "meta" in existing_tables(conn)
        else None
    )
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise BackendError(f"database schema {row[0]} is newer than this sysmonstm")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in _DDL:
            conn.execute(stmt)
        conn.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _refuse_newer(conn: sqlite3.Connection, key: str, version: int, what: str) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is not None and int(row[0]) > version:
        raise BackendError(f"{what} are at schema {row[0]}, newer than this sysmonstm")


def migrate_tables(
    conn: sqlite3.Connection, ddl: Iterable[str], *, key: str, version: int, what: str
) -> None:
    """Create what is missing of ``ddl`` (tables a store keeps beside the warm tier's) in
    one transaction, their schema ``version`` kept in ``meta`` under ``key``; refuse
    (``BackendError``, nothing created) tables written by a newer sysmonstm."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(META_DDL)
        _refuse_newer(conn, key, version, what)
        for stmt in ddl:
            conn.execute(stmt)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, str(version)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def partition_ddl(tier: Tier, name: str) -> str:
    if tier is Tier.RAW:
        return (
            f"CREATE TABLE IF NOT EXISTS {name} (source_id INTEGER NOT NULL, t INTEGER NOT NULL,"
            " seq INTEGER NOT NULL, layout_id INTEGER NOT NULL, vals BLOB NOT NULL,"
            " PRIMARY KEY (source_id, t, seq)) WITHOUT ROWID"
        )
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (series_id INTEGER NOT NULL, t INTEGER NOT NULL,"
        " min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL,"
        " last REAL NOT NULL, PRIMARY KEY (series_id, t)) WITHOUT ROWID"
    )


def existing_tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def ensure_partition(conn: sqlite3.Connection, known: set[str], tier: Tier, t_ms: int) -> str:
    """The partition table for ``t_ms``, created if needed (``known`` caches names)."""
    name = partition_name(tier, t_ms)
    if name not in known:
        conn.execute(partition_ddl(tier, name))
        known.add(name)
    return name


def series_id(conn: sqlite3.Connection, source_id: int, key: str) -> int:
    """The id of series ``key`` of a source, added if new."""
    row = conn.execute(
        "SELECT id FROM series WHERE source_id=? AND key=?", (source_id, key)
    ).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute("INSERT INTO series (source_id, key) VALUES (?,?)", (source_id, key))
    assert cur.lastrowid is not None
    return cur.lastrowid


def layout_id(conn: sqlite3.Connection, ids: bytes) -> int:
    """The id of the layout whose series ids are ``ids`` (little-endian int64s), added if new."""
    row = conn.execute("SELECT id FROM layouts WHERE ids=?", (ids,)).fetchone()
    if row is not None:
        return int(row[0])
    cur = conn.execute("INSERT INTO layouts (ids) VALUES (?)", (ids,))
    assert cur.lastrowid is not None
    return cur.lastrowid
