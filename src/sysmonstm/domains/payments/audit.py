"""The audit trail's hash chain: canonical JSON, SHA-256 links, verification.

An entry's hash is ``sha256(prev_hash + canonical)`` (hex), where ``canonical`` is the UTF-8
JSON object ``{"actor", "body", "kind", "seq", "subject", "time_ms"}`` with keys sorted, no
whitespace and non-ASCII kept as is; the first entry's ``prev_hash`` is ``GENESIS``. Entries
are numbered from 1 without gaps, so a deleted entry breaks the chain as surely as an altered
one. The same functions serve the ledgers (append, verify) and an auditor re-checking an
export (``verify_entries`` over its JSON lines).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sysmonstm.domains.payments.ledger import Broken
from sysmonstm.domains.payments.model import AuditEntry

GENESIS = "0" * 64


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON (sorted keys, compact, no NaN); ``ValueError`` if it is not
    JSON-compatible."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON-compatible: {exc}") from exc


def entry_hash(
    prev_hash: str,
    seq: int,
    time_ms: int,
    kind: str,
    actor: str,
    subject: str,
    body: Mapping[str, object],
) -> str:
    """The hash an entry with these fields must carry."""
    canonical = canonical_json(
        {
            "actor": actor,
            "body": body,
            "kind": kind,
            "seq": seq,
            "subject": subject,
            "time_ms": time_ms,
        }
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def link(
    head: tuple[int, str],
    time_ms: int,
    kind: str,
    actor: str,
    subject: str,
    body: Mapping[str, object],
) -> AuditEntry:
    """The entry that follows ``head`` (``(seq, hash)`` of the last entry, ``(0, GENESIS)``
    for an empty log)."""
    seq, prev = head[0] + 1, head[1]
    digest = entry_hash(prev, seq, time_ms, kind, actor, subject, body)
    return AuditEntry(seq, time_ms, kind, actor, subject, body, prev, digest)


@dataclass
class ChainWalk:
    """A verification in progress, fed entries in ``seq`` order (page by page)."""

    expected_seq: int = 1
    prev_hash: str = GENESIS
    count: int = 0

    def check(self, entry: AuditEntry) -> Broken | None:
        """``Broken`` naming ``entry`` if it does not continue the chain walked so far."""
        if entry.seq != self.expected_seq:
            missing = self.expected_seq
            return Broken(missing, f"entry {missing} is missing (next stored is {entry.seq})")
        if entry.prev_hash != self.prev_hash:
            return Broken(entry.seq, "prev_hash does not match the previous entry's hash")
        try:
            digest = entry_hash(
                entry.prev_hash,
                entry.seq,
                entry.time_ms,
                entry.kind,
                entry.actor,
                entry.subject,
                entry.body,
            )
        except ValueError as exc:
            return Broken(entry.seq, f"body cannot be hashed: {exc}")
        if digest != entry.hash:
            return Broken(entry.seq, "hash does not match the entry's content (altered)")
        self.expected_seq += 1
        self.prev_hash = entry.hash
        self.count += 1
        return None


def verify_entries(entries: Iterable[AuditEntry]) -> tuple[Broken | None, int]:
    """Walk ``entries`` (from seq 1, in order): the first broken one, and how many held."""
    walk = ChainWalk()
    for entry in entries:
        broken = walk.check(entry)
        if broken is not None:
            return broken, walk.count
    return None, walk.count


def entry_json(entry: AuditEntry) -> dict[str, object]:
    """An entry as a JSON object with every chain field (one export line)."""
    return {
        "seq": entry.seq,
        "time_ms": entry.time_ms,
        "kind": entry.kind,
        "actor": entry.actor,
        "subject": entry.subject,
        "body": dict(entry.body),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def entry_from_json(obj: Mapping[str, object]) -> AuditEntry:
    """The entry an export line holds; ``ValueError`` if a field is missing or mistyped."""
    try:
        seq, time_ms = obj["seq"], obj["time_ms"]
        body = obj["body"]
        texts = [obj[k] for k in ("kind", "actor", "subject", "prev_hash", "hash")]
    except KeyError as exc:
        raise ValueError(f"audit line lacks {exc.args[0]!r}") from None
    if not isinstance(seq, int) or not isinstance(time_ms, int) or not isinstance(body, dict):
        raise ValueError("audit line: seq and time_ms must be integers, body an object")  # noqa: TRY004  # one error type for a bad line
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("audit line: kind, actor, subject, prev_hash, hash must be strings")
    kind, actor, subject, prev, digest = (str(t) for t in texts)
    return AuditEntry(seq, time_ms, kind, actor, subject, body, prev, digest)
