"""PostgreSQL warm tier: versioned, idempotent migrations (on open and by `sysmonstm db`)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from typer.testing import CliRunner

from sysmonstm.cli_db import db_app
from sysmonstm.errors import BackendError
from sysmonstm.store.pg_conn import PgDb
from sysmonstm.store.pg_schema import LATEST, MIGRATIONS, migrate
from sysmonstm.store.warm_pg import PgWarm
from tests.store.pg_support import fetch


async def test_open_applies_every_migration_once_and_records_it(pg_dsn: str) -> None:
    for _ in range(2):
        warm = PgWarm(pg_dsn)
        await warm.open()
        await warm.close()
    rows = await fetch(pg_dsn, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in MIGRATIONS]
    tables = await fetch(
        pg_dsn, "SELECT relname FROM pg_class WHERE relname IN ('raw', 'm1', 'h1', 'sources')"
    )
    assert sorted(r[0] for r in tables) == ["h1", "m1", "raw", "sources"]


async def test_concurrent_migrations_apply_each_version_once(pg_dsn: str) -> None:
    dbs = [PgDb(pg_dsn), PgDb(pg_dsn)]
    for db in dbs:
        await db.open()

    async def run(db: PgDb) -> list[int]:
        async with db.tx("migrate") as conn:
            return [m.version for m in await migrate(conn)]

    try:
        results = await asyncio.gather(*(run(db) for db in dbs))
    finally:
        for db in dbs:
            await db.close()
    assert sorted(results) == [[], [m.version for m in MIGRATIONS]]
    rows = await fetch(pg_dsn, "SELECT count(*) FROM schema_migrations")
    assert rows[0][0] == len(MIGRATIONS)


async def test_a_database_from_a_newer_sysmonstm_is_refused(pg_dsn: str) -> None:
    warm = PgWarm(pg_dsn)
    await warm.open()
    await warm.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')", LATEST + 1
        )
    finally:
        await conn.close()
    with pytest.raises(BackendError, match="newer than this sysmonstm"):
        await PgWarm(pg_dsn).open()


def test_db_migrate_applies_then_finds_nothing_to_apply(pg_dsn: str) -> None:
    runner = CliRunner()
    first = runner.invoke(db_app, ["migrate", "--url", pg_dsn])
    assert first.exit_code == 0, first.output
    assert f"applied 1: {MIGRATIONS[0].name}" in first.output
    again = runner.invoke(db_app, ["migrate", "--url", pg_dsn])
    assert again.exit_code == 0, again.output
    assert "applied" not in again.output
    assert "nothing to apply" in again.output


def test_db_status_lists_pending_then_applied_migrations(pg_dsn: str) -> None:
    runner = CliRunner()
    before = runner.invoke(db_app, ["status", "--url", pg_dsn])
    assert before.exit_code == 0, before.output
    assert "pending" in before.output
    runner.invoke(db_app, ["migrate", "--url", pg_dsn])
    after = runner.invoke(db_app, ["status", "--url", pg_dsn])
    assert after.exit_code == 0, after.output
    assert "pending" not in after.output
    assert MIGRATIONS[0].name in after.output


def test_db_migrate_defaults_to_the_configured_warm_url(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSMONSTM_WARM__URL", pg_dsn)
    result = CliRunner().invoke(db_app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert f"applied 1: {MIGRATIONS[0].name}" in result.output


def test_db_commands_refuse_a_url_that_is_not_postgresql() -> None:
    result = CliRunner().invoke(db_app, ["migrate", "--url", "sqlite:///tmp/w.db"])
    assert result.exit_code == 2
    assert "not a PostgreSQL URL" in result.output


def test_db_commands_mask_the_password_in_what_they_print(pg_dsn: str) -> None:
    hidden = "pw-not-to-be-seen"
    with_password = pg_dsn.replace("postgres@", f"postgres:{hidden}@")
    ok = CliRunner().invoke(db_app, ["migrate", "--url", with_password])
    assert ok.exit_code == 0, ok.output
    unreachable = "postgresql://postgres:" + hidden + "@127.0.0.1:1/nothing"
    failed = CliRunner().invoke(db_app, ["status", "--url", unreachable])
    assert failed.exit_code == 1
    for output in (ok.output, failed.output):
        assert hidden not in output
        assert "postgres:***@" in output
