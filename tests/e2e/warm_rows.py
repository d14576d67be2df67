"""What end-to-end runs left in the embedded warm tier (SQLite), read as any process could."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def stored(db: Path, machine: str) -> list[tuple[int, int]]:
    """(sequence, time) of every raw row of ``machine`` in the warm tier, by time."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute("SELECT id FROM sources WHERE key=?", (machine,)).fetchone()
        if row is None:
            return []
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'raw_%'"
            )
        ]
        rows: list[tuple[int, int]] = []
        for table in tables:
            rows.extend(conn.execute(f"SELECT seq, t FROM {table} WHERE source_id=?", row))
    return sorted(rows, key=lambda r: r[1])
