"""After a pipeline run: is every sample the load generator sent stored, and only once?

Reads the warm tier directly once the aggregator has stopped: the SQLite file (checkpointed
by the aggregator) or the PostgreSQL database. Per source, the raw partitions must hold
exactly one row per frame sent (no time twice), the first and last frame times sent,
``100 x frames`` values, and the source's stored sequence must be the last batch sent.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.workload import SERIES_PER_HOST
from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import parse_partition

_DOMAIN = "metrics"


@dataclass(frozen=True, slots=True)
class Stored:
    """What the file holds for one source."""

    rows: int = 0
    distinct_times: int = 0
    samples: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    stored_seq: int = 0


def _merge(a: Stored, b: Stored) -> Stored:
    """``a`` plus the rows ``b`` of another partition (days are disjoint: no time in both)."""
    return Stored(
        a.rows + b.rows,
        a.distinct_times + b.distinct_times,
        a.samples + b.samples,
        b.first_ms if a.first_ms is None else min(a.first_ms, b.first_ms or a.first_ms),
        b.last_ms if a.last_ms is None else max(a.last_ms, b.last_ms or a.last_ms),
        a.stored_seq,
    )


def read_stored(db_path: Path) -> dict[str, Stored]:
    """Per machine id, what the raw partitions and the ``sources`` table hold."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        ids = {
            sid: (key, seq)
            for sid, key, seq in conn.execute(
                "SELECT id, key, stored_seq FROM sources WHERE domain = ?", (_DOMAIN,)
            )
        }
        found = {key: Stored(stored_seq=seq) for key, seq in ids.values()}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            parsed = parse_partition(table)
            if parsed is None or parsed[0] is not Tier.RAW:
                continue
            # the table name comes from sqlite_master and passed parse_partition
            query = (
                "SELECT source_id, COUNT(*), COUNT(DISTINCT t), SUM(LENGTH(vals)) / 8,"  # noqa: S608
                f" MIN(t), MAX(t) FROM {table} GROUP BY source_id"
            )
            for sid, *counts in conn.execute(query):
                key = ids[sid][0]
                found[key] = _merge(found[key], Stored(*counts))
    finally:
        conn.close()
    return found


_PG_RAW = """
    SELECT source_id, count(*), count(DISTINCT t), sum(cardinality(vals)), min(t), max(t)
    FROM raw GROUP BY source_id"""


async def _read_stored_pg(dsn: str) -> dict[str, Stored]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        ids = {
            int(r["id"]): (str(r["key"]), int(r["stored_seq"]))
            for r in await conn.fetch(
                "SELECT id, key, stored_seq FROM sources WHERE domain = $1", _DOMAIN
            )
        }
        found = {key: Stored(stored_seq=seq) for key, seq in ids.values()}
        # ``raw`` is the partitioned parent: one scan covers every day partition
        for row in await conn.fetch(_PG_RAW):
            sid, *counts = (int(x) for x in row)
            key = ids[sid][0]
            found[key] = _merge(found[key], Stored(*counts))
    finally:
        await conn.close()
    return found


def read_stored_pg(dsn: str) -> dict[str, Stored]:
    """Per machine id, what the PostgreSQL warm tier's ``raw`` and ``sources`` hold."""
    import asyncio

    return asyncio.run(_read_stored_pg(dsn))


def check_exactly_once(db_path: Path, per_host: list[dict[str, Any]]) -> int:
    """Raise ``BenchError`` unless the file holds exactly what was sent; returns samples."""
    return compare(read_stored(db_path), per_host)


def check_exactly_once_pg(dsn: str, per_host: list[dict[str, Any]]) -> int:
    """The same for a PostgreSQL warm tier (the database at ``dsn``)."""
    return compare(read_stored_pg(dsn), per_host)


def compare(stored: dict[str, Stored], per_host: list[dict[str, Any]]) -> int:
    """Raise ``BenchError`` unless ``stored`` is exactly what was sent; returns samples."""
    problems: list[str] = []
    total = 0
    for host in per_host:
        mid, frames = host["machine_id"], int(host["frames"])
        got = stored.get(mid, Stored())
        want = Stored(
            frames,
            frames,
            frames * SERIES_PER_HOST,
            host["first_ms"],
            host["last_ms"],
            int(host["batches"]),
        )
        if got != want:
            problems.append(f"{mid}: stored {got}, sent {want}")
        total += got.samples
    extra = set(stored) - {h["machine_id"] for h in per_host}
    if extra:
        problems.append(f"sources nobody sent: {sorted(extra)[:5]}")
    if problems:
        shown = "\n  ".join(problems[:10])
        raise BenchError(f"{len(problems)} sources not stored exactly once:\n  {shown}")
    return total
