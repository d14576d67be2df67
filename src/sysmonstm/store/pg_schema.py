"""The PostgreSQL warm tier's schema: numbered migrations, applied once each, under a lock.

Layout (chosen for bytes per sample and write speed; ``bench/pg.py`` measures it):

- ``raw``: one row per (source, instant), the instant's values as a ``float8[]`` in the
  order of a stored *layout* (the list of series ids), range-partitioned by day on ``t``
  (``raw_YYYYMMDD``). A row carries a whole frame (~100 samples), so its tuple header and
  its key entry cost ~1/100 of a narrow row's: 9.8 bytes per sample with the indexes
  (9.1 heap, 0.7 the primary key, BRIN next to nothing), against ~165 for narrow
  (t, host, metric, value) rows with the same series keys and their index; binary COPY
  takes ~12 M samples/s here against ~0.3 M narrow rows/s. ``PRIMARY KEY (source_id, t,
  seq)`` serves per-source range reads and refuses the same instant twice within a batch;
  the BRIN index on ``t`` serves time scans across sources.
- ``m1`` (by month, ``m1_YYYYMM``): one row per (series, hour) holding each stat of the
  hour's 60 minutes as an array, ~0.75 bytes per sample against ~2 for a row per (series,
  minute); ``m1_open``: the narrow minutes of hours not rolled up into ``h1`` yet (``pg_m1``;
  migration 4, which converted the narrow rows of before). ``h1`` (by year, ``h1_YYYY``):
  one narrow row per (series, hour) with min, max, sum, count, last.
- ``sources`` (watermark ``stored_seq`` and rollup progress per source; its row is what
  writers of one source lock to serialize), ``series``, ``layouts``, ``dirty`` (buckets to
  roll up again after late data), ``records`` (alert history and similar documents).
- ``desk_machines``, ``desk_intervals``, ``desk_days``, ``desk_months``: Deskmeter's
  interval store (migration 2; written and read by ``domains/deskmeter/store_pg``).
- ``pay_*``: the payment hub's ledger (migration 3; ``domains/payments/ledger_pg``).

Times are Unix milliseconds (UTC) in ``bigint`` everywhere, as in the rest of sysmonstm.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sysmonstm.errors import BackendError
from sysmonstm.store import pg_migrate_m1
from sysmonstm.store.pg_conn import Conn

# pg_advisory_xact_lock keys (any constants unique to sysmonstm)
MIGRATION_LOCK = 0x5359_534D_0001
PARTITION_LOCK = 0x5359_534D_0002
PAYMENTS_LOCK = 0x5359_534D_0003  # held by each payment ledger write (one audit chain head)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step; ``statements`` run in order in the migrating transaction, then
    ``convert`` (moving data the statements alone cannot), if any."""

    version: int
    name: str
    statements: tuple[str, ...]
    convert: Callable[[Conn], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class MigrationState:
    """A known migration and when it was applied (None: pending)."""

    migration: Migration
    applied_at: datetime | None


_INITIAL = (
    # fillfactor leaves room on each page so watermark updates stay HOT (no index churn)
    """CREATE TABLE sources (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        domain text NOT NULL,
        key text NOT NULL,
        name text NOT NULL,
        labels jsonb NOT NULL,
        first_ms bigint NOT NULL,
        last_ms bigint NOT NULL,
        stored_seq bigint NOT NULL,
        m1_through bigint NOT NULL,
        h1_through bigint NOT NULL,
        interval_ms integer NOT NULL,
        UNIQUE (domain, key)
    ) WITH (fillfactor = 50)""",
    """CREATE TABLE series (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source_id integer NOT NULL REFERENCES sources (id),
        key text NOT NULL,
        UNIQUE (source_id, key))""",
    # a layout of 10k series outgrows a btree entry: it is unique by its digest
    """CREATE TABLE layouts (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source_id integer NOT NULL REFERENCES sources (id),
        digest bytea NOT NULL UNIQUE,
        ids integer[] NOT NULL)""",
    "CREATE INDEX layouts_by_source ON layouts (source_id)",
    """CREATE TABLE dirty (
        source_id integer NOT NULL,
        tier text NOT NULL,
        bucket bigint NOT NULL,
        PRIMARY KEY (source_id, tier, bucket))""",
    """CREATE TABLE records (
        kind text NOT NULL,
        id text NOT NULL,
        time_ms bigint NOT NULL,
        key text NOT NULL,
        body jsonb NOT NULL,
        PRIMARY KEY (kind, id))""",
    "CREATE INDEX records_by_time ON records (kind, time_ms)",
    "CREATE INDEX records_by_key ON records (kind, key, time_ms)",
    # 8-byte columns first: no alignment padding before the array
    """CREATE TABLE raw (
        t bigint NOT NULL,
        seq bigint NOT NULL,
        source_id integer NOT NULL,
        layout_id integer NOT NULL,
        vals float8[] NOT NULL,
        PRIMARY KEY (source_id, t, seq)
    ) PARTITION BY RANGE (t)""",
    "CREATE INDEX raw_t_brin ON raw USING brin (t)",
    """CREATE TABLE m1 (
        t bigint NOT NULL,
        min float8 NOT NULL,
        max float8 NOT NULL,
        sum float8 NOT NULL,
        last float8 NOT NULL,
        series_id integer NOT NULL,
        count integer NOT NULL,
        PRIMARY KEY (series_id, t)
    ) PARTITION BY RANGE (t)""",
    """CREATE TABLE h1 (
        t bigint NOT NULL,
        min float8 NOT NULL,
        max float8 NOT NULL,
        sum float8 NOT NULL,
        last float8 NOT NULL,
        series_id integer NOT NULL,
        count integer NOT NULL,
        PRIMARY KEY (series_id, t)
    ) PARTITION BY RANGE (t)""",
)

# Deskmeter's interval store (``domains/deskmeter/store_pg``): machines with their watermark
# and last interval; intervals keyed by (machine, start), which serves "the interval at t" as
# one backward index probe; daily rollups keyed so that a machine's days are one index range
_DESKMETER = (
    """CREATE TABLE IF NOT EXISTS desk_machines (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key text NOT NULL UNIQUE,
        host text NOT NULL,
        time_zone text NOT NULL,
        heartbeat_ms integer NOT NULL,
        last_event_ms bigint NOT NULL,
        stored_through bigint NOT NULL,
        last_start_ms bigint
    ) WITH (fillfactor = 50)""",
    """CREATE TABLE IF NOT EXISTS desk_intervals (
        start_ms bigint NOT NULL,
        end_ms bigint NOT NULL,
        machine_id integer NOT NULL REFERENCES desk_machines (id),
        workspace_index integer NOT NULL,
        idle boolean NOT NULL,
        open boolean NOT NULL,
        workspace text NOT NULL,
        task text NOT NULL,
        time_zone text NOT NULL,
        PRIMARY KEY (machine_id, start_ms))""",
    """CREATE TABLE IF NOT EXISTS desk_days (
        ms bigint NOT NULL,
        machine_id integer NOT NULL REFERENCES desk_machines (id),
        day date NOT NULL,
        workspace_index integer NOT NULL,
        pieces integer NOT NULL,
        idle boolean NOT NULL,
        task text NOT NULL,
        workspace text NOT NULL,
        PRIMARY KEY (machine_id, day, task, workspace, workspace_index, idle))""",
    # the same per local month (day: the month's first), so a year reads 12 rows per group
    """CREATE TABLE IF NOT EXISTS desk_months (
        ms bigint NOT NULL,
        machine_id integer NOT NULL REFERENCES desk_machines (id),
        day date NOT NULL,
        workspace_index integer NOT NULL,
        pieces integer NOT NULL,
        idle boolean NOT NULL,
        task text NOT NULL,
        workspace text NOT NULL,
        PRIMARY KEY (machine_id, day, task, workspace, workspace_index, idle))""",
)

# The payment hub's ledger (``domains/payments/ledger_pg``; the same tables as its SQLite
# ``ledger_schema``): events unique by event id, decisions, reviews, lists, the audit chain
# (bodies as canonical JSON text, never jsonb, which would re-order keys under the hashes),
# the outbox of bus events, and each adapter's stored sequence
_PAYMENTS = (
    """CREATE TABLE IF NOT EXISTS pay_transactions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        processor text NOT NULL,
        transaction_id text NOT NULL,
        status text NOT NULL,
        amount_minor bigint NOT NULL,
        currency text NOT NULL,
        time_ms bigint NOT NULL,
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
        amount_base_minor bigint NOT NULL,
        base_currency text NOT NULL,
        recorded_ms bigint NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS pay_tx_card ON pay_transactions (card_fingerprint, time_ms)",
    "CREATE INDEX IF NOT EXISTS pay_tx_time ON pay_transactions (time_ms, event_id)",
    "CREATE INDEX IF NOT EXISTS pay_tx_payment ON pay_transactions (transaction_id)",
    """CREATE TABLE IF NOT EXISTS pay_decisions (
        event_id text PRIMARY KEY,
        transaction_id text NOT NULL,
        action integer NOT NULL,
        hits text NOT NULL,
        decided_ms bigint NOT NULL,
        ruleset text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS pay_decisions_action ON pay_decisions (action, decided_ms)",
    """CREATE TABLE IF NOT EXISTS pay_reviews (
        event_id text PRIMARY KEY,
        verdict text NOT NULL,
        analyst text NOT NULL,
        note text NOT NULL,
        reviewed_ms bigint NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pay_lists (
        kind text NOT NULL,
        value text NOT NULL,
        mode text NOT NULL,
        note text NOT NULL,
        added_by text NOT NULL,
        added_ms bigint NOT NULL,
        PRIMARY KEY (kind, value))""",
    """CREATE TABLE IF NOT EXISTS pay_audit (
        seq bigint PRIMARY KEY,
        time_ms bigint NOT NULL,
        kind text NOT NULL,
        actor text NOT NULL,
        subject text NOT NULL,
        body text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pay_outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        topic text NOT NULL,
        message_id text NOT NULL UNIQUE,
        payload text NOT NULL,
        created_ms bigint NOT NULL,
        done_ms bigint)""",
    "CREATE INDEX IF NOT EXISTS pay_outbox_pending ON pay_outbox (id) WHERE done_ms IS NULL",
    """CREATE TABLE IF NOT EXISTS pay_sources (
        source text PRIMARY KEY,
        stored_through bigint NOT NULL)""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial layout", _INITIAL),
    Migration(2, "deskmeter intervals", _DESKMETER),
    Migration(3, "payment ledger", _PAYMENTS),
    Migration(4, "minute rollups per source", pg_migrate_m1.STATEMENTS, pg_migrate_m1.convert),
)
LATEST = MIGRATIONS[-1].version

_CREATE_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


async def migrate(conn: Conn) -> list[Migration]:
    """Apply every pending migration in the caller's transaction; return those applied.

    Safe to run from several processes at once: an advisory lock held to the end of the
    transaction makes the others wait, then find nothing left to do. Refuses a database
    migrated by a newer sysmonstm.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
    await conn.execute(_CREATE_LEDGER)
    done = {int(r[0]) for r in await conn.fetch("SELECT version FROM schema_migrations")}
    newest = max(done, default=0)
    if newest > LATEST:
        raise BackendError(
            f"database schema version {newest} is newer than this sysmonstm ({LATEST})"
        )
    applied = []
    for m in MIGRATIONS:
        if m.version in done:
            continue
        for statement in m.statements:
            await conn.execute(statement)
        if m.convert is not None:
            await m.convert(conn)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name
        )
        applied.append(m)
    return applied


async def status(conn: Conn) -> tuple[list[MigrationState], list[int]]:
    """Every known migration with its state, and versions in the database unknown here."""
    applied: dict[int, datetime] = {}
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        rows = await conn.fetch("SELECT version, applied_at FROM schema_migrations")
        applied = {int(r[0]): r[1] for r in rows}
    known = [MigrationState(m, applied.get(m.version)) for m in MIGRATIONS]
    unknown = sorted(v for v in applied if v not in {m.version for m in MIGRATIONS})
    return known, unknown
