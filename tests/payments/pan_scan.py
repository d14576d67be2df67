"""The no-PAN scanner of Done-when 4: card numbers in database rows, files and Parquet.

A hit is either one of the exact card numbers a run used (found wherever it is, even inside
a longer token), or any run of 13 to 19 digits that stands on its own (no letter or digit
right before or after it: hex digests such as the card fingerprints hold digit runs by
chance) and passes Luhn and starts like a card of the major networks (2 to 6: Mastercard
2-series, Amex/Diners/JCB, Visa, Mastercard, Discover/UnionPay). The leading digit keeps
Unix-millisecond and -nanosecond times (13 and 19 digits starting with 1) from passing for
cards by Luhn chance; every test number the simulator uses starts 4, 5 or 6.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from sysmonstm.domains.payments.card import luhn_ok

_RUN = re.compile(rb"(?<![0-9A-Za-z])[2-6][0-9]{12,18}(?![0-9A-Za-z])")


@dataclass(frozen=True, slots=True)
class Hit:
    where: str  # file, table.column, ...
    digits: str  # the last four only: the report itself must not hold a card number

    def __str__(self) -> str:
        return f"{self.where}: ****{self.digits}"


class PanScanner:
    """Finds card numbers in bytes; ``exact`` are numbers to find whatever they look like."""

    def __init__(self, exact: Iterable[str] = ()) -> None:
        self.exact = sorted({p.encode() for p in exact})
        self.scanned: list[str] = []  # what was looked at (so a test can show it looked)

    def bytes(self, where: str, data: bytes) -> list[Hit]:
        self.scanned.append(where)
        hits = [Hit(where, p[-4:].decode()) for p in self.exact if p in data]
        for m in _RUN.finditer(data):
            digits = m.group().decode()
            if luhn_ok(digits):
                hits.append(Hit(where, digits[-4:]))
        return hits

    def text(self, where: str, value: object) -> list[Hit]:
        return self.bytes(where, str(value).encode())

    def file(self, path: Path) -> list[Hit]:
        """Raw bytes of one file; a Parquet file is also decoded (its pages are compressed)."""
        hits = self.bytes(str(path), path.read_bytes())
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for name in table.column_names:
                for value in table.column(name).to_pylist():
                    hits += self.text(f"{path}:{name}", value)
        return hits

    def tree(self, root: Path) -> list[Hit]:
        """Every file under ``root`` (the folder itself must exist)."""
        assert root.exists(), root
        hits: list[Hit] = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            hits += self.file(path)
        return hits

    def sqlite(self, path: Path) -> list[Hit]:
        """Every column of every row of every table, then the raw file and its WAL."""
        hits: list[Hit] = []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                cur = conn.execute(f'SELECT * FROM "{table}"')
                names = [d[0] for d in cur.description]
                for row in cur:
                    for name, value in zip(names, row, strict=True):
                        data = value if isinstance(value, bytes) else str(value).encode()
                        hits += self.bytes(f"{path.name}:{table}.{name}", data)
        finally:
            conn.close()
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                hits += self.file(f)
        return hits

    async def postgres(self, dsn: str) -> list[Hit]:
        """Every column of every row of every table in the database's public schema."""
        import asyncpg

        hits: list[Hit] = []
        conn = await asyncpg.connect(dsn)
        try:
            tables = await conn.fetch(
                "SELECT schemaname, tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
            for t in tables:
                qualified = f'"{t["schemaname"]}"."{t["tablename"]}"'
                for row in await conn.fetch(f"SELECT * FROM {qualified}"):
                    for name, value in row.items():
                        data = value if isinstance(value, bytes) else str(value).encode()
                        hits += self.bytes(f"{t['tablename']}.{name}", data)
        finally:
            await conn.close()
        return hits
