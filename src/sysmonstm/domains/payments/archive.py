"""The payment hub's archive: closed months of the audit log and of the ledger, past the warm
retention, kept as Parquet in the core's archive (its object store: a folder or S3), verified,
and kept 12 months at least; read back for audit exports.

Layout under the archive's root, beside the metrics partitions (which live under ``raw/``,
``m1/``, ``h1/`` and never see these)::

    payments/audit/audit_202612.json                   manifest, written last
    payments/audit/audit_202612/00000-3fa9c0d1e2b4.parquet
    payments/ledger/ledger_202612.json ...

A month counts as archived once its manifest exists; the manifest is written only after every
part was uploaded and read back (size, sha256, rows, content checksum: the core's
``archive_parquet.check_part``). A rerun keeps a month whose archived content equals the
warm one and refuses to overwrite one that differs (``Status.CONFLICT``): the archive is the
auditors' copy, and a month that changed after it closed is a finding, not an update.

The warm rows stay where they are: the ``Ledger`` seam has no prune, and ``audit verify``
walks the chain from its first entry.
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pyarrow as pa
import structlog

from sysmonstm.domains.payments.archive_rows import (
    AUDIT_SCHEMA,
    LEDGER_SCHEMA,
    audit_entries,
    audit_table,
    ledger_table,
)
from sysmonstm.domains.payments.audit import ChainWalk
from sysmonstm.domains.payments.ledger import Broken, Ledger, Recorded
from sysmonstm.domains.payments.model import AuditEntry
from sysmonstm.errors import ConfigError, SysmonstmError
from sysmonstm.store.archive import (
    ArchiveCorruptError,
    ObjectMissingError,
    ObjectStore,
    Part,
)
from sysmonstm.store.archive_parquet import (
    ContentHash,
    check_part,
    content_checksum,
    read_whole,
    write_part,
)

log = structlog.get_logger(__name__)

ROOT = "payments"
KINDS = ("audit", "ledger")
MIN_KEEP_MONTHS = 12  # the retention compliance asks of the audit log
_PAGE = 1000
FORMAT = 1


class Status(enum.StrEnum):
    ARCHIVED = "archived"  # written, read back, verified, committed
    KEPT = "kept"  # already archived with the same content (verified again)
    CONFLICT = "conflict"  # archived content differs from the warm rows: left as it was
    FAILED = "failed"  # nothing committed; the next run tries again


class PaymentsManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One archived month of ``kind`` (audit | ledger): ``start_ms`` .. ``end_ms`` (UTC month),
    its parts in order, the content checksum over all of them. ``first_seq``/``last_seq``
    bound an audit month (0 for the ledger)."""

    name: str
    kind: str
    start_ms: int
    end_ms: int
    rows: int
    checksum: str
    bytes: int
    parts: tuple[Part, ...]
    archived_ms: int
    first_seq: int = 0
    last_seq: int = 0
    format: int = FORMAT

    def to_json(self) -> builtins.bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=1)


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    status: Status
    rows: int = 0
    error: str = ""


def month_start(ms: int) -> int:
    """The first instant (Unix ms) of the UTC month holding ``ms``."""
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1000)


def next_month(start_ms: int) -> int:
    d = datetime.fromtimestamp(start_ms / 1000, UTC)
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return int(datetime(y, m, 1, tzinfo=UTC).timestamp() * 1000)


def month_name(kind: str, start_ms: int) -> str:
    return f"{kind}_{datetime.fromtimestamp(start_ms / 1000, UTC):%Y%m}"


def manifest_key(kind: str, name: str) -> str:
    return f"{ROOT}/{kind}/{name}.json"


