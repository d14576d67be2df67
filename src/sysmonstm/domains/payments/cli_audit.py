"""``sysmonstm payments audit verify | export | check``: the audit trail from the command line.

``verify`` walks the chain in the ledger (the warm tier's database; no running service
needed): exit 0 and ``intact: N entries``, or exit 1 naming the first broken entry and why.
``export`` writes the entries of a time range as JSON lines with every chain field (seq,
time_ms, kind, actor, subject, body, prev_hash, hash) and records the export in the trail
itself; ``check`` re-verifies such a file without the database (its links from its first
line, whose ``prev_hash`` the auditor compares with the entry before it).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from sysmonstm.cli_payments import payments_app
from sysmonstm.errors import SysmonstmError

if TYPE_CHECKING:
    from sysmonstm.config import Settings
    from sysmonstm.domains.payments.ledger import Broken
    from sysmonstm.domains.payments.ledger_sql import SqlLedger

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
payments_app.add_typer(audit_app, name="audit")

_err = Console(stderr=True, highlight=False)
PAGE = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _with_ledger(settings: Settings) -> SqlLedger:
    from sysmonstm.domains.payments.ledgers import open_ledger

    ledger = open_ledger(settings.warm.url)  # the chain holds no sealed field: no key needed
    try:
        await ledger.open()
    except BaseException:
        await ledger.close()
        raise
    return ledger


async def run_verify(settings: Settings) -> tuple[Broken | None, int]:
    ledger = await _with_ledger(settings)
    try:
        return await ledger.verify_audit_count()
    finally:
        await ledger.close()


async def run_export(
    settings: Settings, from_ms: int, to_ms: int, out: Path
) -> tuple[int, int, int]:
    """Write the entries with ``from_ms <= time_ms < to_ms``; (count, first seq, last seq)."""
    from sysmonstm.domains.payments.audit import canonical_json, entry_json

    ledger = await _with_ledger(settings)
    try:
        count, first, last, seq = 0, 0, 0, 1
        with out.open("w", encoding="utf-8") as sink:
            while page := await ledger.audit(seq, PAGE):
                for entry in page:
                    if from_ms <= entry.time_ms < to_ms:
                        sink.write(canonical_json(entry_json(entry)) + "\n")
                        count += 1
                        first = first or entry.seq
                        last = entry.seq
                seq = page[-1].seq + 1
        body = {"from_ms": from_ms, "to_ms": to_ms, "entries": count, "first_seq": first,
                "last_seq": last, "file": out.name}  # fmt: skip
        await ledger.append_audit("audit_export", getpass.getuser(), "audit", body, _now_ms())
        return count, first, last
    finally:
        await ledger.close()


def check_file(path: Path) -> tuple[Broken | None, int]:
    """Verify an export's links and hashes from its first line on."""
    from sysmonstm.domains.payments.audit import ChainWalk, entry_from_json
    from sysmonstm.domains.payments.ledger import Broken

    walk: ChainWalk | None = None
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            try:
                entry = entry_from_json(json.loads(line))
            except ValueError as exc:
                return Broken(0, f"line {n}: {exc}"), walk.count if walk else 0
            if walk is None:
                walk = ChainWalk(expected_seq=entry.seq, prev_hash=entry.prev_hash)
            broken = walk.check(entry)
            if broken is not None:
                return broken, walk.count
    return None, walk.count if walk else 0


def _report(broken: Broken | None, count: int) -> None:
    if broken is None:
        typer.echo(f"intact: {count} entries")
        return
    typer.echo(f"broken at entry {broken.seq}: {broken.reason} ({count} entries before it hold)")
    raise typer.Exit(1)


def _fail(exc: SysmonstmError) -> typer.Exit:
    _err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


@audit_app.command("verify")
def verify() -> None:
    """Prove the chain in the ledger intact (exit 0), or name the first broken entry (exit 1)."""
    from sysmonstm.cli import _settings

    try:
        broken, count = asyncio.run(run_verify(_settings()))
    except SysmonstmError as exc:
        raise _fail(exc) from exc
    _report(broken, count)


@audit_app.command("export")
def export(
    output: Annotated[Path, typer.Option("-o", "--output", help="JSON lines file to write.")],
    from_: Annotated[
        str, typer.Option("--from", help="Start (Unix ms, ISO 8601, now, -7d…).")
    ] = "0",
    to: Annotated[str, typer.Option("--to", help="End, exclusive.")] = "now",
) -> None:
    """Write the audit entries of a time range with their chain fields, for auditors; the
    export is itself recorded in the trail."""
    from sysmonstm.cli import _settings
    from sysmonstm.gateway.timeparse import parse_time

    now = _now_ms()
    try:
        from_ms = parse_time(from_, now, name="--from")
        to_ms = parse_time(to, now + 1, name="--to")
        count, first, last = asyncio.run(run_export(_settings(), from_ms, to_ms, output))
    except (SysmonstmError, OSError) as exc:
        raise _fail(SysmonstmError(str(exc))) from exc
    span = f" (seq {first}..{last})" if count else ""
    typer.echo(f"exported {count} entries{span} to {output}")


@audit_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="A file written by `audit export`.")],
) -> None:
    """Re-verify an export without the database: its links and hashes from its first line."""
    try:
        broken, count = check_file(file)
    except OSError as exc:
        raise _fail(SysmonstmError(str(exc))) from exc
    _report(broken, count)
