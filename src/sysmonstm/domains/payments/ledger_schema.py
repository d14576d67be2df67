"""The ledger's tables, one statement list per dialect (see ``ledger_sql`` for their use).

SQLite versions them itself (``meta`` key ``payments_schema_version``, as Deskmeter does);
PostgreSQL has the same tables as migration 3 of ``store.pg_schema`` (the core keeps its
migrations itself; ``tests/payments/test_ledger.py`` checks both have the same columns).
Money and times are integers (minor units, Unix ms); JSON (metadata, hits, audit bodies,
outbox payloads) is canonical JSON *text* — never ``jsonb``, which would re-order keys under
the audit hashes.
"""

from __future__ import annotations

SCHEMA_VERSION = 1


def _tables(ident: str, big: str) -> tuple[str, ...]:
    """The DDL with ``ident`` as the auto-numbered key's type and ``big`` for 64-bit ints."""
    return (
        f"""CREATE TABLE IF NOT EXISTS pay_transactions (
            id {ident},
            event_id text NOT NULL UNIQUE,
            processor text NOT NULL,
            transaction_id text NOT NULL,
            status text NOT NULL,
            amount_minor {big} NOT NULL,
            currency text NOT NULL,
            time_ms {big} NOT NULL,
            card_fingerprint text NOT NULL,
            card_bin text NOT NULL,
            card_last4 text NOT NULL,
            card_country text NOT NULL,
            country text NOT NULL,
            ip_country text NOT NULL,
            ip text NOT NULL,
            email text NOT NULL,
            customer_name text NOT NULL,
            description text NOT NULL,
            metadata text NOT NULL,
            source text NOT NULL,
            amount_base_minor {big} NOT NULL,
            base_currency text NOT NULL,
            recorded_ms {big} NOT NULL)""",
        # velocity: a card's events by time; reads by time; a payment's events
        "CREATE INDEX IF NOT EXISTS pay_tx_card ON pay_transactions (card_fingerprint, time_ms)",
        "CREATE INDEX IF NOT EXISTS pay_tx_time ON pay_transactions (time_ms, event_id)",
        "CREATE INDEX IF NOT EXISTS pay_tx_payment ON pay_transactions (transaction_id)",
        f"""CREATE TABLE IF NOT EXISTS pay_decisions (
            event_id text PRIMARY KEY,
            transaction_id text NOT NULL,
            action integer NOT NULL,
            hits text NOT NULL,
            decided_ms {big} NOT NULL,
            ruleset text NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS pay_decisions_action ON pay_decisions (action, decided_ms)",
        f"""CREATE TABLE IF NOT EXISTS pay_reviews (
            event_id text PRIMARY KEY,
            verdict text NOT NULL,
            analyst text NOT NULL,
            note text NOT NULL,
            reviewed_ms {big} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS pay_lists (
            kind text NOT NULL,
            value text NOT NULL,
            mode text NOT NULL,
            note text NOT NULL,
            added_by text NOT NULL,
            added_ms {big} NOT NULL,
            PRIMARY KEY (kind, value))""",
        f"""CREATE TABLE IF NOT EXISTS pay_audit (
            seq {big} PRIMARY KEY,
            time_ms {big} NOT NULL,
            kind text NOT NULL,
            actor text NOT NULL,
            subject text NOT NULL,
            body text NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS pay_outbox (
            id {ident},
            topic text NOT NULL,
            message_id text NOT NULL UNIQUE,
            payload text NOT NULL,
            created_ms {big} NOT NULL,
            done_ms {big})""",
        "CREATE INDEX IF NOT EXISTS pay_outbox_pending ON pay_outbox (id) WHERE done_ms IS NULL",
        f"""CREATE TABLE IF NOT EXISTS pay_sources (
            source text PRIMARY KEY,
            stored_through {big} NOT NULL)""",
    )


SQLITE_TABLES = _tables("INTEGER PRIMARY KEY", "INTEGER")