def _schema(kind: str) -> pa.Schema:
    return AUDIT_SCHEMA if kind == "audit" else LEDGER_SCHEMA


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class PaymentsArchiver:
    """Archives the months of ``ledger`` that ended ``retention_ms`` or more before now into
    ``store`` (see the module doc)."""

    def __init__(
        self,
        ledger: Ledger,
        store: ObjectStore,
        retention_ms: int,
        *,
        now_ms: Callable[[], int] = _wall_ms,
        workdir: Path | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.retention_ms = retention_ms
        self._now_ms = now_ms
        self.workdir = workdir

    async def run(self) -> list[Outcome]:
        """Archive every due month of the audit log and the ledger; failures are logged and
        reported in the outcomes, never raised."""
        cutoff = month_start(self._now_ms() - self.retention_ms)  # months before it are due
        outcomes: list[Outcome] = []
        audit_months = await self._audit_months(cutoff)
        for start, entries in sorted(audit_months.items()):
            outcomes.append(await self._guarded("audit", start, audit_table(entries), entries))
        for start, rows in sorted((await self._ledger_months(cutoff)).items()):
            outcomes.append(await self._guarded("ledger", start, ledger_table(rows), []))
        return outcomes

    async def _audit_months(self, cutoff: int) -> dict[int, list[AuditEntry]]:
        """Audit entries before ``cutoff``, by month (the log is read from its start until the
        first entry at or past the cutoff: entries are appended in time order)."""
        months: dict[int, list[AuditEntry]] = {}
        seq = 1
        while True:
            page = await self.ledger.audit(seq, _PAGE)
            for entry in page:
                if entry.time_ms >= cutoff:
                    return months
                months.setdefault(month_start(entry.time_ms), []).append(entry)
            if len(page) < _PAGE:
                return months
            seq = page[-1].seq + 1

    async def _ledger_months(self, cutoff: int) -> dict[int, list[Recorded]]:
        """Ledger rows whose transaction time is before ``cutoff``, by month (months without
        a row are not archived: there is nothing to keep)."""
        months: dict[int, list[Recorded]] = {}
        after: str | None = None
        while True:
            page = await self.ledger.transactions(0, cutoff, limit=_PAGE, after_event=after)
            for rec in page:
                months.setdefault(month_start(rec.tx.time_ms), []).append(rec)
            if len(page) < _PAGE:
                return months
            after = page[-1].tx.event_id

    async def _guarded(
        self, kind: str, start: int, table: pa.Table, entries: list[AuditEntry]
    ) -> Outcome:
        name = month_name(kind, start)
        try:
            outcome = await self.archive_month(kind, start, table, entries)
        except (SysmonstmError, OSError, pa.ArrowException) as exc:
            log.error("payments archiving failed", partition=name, error=str(exc))
            return Outcome(name, Status.FAILED, error=str(exc))
        log.info(
            "payments month archived", partition=name, status=str(outcome.status), rows=outcome.rows
        )
        return outcome

    async def archive_month(
        self, kind: str, start: int, table: pa.Table, entries: list[AuditEntry]
    ) -> Outcome:
        """Write, read back, verify and commit one month (or keep the copy already there)."""
        name = month_name(kind, start)
        existing = await read_manifest(self.store, kind, name)
        checksum = await asyncio.to_thread(content_checksum, table)
        if existing is not None:
            if existing.rows == table.num_rows and existing.checksum == checksum:
                await verify_month(self.store, existing)
                return Outcome(name, Status.KEPT, existing.rows)
            log.error("archived month differs from the warm rows", partition=name)
            return Outcome(
                name,
                Status.CONFLICT,
                existing.rows,
                "archived content differs from the warm rows; left unchanged",
            )
        parts: list[Part] = []
        with tempfile.TemporaryDirectory(prefix="sysmonstm-payarch-", dir=self.workdir) as tmp:
            path = Path(tmp) / "00000.parquet"
            sha, size = await asyncio.to_thread(write_part, table, path, {})
            key = f"{ROOT}/{kind}/{name}/00000-{sha[:12]}.parquet"
            await self.store.put_file(key, path)
            parts.append(Part(key, table.num_rows, size, sha, checksum, (ROOT, kind), (ROOT, kind)))
        manifest = PaymentsManifest(
            name=name,
            kind=kind,
            start_ms=start,
            end_ms=next_month(start),
            rows=table.num_rows,
            checksum=checksum,
            bytes=sum(p.bytes for p in parts),
            parts=tuple(parts),
            archived_ms=self._now_ms(),
            first_seq=entries[0].seq if entries else 0,
            last_seq=entries[-1].seq if entries else 0,
        )
        await verify_month(self.store, manifest)
        await self.store.put_bytes(manifest_key(kind, name), manifest.to_json())
        return Outcome(name, Status.ARCHIVED, manifest.rows)


async def read_manifest(store: ObjectStore, kind: str, name: str) -> PaymentsManifest | None:
    key = manifest_key(kind, name)
    try:
        data = await store.get_bytes(key)
    except ObjectMissingError:
        return None
    try:
        return msgspec.json.decode(data, type=PaymentsManifest)
    except msgspec.DecodeError as exc:
        raise ArchiveCorruptError(f"{key}: not a payments manifest: {exc}") from exc


async def manifests(store: ObjectStore, kind: str) -> list[PaymentsManifest]:
    """Every archived month of ``kind``, oldest first."""
    found = []
    for info in await store.list(f"{ROOT}/{kind}/", recursive=False):
        if info.key.endswith(".json"):
            name = info.key.rsplit("/", 1)[1][: -len(".json")]
            m = await read_manifest(store, kind, name)
            if m is not None:
                found.append(m)
    return sorted(found, key=lambda m: m.start_ms)


async def verify_month(store: ObjectStore, manifest: PaymentsManifest) -> None:
    """Read every part back and check size, sha256, rows and content checksum, and the
    month's; ``ArchiveCorruptError`` (or ``ObjectMissingError``) on the first difference."""
    schema = _schema(manifest.kind)
    whole = ContentHash(schema)
    with tempfile.TemporaryDirectory(prefix="sysmonstm-payverify-") as tmp:
        for i, part in enumerate(manifest.parts):
            local = Path(tmp) / f"{i:05d}.parquet"
            await store.get_file(part.key, local)
            await asyncio.to_thread(check_part, local, part, schema, whole)
    if whole.rows != manifest.rows or whole.hexdigest() != manifest.checksum:
        raise ArchiveCorruptError(f"{manifest.name}: content differs from what was archived")


async def read_month(store: ObjectStore, manifest: PaymentsManifest) -> pa.Table:
    """Every row of an archived month, verified against its manifest."""
    with tempfile.TemporaryDirectory(prefix="sysmonstm-payread-") as tmp:
        paths = []
        for i, part in enumerate(manifest.parts):
            paths.append(Path(tmp) / f"{i:05d}.parquet")
            await store.get_file(part.key, paths[-1])
        table = await asyncio.to_thread(read_whole, paths, _schema(manifest.kind))
    checksum = await asyncio.to_thread(content_checksum, table)
    if table.num_rows != manifest.rows or checksum != manifest.checksum:
        raise ArchiveCorruptError(f"{manifest.name}: content differs from what was archived")
    return table


async def read_audit(store: ObjectStore, from_ms: int, to_ms: int) -> list[AuditEntry]:
    """Archived audit entries with ``from_ms <= time_ms < to_ms``, in ``seq`` order (for an
    export: ``audit.entry_json`` of each)."""
    found: list[AuditEntry] = []
    for m in await manifests(store, "audit"):
        if m.start_ms < to_ms and m.end_ms > from_ms:
            entries = audit_entries(await read_month(store, m))
            found += [e for e in entries if from_ms <= e.time_ms < to_ms]
    return sorted(found, key=lambda e: e.seq)


def verify_archived(entries: list[AuditEntry]) -> Broken | None:
    """Whether consecutive archived entries (``seq`` order, any starting point) still chain:
    each links to the one before and carries the hash of its own content."""
    if not entries:
        return None
    walk = ChainWalk(expected_seq=entries[0].seq, prev_hash=entries[0].prev_hash)
    for entry in entries:
        broken = walk.check(entry)
        if broken is not None:
            return broken
    return None


async def expire(store: ObjectStore, now_ms: int, keep_months: int) -> list[str]:
    """Delete archived months that ended more than ``keep_months`` months before ``now_ms``;
    ``ConfigError`` for fewer than 12 months. Returns the names deleted."""
    if keep_months < MIN_KEEP_MONTHS:
        raise ConfigError(f"the archive keeps at least {MIN_KEEP_MONTHS} months, not {keep_months}")
    limit = month_start(now_ms)
    for _ in range(keep_months):
        limit = month_start(limit - 1)
    gone = []
    for kind in KINDS:
        for m in await manifests(store, kind):
            if m.end_ms <= limit:
                await store.delete([manifest_key(kind, m.name)])
                await store.delete([p.key for p in m.parts])
                gone.append(m.name)
    return gone
