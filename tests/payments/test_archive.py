"""The payment hub's archive: closed months of the audit log and ledger past the warm retention
go to Parquet in the core's archive, verified, kept 12 months at least, and read back whole.
Real ledgers on SQLite and PostgreSQL, a real folder archive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sysmonstm.domains.payments import archive as pa_archive
from sysmonstm.domains.payments.archive import PaymentsArchiver, Status
from sysmonstm.domains.payments.archive_rows import LEDGER_SCHEMA
from sysmonstm.domains.payments.ledger import RiskView
from sysmonstm.domains.payments.ledger_sql import SqlLedger
from sysmonstm.domains.payments.model import Action, Decision, RuleHit, Transaction
from sysmonstm.domains.payments.model import Status as TxStatus
from sysmonstm.errors import ConfigError
from sysmonstm.store.archive import ArchiveCorruptError
from sysmonstm.store.archive_file import FileStore


def ms(y: int, m: int, d: int, h: int = 12) -> int:
    return int(datetime(y, m, d, h, tzinfo=UTC).timestamp() * 1000)


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


async def decide(tx: Transaction, view: RiskView) -> Decision:
    action = Action.REVIEW if tx.amount_minor > 1_000_000 else Action.APPROVE
    hits = (RuleHit("large", action, "amount above 10,000", {"amount": tx.amount_minor}),)
    return Decision(tx.event_id, tx.transaction_id, action, hits if action else (), 0, "test@1")


def tx(n: int, time_ms: int, amount: int = 1234) -> Transaction:
    return Transaction(
        event_id=f"stripe:evt_{n:04d}",
        processor="stripe",
        transaction_id=f"ch_{n:04d}",
        status=TxStatus.CAPTURED,
        amount_minor=amount,
        currency="USD",
        time_ms=time_ms,
        card_fingerprint=f"{n % 7:064x}",
        card_bin="42424242",
        card_last4="4242",
        card_country="US",
        country="US",
        ip_country="US",
        ip="203.0.113.7",
        metadata={"order_id": f"ord_{n}"},
        amount_base_minor=amount,
    )


# (event time, recorded at) per transaction: months Jan..Mar are due at NOW, May/Jun are not
HISTORY = [
    (ms(2026, 1, 5), ms(2026, 1, 5)),
    (ms(2026, 1, 20), ms(2026, 1, 20)),
    (ms(2026, 2, 3), ms(2026, 2, 3)),
    (ms(2026, 3, 31, 23), ms(2026, 3, 31, 23)),
    (ms(2026, 5, 2), ms(2026, 5, 2)),
    (ms(2026, 6, 10), ms(2026, 6, 10)),
]
NOW = ms(2026, 6, 15)
RETENTION_MS = 60 * 86_400_000  # cutoff: the month of April 16 → everything before April


@pytest.fixture(params=["sqlite", "postgresql"])
def warm_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The warm tier's database: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warm.db'}"
    return str(request.getfixturevalue("pg_dsn"))


def make_ledger(url: str, clock: Clock) -> SqlLedger:
    if url.startswith("sqlite"):
        from sysmonstm.domains.payments.ledger_sqlite import SqliteDatabase

        return SqlLedger(SqliteDatabase(url), None, clock)
    from sysmonstm.domains.payments.ledger_pg import PgDatabase

    return SqlLedger(PgDatabase(url), None, clock)


@pytest.fixture
async def filled(warm_url: str) -> AsyncIterator[SqlLedger]:
    """A ledger holding HISTORY, recorded month by month as it happened."""
    clock = Clock(0)
    ledger = make_ledger(warm_url, clock)
    await ledger.open()
    try:
        for n, (t, at) in enumerate(HISTORY):
            clock.now = at
            amount = 2_000_000 if n == 2 else 1234
            await ledger.record([tx(n, t, amount)], decide, "stripe-1")
        clock.now = NOW
        yield ledger
    finally:
        await ledger.close()


async def store_at(path: Path) -> FileStore:
    store = FileStore(f"file://{path}")
    await store.open()
    return store


async def test_due_months_are_archived_verified_and_read_back_whole(
    filled: SqlLedger, tmp_path: Path
) -> None:
    """Audit and ledger months before the retention cutoff are archived; later ones are not;
    what is read back equals the warm rows entry for entry and the chain still holds."""
    store = await store_at(tmp_path / "archive")
    outcomes = await PaymentsArchiver(filled, store, RETENTION_MS, now_ms=lambda: NOW).run()
    assert {(o.name, o.status, o.rows) for o in outcomes} == {
        ("audit_202601", Status.ARCHIVED, 4),  # transaction + decision per payment
        ("audit_202602", Status.ARCHIVED, 2),
        ("audit_202603", Status.ARCHIVED, 2),
        ("ledger_202601", Status.ARCHIVED, 2),
        ("ledger_202602", Status.ARCHIVED, 1),
        ("ledger_202603", Status.ARCHIVED, 1),
    }
    keys = sorted(i.key for i in await store.list("payments/"))
    assert [k for k in keys if k.endswith(".json")] == [
        f"payments/{kind}/{kind}_2026{m:02d}.json"
        for kind in ("audit", "ledger")
        for m in (1, 2, 3)
    ]
    assert len([k for k in keys if k.endswith(".parquet")]) == 6

    warm = [e for e in await filled.audit(1, 1000) if e.time_ms < ms(2026, 4, 1, 0)]
    archived = await pa_archive.read_audit(store, 0, ms(2026, 4, 1, 0))
    assert archived == warm
    assert [e.seq for e in archived] == list(range(1, 9))
    assert pa_archive.verify_archived(archived) is None

    march = await pa_archive.read_manifest(store, "ledger", "ledger_202603")
    assert march is not None
    table = await pa_archive.read_month(store, march)
    assert table.schema.equals(LEDGER_SCHEMA)
    assert table.column("event_id").to_pylist() == ["stripe:evt_0003"]
    feb = await pa_archive.read_manifest(store, "ledger", "ledger_202602")
    assert feb is not None
    row = (await pa_archive.read_month(store, feb)).to_pylist()[0]
    assert (row["action"], row["amount_minor"], row["card_last4"]) == ("review", 2_000_000, "4242")
    assert "email" not in row
    assert "customer_name" not in row


async def test_rerun_keeps_the_archive_and_a_damaged_part_is_caught(
    filled: SqlLedger, tmp_path: Path
) -> None:
    """A second run finds every month archived with the same content; a part altered in
    storage fails verification and the month is reported failed, not rewritten."""
    store = await store_at(tmp_path / "archive")
    archiver = PaymentsArchiver(filled, store, RETENTION_MS, now_ms=lambda: NOW)
    await archiver.run()
    before = {i.key: i.tag for i in await store.list("payments/")}
    again = await archiver.run()
    assert {o.status for o in again} == {Status.KEPT}
    assert {i.key: i.tag for i in await store.list("payments/")} == before

    manifest = await pa_archive.read_manifest(store, "audit", "audit_202602")
    assert manifest is not None
    part = tmp_path / "archive" / manifest.parts[0].key
    table = pq.read_table(part)
    pq.write_table(table.slice(0, 1), part)  # an entry gone from the stored copy
    with pytest.raises(ArchiveCorruptError):
        await pa_archive.verify_month(store, manifest)
    third = {o.name: o.status for o in await archiver.run()}
    assert third["audit_202602"] is Status.FAILED
    assert third["audit_202601"] is Status.KEPT


async def test_a_month_altered_in_the_warm_tier_is_not_overwritten(
    filled: SqlLedger, tmp_path: Path
) -> None:
    """When the warm copy of an archived month changed (tampering), the archive keeps the
    original and the run reports a conflict."""
    store = await store_at(tmp_path / "archive")
    archiver = PaymentsArchiver(filled, store, RETENTION_MS, now_ms=lambda: NOW)
    await archiver.run()
    async with filled.db.write("tamper") as sql:
        await sql.execute("UPDATE pay_audit SET actor = ? WHERE seq = ?", "mallory", 1)
    outcomes = {o.name: o.status for o in await archiver.run()}
    assert outcomes["audit_202601"] is Status.CONFLICT
    archived = await pa_archive.read_audit(store, 0, ms(2026, 2, 1, 0))
    assert archived[0].actor == "stripe-1"


async def test_archive_keeps_twelve_months_at_least(filled: SqlLedger, tmp_path: Path) -> None:
    """Expiry refuses to keep fewer than 12 months, and with 12 deletes only months that
    ended 12 months or more before now."""
    store = await store_at(tmp_path / "archive")
    await PaymentsArchiver(filled, store, RETENTION_MS, now_ms=lambda: NOW).run()
    with pytest.raises(ConfigError):
        await pa_archive.expire(store, ms(2027, 3, 15), 11)
    gone = await pa_archive.expire(store, ms(2027, 3, 15), 12)
    assert sorted(gone) == ["audit_202601", "audit_202602", "ledger_202601", "ledger_202602"]
    left = [m.name for kind in ("audit", "ledger") for m in await pa_archive.manifests(store, kind)]
    assert left == ["audit_202603", "ledger_202603"]
    assert not [i for i in await store.list("payments/") if "_202601" in i.key]
    await asyncio.sleep(0)


def test_archive_command_archives_due_months_and_reports_them(tmp_path: Path) -> None:
    """``sysmonstm payments archive --after 90d`` archives every month that ended 90 days
    ago or more into ``archive.url``, prints one line per month, and a rerun keeps them."""
    import subprocess

    from tests.e2e.processes import SYSMONSTM, base_env

    data = tmp_path / "data"
    data.mkdir()

    async def fill() -> None:
        clock = Clock(0)
        ledger = make_ledger(f"sqlite:///{data / 'warm.db'}", clock)
        await ledger.open()
        try:
            for n, (t, at) in enumerate(HISTORY):
                clock.now = at
                await ledger.record([tx(n, t)], decide, "stripe-1")
        finally:
            await ledger.close()

    asyncio.run(fill())
    env = base_env(data, ARCHIVE__URL=f"file://{tmp_path / 'archive'}")
    cmd = [SYSMONSTM, "payments", "archive", "--after", "90d"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    cutoff = pa_archive.month_start(int(time.time() * 1000) - 90 * 86_400_000)
    per_month = {"202601": 2, "202602": 1, "202603": 1, "202605": 1, "202606": 1}
    due = {m: n for m, n in per_month.items() if ms(int(m[:4]), int(m[4:]), 1, 0) < cutoff}
    expected = sorted(
        f"{kind}_{m}: archived ({n * (2 if kind == 'audit' else 1)} rows)"
        for kind in ("audit", "ledger")
        for m, n in due.items()
    )
    assert sorted(first.stdout.split("\n")[:-1]) == (expected or ["nothing due"])
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": kept (") == 2 * len(due)
