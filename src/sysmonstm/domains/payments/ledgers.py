"""Pick the ledger backend by the warm tier URL's scheme."""

from __future__ import annotations

from collections.abc import Callable

from sysmonstm.domains.payments.ledger_rows import PiiCipher
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.schemes import by_scheme

LedgerFactory = Callable[[str, PiiCipher | None], SqlLedger]


def _sqlite(url: str, pii: PiiCipher | None) -> SqlLedger:
    from sysmonstm.domains.payments.ledger_sqlite import sqlite_ledger

    return sqlite_ledger(url, pii)


def _postgres(url: str, pii: PiiCipher | None) -> SqlLedger:
    from sysmonstm.domains.payments.ledger_pg import pg_ledger

    return pg_ledger(url, pii)


LEDGER_BACKENDS: dict[str, LedgerFactory] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def open_ledger(url: str, pii: PiiCipher | None = None) -> SqlLedger:
    """A ledger for the warm tier URL ``url`` (not yet opened); personal fields sealed with
    ``pii`` (without one they are not kept)."""
    return by_scheme("ledger backend", url, LEDGER_BACKENDS)(url, pii)
