"""The audit chain: canonical hashing, verification naming the first broken entry, and
Done-when 5: ``sysmonstm payments audit verify`` (a subprocess) passes on a clean log and
names the exact entry after one row is altered with SQL, on SQLite and PostgreSQL; exports
carry the chain fields and re-verify with ``audit check``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from sysmonstm.domains.payments.audit import (
    GENESIS,
    canonical_json,
    entry_from_json,
    entry_json,
    link,
    verify_entries,
)
from sysmonstm.domains.payments.ledger import Broken
from sysmonstm.domains.payments.model import AuditEntry
from tests.e2e.processes import SYSMONSTM
from tests.payments.ledger_support import approve_all, ledger_url, opened_ledger, tx
from tests.payments.rawsql import ph, raw


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    head = (0, GENESIS)
    for i in range(n):
        entry = link(head, 1000 + i, "transaction", "stripe-1", f"stripe:evt_{i}", {"i": i})
        entries.append(entry)
        head = (entry.seq, entry.hash)
    return entries


def test_an_entry_hash_is_sha256_of_the_previous_hash_and_canonical_json() -> None:
    entry = link((0, GENESIS), 5, "review", "ana", "stripe:evt_1", {"b": [1, "é"], "a": None})
    canonical = (
        '{"actor":"ana","body":{"a":null,"b":[1,"é"]},"kind":"review","seq":1,'
        '"subject":"stripe:evt_1","time_ms":5}'
    )
    assert canonical_json(
        {"seq": 1, "time_ms": 5, "kind": "review", "actor": "ana", "subject": "stripe:evt_1",
         "body": {"b": [1, "é"], "a": None}}
    ) == canonical  # fmt: skip
    assert entry.hash == hashlib.sha256((GENESIS + canonical).encode()).hexdigest()
    assert (entry.seq, entry.prev_hash) == (1, GENESIS)


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON-compatible"):
        link((0, GENESIS), 5, "x", "a", "s", {"t": float("nan")})
    with pytest.raises(ValueError, match="not JSON-compatible"):
        link((0, GENESIS), 5, "x", "a", "s", {"t": object()})


def test_verify_names_the_first_altered_relinked_or_missing_entry() -> None:
    entries = chain(5)
    assert verify_entries(entries) == (None, 5)
    altered = [*entries[:2], replace(entries[2], body={"i": 99}), *entries[3:]]
    assert verify_entries(altered) == (
        Broken(3, "hash does not match the entry's content (altered)"), 2
    )  # fmt: skip
    # rewriting an entry with a fresh, valid hash breaks the next one's link
    forged = link((2, entries[1].hash), 1002, "transaction", "stripe-1", "x", {"i": 99})
    assert verify_entries([*entries[:2], forged, *entries[3:]]) == (
        Broken(4, "prev_hash does not match the previous entry's hash"), 3
    )  # fmt: skip
    assert verify_entries([*entries[:1], *entries[2:]]) == (
        Broken(2, "entry 2 is missing (next stored is 3)"), 1
    )  # fmt: skip


def test_an_export_line_round_trips_with_its_chain_fields() -> None:
    entry = chain(1)[0]
    line = json.loads(canonical_json(entry_json(entry)))
    assert set(line) == {"seq", "time_ms", "kind", "actor", "subject", "body", "prev_hash", "hash"}
    assert entry_from_json(line) == entry
    with pytest.raises(ValueError, match="lacks 'hash'"):
        entry_from_json({k: v for k, v in line.items() if k != "hash"})


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    env["SYSMONSTM_CONFIG"] = "/nonexistent/sysmonstm.toml"
    env["SYSMONSTM_WARM__URL"] = url
    env["SYSMONSTM_LOG__FORMAT"] = "json"
    return subprocess.run(
        [SYSMONSTM, "payments", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else None
    return ledger_url(request.param, tmp_path, dsn)


async def test_audit_verify_passes_clean_and_names_the_row_altered_in_the_database(
    url: str,
) -> None:
    """Done-when 5, on each backend."""
    async with opened_ledger(url) as ledger:
        await ledger.record([tx(n) for n in range(1, 6)], approve_all, "stripe-1")
    clean = cli(url, "verify")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "intact: 10 entries"
    # an insider edits the amount audited for event 3 (entry 5: its transaction entry)
    body = (await raw(url, "SELECT body FROM pay_audit WHERE seq = 5"))[0][0]
    assert json.loads(body)["amount_minor"] == 1000
    await raw(
        url,
        f"UPDATE pay_audit SET body = {ph(url, 1)} WHERE seq = 5",
        body.replace('"amount_minor":1000', '"amount_minor":10'),
    )
    broken = cli(url, "verify")
    assert broken.returncode == 1, broken.stderr
    assert broken.stdout.strip() == (
        "broken at entry 5: hash does not match the entry's content (altered)"
        " (4 entries before it hold)"
    )


async def test_an_export_carries_the_chain_and_is_itself_audited(url: str, tmp_path: Path) -> None:
    async with opened_ledger(url) as ledger:
        await ledger.record([tx(n) for n in range(1, 4)], approve_all, "stripe-1")
        times = [e.time_ms for e in await ledger.audit()]
    out = tmp_path / "audit.jsonl"
    done = cli(url, "export", "--from", str(min(times)), "--to", "now", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported 6 entries (seq 1..6) to {out}"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    checked = cli(url, "check", str(out))
    assert (checked.returncode, checked.stdout.strip()) == (0, "intact: 6 entries")
    async with opened_ledger(url) as ledger:
        last = (await ledger.audit())[-1]
        assert (last.seq, last.kind, last.subject) == (7, "audit_export", "audit")
        assert last.body["entries"] == 6
        assert await ledger.verify_audit() is None
    lines[3]["body"]["status"] = "refunded"
    out.write_text("".join(canonical_json(line) + "\n" for line in lines))
    tampered = cli(url, "check", str(out))
    assert tampered.returncode == 1
    assert tampered.stdout.startswith("broken at entry 4: hash does not match")
