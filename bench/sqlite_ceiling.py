"""Raw SQLite insert ceilings: what the file can take when nothing else runs.

``wide`` is the warm tier's own raw layout, created with the warm tier's own code
(``sqlite_db.connect`` and ``partition_ddl``): one row per (source, instant) holding that
instant's 100 values as a float64 blob, ``PRIMARY KEY (source_id, t, seq) WITHOUT ROWID``,
WAL. Rows arrive as the aggregator writes them: 100 sources interleaved, time growing, one
``executemany`` and one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) per 50,000 samples.

``narrow`` is the textbook layout for comparison, as ``measured.md`` measured it: one row per
sample ``(ts, host, metric, value)`` with an index on ``(host, metric, ts)``, 50,000 rows per
transaction, WAL, ``synchronous=NORMAL``.

Only ``executemany`` and ``COMMIT`` are timed; the Python tuples are built beforehand. Bytes
per sample is the database file's size after ``wal_checkpoint(TRUNCATE)`` divided by samples.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.model import Run
from bench.workload import INTERVAL_MS, SERIES_PER_HOST, host_series, machine_id, random_walk
from sysmonstm.store import sqlite_db
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import partition_name

SOURCES = 100
SAMPLES_PER_TRANSACTION = 50_000
_T0_MS = 1_780_000_000_000  # any fixed day: only the table name depends on it


@dataclass(frozen=True, slots=True)
class SqliteCase:
    """One ceiling: a layout and the ``synchronous`` pragma it runs with."""

    layout: str  # "wide" or "narrow"
    synchronous: str  # "full" or "normal"


def _wide_rows(pool: list[bytes]) -> Iterator[list[tuple[int, int, int, int, bytes]]]:
    """Transactions of wide rows: per instant one row per source, sources interleaved."""
    steps = SAMPLES_PER_TRANSACTION // (SOURCES * SERIES_PER_HOST)
    step, seq = 0, 0
    while True:
        seq += 1
        rows: list[tuple[int, int, int, int, bytes]] = []
        for s in range(step, step + steps):
            t = _T0_MS + s * INTERVAL_MS
            rows.extend(
                (src + 1, t, seq, 1, pool[(s * SOURCES + src) % len(pool)])
                for src in range(SOURCES)
            )
        step += steps
        yield rows


def _narrow_rows(pool: list[float]) -> Iterator[list[tuple[int, str, str, float]]]:
    """Transactions of narrow rows: per instant every (host, metric) once."""
    hosts = [machine_id(i) for i in range(SOURCES)]
    keys = host_series()
    per_step = SOURCES * SERIES_PER_HOST
    steps = max(1, SAMPLES_PER_TRANSACTION // per_step)
    step = 0
    while True:
        rows: list[tuple[int, str, str, float]] = []
        for s in range(step, step + steps):
            t = _T0_MS + s * INTERVAL_MS
            base = s * per_step
            rows.extend(
                (t, h, k, pool[(base + i) % len(pool)])
                for i, (h, k) in enumerate((h, k) for h in hosts for k in keys)
            )
        step += steps
        yield rows


def _timed_inserts(
    conn: sqlite3.Connection,
    sql: str,
    batches: Iterator[list[Any]],
    samples_per_row: int,
    seconds: float,
) -> tuple[int, float]:
    """Insert transactions until ``seconds`` of insert time; returns (samples, seconds)."""
    samples, spent = 0, 0.0
    while spent < seconds:
        rows = next(batches)
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - start
        samples += len(rows) * samples_per_row
    return samples, spent


def _setup_wide(path: Path, synchronous: str) -> tuple[sqlite3.Connection, str, Iterator[Any]]:
    conn = sqlite_db.connect(path, synchronous=synchronous)
    table = partition_name(Tier.RAW, _T0_MS)
    conn.execute(sqlite_db.partition_ddl(Tier.RAW, table))
    rng = np.random.default_rng(1)
    pool = [row.astype("<f8").tobytes() for row in random_walk(rng, 997, SERIES_PER_HOST)]
    # the table name comes from partition_name, never from input
    sql = f"INSERT INTO {table} (source_id, t, seq, layout_id, vals) VALUES (?,?,?,?,?)"  # noqa: S608
    return conn, sql, _wide_rows(pool)


def _setup_narrow(path: Path, synchronous: str) -> tuple[sqlite3.Connection, str, Iterator[Any]]:
    conn = sqlite_db.connect(path, synchronous=synchronous)
    conn.execute(
        "CREATE TABLE samples (ts INTEGER NOT NULL, host TEXT NOT NULL,"
        " metric TEXT NOT NULL, value REAL NOT NULL)"
    )
    conn.execute("CREATE INDEX samples_by_series ON samples (host, metric, ts)")
    rng = np.random.default_rng(1)
    pool = random_walk(rng, 97, SERIES_PER_HOST).ravel().tolist()
    sql = "INSERT INTO samples (ts, host, metric, value) VALUES (?,?,?,?)"
    return conn, sql, _narrow_rows(pool)


_SETUP: dict[str, Callable[[Path, str], tuple[sqlite3.Connection, str, Iterator[Any]]]] = {
    "wide": _setup_wide,
    "narrow": _setup_narrow,
}


def run_case(case: SqliteCase, directory: Path, seconds: float) -> Run:
    """One run of ``case`` in a fresh database file under ``directory``."""
    path = directory / f"{case.layout}-{case.synchronous}.db"
    conn, sql, batches = _SETUP[case.layout](path, case.synchronous)
    try:
        per_row = SERIES_PER_HOST if case.layout == "wide" else 1
        samples, spent = _timed_inserts(conn, sql, batches, per_row, seconds)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    size = path.stat().st_size
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return Run(
        samples / spent,
        samples,
        spent,
        {"bytes_per_sample": size / samples, "file_bytes": size, "rows": samples // per_row},
    )
