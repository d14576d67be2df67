"""Direct SQL on a ledger's database, as an operator (or an attacker) would run it."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

from sysmonstm.store.warm_sqlite import sqlite_path


async def raw(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``$1`` placeholders on PostgreSQL, ``?`` on SQLite) and commit."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            found = conn.execute(sql, args).fetchall()
            conn.commit()
            return found
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await pg.fetch(sql, *args)]
    finally:
        await pg.close()


def ph(url: str, n: int) -> str:
    """The ``n``-th placeholder in ``url``'s dialect."""
    return "?" if url.startswith("sqlite") else f"${n}"
