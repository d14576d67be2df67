"""The ledger over SQL, once for every backend (``ledger_sqlite``, ``ledger_pg``).

A backend supplies a ``Database``: connections that run ``?``-placeholder SQL (the dialect
both SQLite 3.35+ and PostgreSQL 14+ speak: ``ON CONFLICT``, ``RETURNING``), and *write*
transactions that are serialized across every process sharing the database (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock held to the commit). That serialization is
what keeps the audit chain's head single and the velocity count of ``record`` exact.

Tables (``ledger_sqlite`` / ``store.pg_schema`` migration 3): ``pay_transactions`` (one row
per event, ``UNIQUE (event_id)``), ``pay_decisions``, ``pay_reviews``, ``pay_lists``,
``pay_audit`` (the chain, body as canonical JSON text), ``pay_outbox`` (bus events to
publish; ``done_ms`` once published), ``pay_sources`` (each adapter's stored sequence).
"""

# ruff: noqa: S608  # SQL is assembled only from fixed column lists and placeholders

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Protocol, TypeVar

from sysmonstm.domains.payments import ledger_rows as rows
from sysmonstm.domains.payments.audit import ChainWalk, canonical_json, link
from sysmonstm.domains.payments.ledger import (
    Broken,
    Decider,
    OutboxEvent,
    Recorded,
    ReviewItem,
)
from sysmonstm.domains.payments.model import (
    Action,
    AuditEntry,
    ListEntry,
    ListKind,
    ListMode,
    Transaction,
    Verdict,
)
from sysmonstm.errors import InvalidInputError

T = TypeVar("T")
PAGE = 1000
LIST_CACHE = 1000  # allow/block entries a write transaction reads at once (more: one by one)
_IN_CHUNK = 500  # event ids per IN (...) list
_AUDIT_COLUMNS = "seq, time_ms, kind, actor, subject, body, prev_hash, hash"
_REVIEW_SELECT = (
    rows.RECORDED_SELECT + " LEFT JOIN pay_reviews r ON r.event_id = t.event_id"
).replace(
    " FROM pay_transactions", ", r.verdict, r.analyst, r.note, r.reviewed_ms FROM pay_transactions"
)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Sql(Protocol):
    """One connection inside one transaction; ``?`` placeholders."""

    async def execute(self, sql: str, *args: object) -> None: ...

    async def fetch(self, sql: str, *args: object) -> list[rows.Row]: ...

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        """``sql`` once per row of ``args`` (one prepared statement)."""
        ...


class Database(Protocol):
    """Where a ``SqlLedger`` keeps its tables. Foreign errors become ``BackendError``."""

    url: str

    async def open(self) -> None:
        """Connect and create or migrate the ledger tables."""
        ...

    async def close(self) -> None: ...

    def write(self, what: str) -> AbstractAsyncContextManager[Sql]:
        """A write transaction, serialized against every other one on the database."""
        ...

    async def in_write(
        self, what: str, body: Callable[[Sql], Awaitable[T]], *, durable: bool = True
    ) -> T:
        """``body`` run inside one write transaction (as ``write``), where the backend runs it
        cheapest: SQLite runs all of it on its writer thread, one hop instead of one per
        statement. ``durable=False``: a commit that a power cut may lose (no fsync of its
        own; the next durable commit carries it), for writes whose loss only repeats work."""
        ...

    def read(self, what: str) -> AbstractAsyncContextManager[Sql]:
        """A read of committed state."""
        ...


class _View:
    """The ``RiskView`` of a write transaction: sees the rows it has inserted.

    Lists cannot change during the transaction (their writes take the same lock), so a small
    list table (``LIST_CACHE`` entries at most) is read once per transaction and answered
    from memory: a transaction asks about eight values, most of them listed nowhere."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql
        self._lists: dict[tuple[str, str], ListMode] | None = None
        self._lists_read = False

    async def card_count(self, fingerprint: str, since_ms: int, until_ms: int) -> int:
        if not fingerprint:
            return 0
        found = await self._sql.fetch(
            "SELECT count(*) FROM (SELECT min(time_ms) AS first_ms FROM pay_transactions"
            " WHERE card_fingerprint = ? GROUP BY transaction_id) f"
            " WHERE first_ms > ? AND first_ms <= ?",
            fingerprint,
            since_ms,
            until_ms,
        )
        return int(found[0][0])

    async def listed(self, kind: ListKind, value: str) -> ListMode | None:
        if not self._lists_read:
            self._lists_read = True
            size = int((await self._sql.fetch("SELECT count(*) FROM pay_lists"))[0][0])
            if size <= LIST_CACHE:
                found = await self._sql.fetch("SELECT kind, value, mode FROM pay_lists")
                self._lists = {(str(k), str(v)): ListMode(m) for k, v, m in found}
        if self._lists is not None:
            return self._lists.get((kind.value, value))
        found = await self._sql.fetch(
            "SELECT mode FROM pay_lists WHERE kind = ? AND value = ?", kind.value, value
        )
        return ListMode(found[0][0]) if found else None


class _Chain:
    """Appends to the audit chain inside a write transaction (whose serialization makes
    the head read here the head)."""

    def __init__(self, sql: Sql, head: tuple[int, str]) -> None:
        self._sql = sql
        self._head = head
        self._rows: list[tuple[object, ...]] = []

    @classmethod
    async def at_head(cls, sql: Sql) -> _Chain:
        found = await sql.fetch("SELECT seq, hash FROM pay_audit ORDER BY seq DESC LIMIT 1")
        head = (int(found[0][0]), str(found[0][1])) if found else (0, "0" * 64)
        return cls(sql, head)

    async def append(
        self, time_ms: int, kind: str, actor: str, subject: str, body: Mapping[str, object]
    ) -> AuditEntry:
        entry = self.add(time_ms, kind, actor, subject, body)
        await self.flush()
        return entry

    def add(
        self, time_ms: int, kind: str, actor: str, subject: str, body: Mapping[str, object]
    ) -> AuditEntry:
        """The next entry, linked now, inserted by the next ``flush``."""
        entry = link(self._head, time_ms, kind, actor, subject, body)
        self._rows.append(
            (
                entry.seq,
                entry.time_ms,
                entry.kind,
                entry.actor,
                entry.subject,
                canonical_json(dict(entry.body)),
                entry.prev_hash,
                entry.hash,
            )
        )
        self._head = (entry.seq, entry.hash)
        return entry

    async def flush(self) -> None:
        if self._rows:
            await self._sql.executemany(
                f"INSERT INTO pay_audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._rows,
            )
            self._rows = []


async def _outbox_put(
    sql: Sql, topic: str, message_id: str, payload: Mapping[str, object] | str, now_ms: int
) -> int | None:
    """Put one event in the outbox (``payload`` as a mapping or its canonical JSON); its id,
    ``None`` when the message id was there already."""
    text = payload if isinstance(payload, str) else canonical_json(dict(payload))
    found = await sql.fetch(
        "INSERT INTO pay_outbox (topic, message_id, payload, created_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO NOTHING RETURNING id",
        topic,
        message_id,
        text,
        now_ms,
    )
    return int(found[0][0]) if found else None


async def _outbox_put_many(
    sql: Sql, found: list[tuple[object, ...]], payloads: Mapping[str, Mapping[str, object]]
) -> list[OutboxEvent]:
    """Put ``(topic, message_id, payload text, created_ms)`` rows in the outbox in one
    statement; the events as committed (message ids already there are left out). The ids
    above the largest before are this transaction's: outbox writers hold the write lock."""
    before = await sql.fetch("SELECT max(id) FROM pay_outbox")
    await sql.executemany(
        "INSERT INTO pay_outbox (topic, message_id, payload, created_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO NOTHING",
        found,
    )
    added = await sql.fetch(
        "SELECT id, topic, message_id FROM pay_outbox WHERE id > ? ORDER BY id",
        int(before[0][0] or 0),
    )
    return [
        OutboxEvent(int(i), str(topic), str(mid), payloads[str(mid).rsplit("/", 1)[0]])
        for i, topic, mid in added
    ]


def _audit_entry(row: rows.Row) -> AuditEntry:
    """A stored entry; a body that is no longer JSON is kept as text (it cannot verify)."""
    try:
        body = json.loads(row[5])
    except (TypeError, ValueError):
        body = {"unreadable": str(row[5])}
    if not isinstance(body, dict):
        body = {"unreadable": str(row[5])}
    seq, time_ms, kind, actor, subject = row[:5]
    return AuditEntry(int(seq), int(time_ms), kind, actor, subject, body, str(row[6]), str(row[7]))


class SqlLedger:
    """``Ledger`` over a ``Database`` (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        pii: rows.PiiCipher | None = None,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.db = db
        self.url = db.url
        self.pii: rows.PiiCipher = pii or rows.NoPii()
        self._now_ms = now_ms

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    # -- record ----------------------------------------------------------------------------

    async def record(
        self,
        txs: Sequence[Transaction],
        decide: Decider,
        actor: str,
        *,
        marks: Mapping[str, int] | None = None,
        outbox: list[OutboxEvent] | None = None,
    ) -> list[Recorded]:
        """See ``Ledger.record``. ``marks`` (source → sequence) advance the sources' stored
        sequences in the same transaction (``stored_through``). ``outbox``, when given,
        receives the outbox events this call committed, in order, for the caller to publish
        at once (``outbox.OutboxPublisher.offer``) rather than read them back.

        The whole transaction is one ``Database.in_write`` body (on SQLite: one hop to the
        writer thread, where ``decide`` runs too, on that thread's own event loop: a decider
        may await its view and plain coroutines, never a future of the caller's loop)."""
        now = self._now_ms()
        insert = (
            f"INSERT INTO pay_transactions ({', '.join(rows.TX_COLUMNS)})"
            f" VALUES ({', '.join('?' * len(rows.TX_COLUMNS))})"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )

        async def body(sql: Sql) -> tuple[list[Recorded], list[OutboxEvent]]:
            # each event's row goes in at once (the view of the next decision counts it);
            # its decision, audit links and outbox events go in together at the end, one
            # statement per table: nothing in this transaction reads them before
            out: list[Recorded] = []
            decided_rows: list[tuple[object, ...]] = []
            outbox_rows: list[tuple[object, ...]] = []
            payloads: dict[str, Mapping[str, object]] = {}
            chain: _Chain | None = None
            view = _View(sql)
            for tx in txs:
                if not await sql.fetch(insert, *rows.tx_row(tx, self.pii, now)):
                    continue  # stored before: its decision, audit and events exist
                decision = await decide(tx, view)
                if (decision.event_id, decision.transaction_id) != (
                    tx.event_id,
                    tx.transaction_id,
                ):
                    decision = replace(
                        decision, event_id=tx.event_id, transaction_id=tx.transaction_id
                    )
                decided_rows.append(rows.decision_row(decision))
                rec = Recorded(tx, decision)
                chain = chain or await _Chain.at_head(sql)
                chain.add(now, "transaction", actor, tx.event_id, rows.tx_payload(tx))
                decided = {"transaction_id": tx.transaction_id, **rows.decision_json(decision)}
                chain.add(now, "decision", "hub", tx.event_id, decided)
                text = canonical_json(rows.processed_payload(rec))
                for topic, message_id in (
                    ("transactions.processed", f"{tx.event_id}/processed"),
                    (f"risk.decision.{decision.action.label}", f"{tx.event_id}/decision"),
                ):
                    outbox_rows.append((topic, message_id, text, now))
                payloads[tx.event_id] = json.loads(text)  # what a read of the outbox gives
                out.append(rec)
            events: list[OutboxEvent] = []
            if out:
                assert chain is not None
                await sql.executemany(
                    "INSERT INTO pay_decisions (event_id, transaction_id, action, hits,"
                    " decided_ms, ruleset) VALUES (?, ?, ?, ?, ?, ?)",
                    decided_rows,
                )
                await chain.flush()
                events = await _outbox_put_many(sql, outbox_rows, payloads)
            for source, seq in (marks or {}).items():
                await sql.execute(
                    "INSERT INTO pay_sources (source, stored_through) VALUES (?, ?)"
                    " ON CONFLICT (source) DO UPDATE SET stored_through = CASE"
                    " WHEN excluded.stored_through > pay_sources.stored_through"
                    " THEN excluded.stored_through ELSE pay_sources.stored_through END",
                    source,
                    seq,
                )
            return out, events

        recorded, events = await self.db.in_write("record", body)
        if outbox is not None:
            outbox.extend(events)
        return recorded

    async def stored_through(self, source: str) -> int:
        """The highest sequence of ``source`` recorded with ``marks`` (0 if none)."""
        async with self.db.read("stored_through") as sql:
            found = await sql.fetch(
                "SELECT stored_through FROM pay_sources WHERE source = ?", source
            )
        return int(found[0][0]) if found else 0

    async def seen(self, event_ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        ids = list(dict.fromkeys(event_ids))
        async with self.db.read("seen") as sql:
            for i in range(0, len(ids), _IN_CHUNK):
                chunk = ids[i : i + _IN_CHUNK]
                found = await sql.fetch(
                    "SELECT event_id FROM pay_transactions WHERE event_id IN"
                    f" ({', '.join('?' * len(chunk))})",
                    *chunk,
                )
                out.update(str(r[0]) for r in found)
        return out

    # -- reads -----------------------------------------------------------------------------

    async def get(self, event_id: str) -> Recorded | None:
        async with self.db.read("get") as sql:
            found = await sql.fetch(rows.RECORDED_SELECT + " WHERE t.event_id = ?", event_id)
        return rows.recorded_from_row(found[0], self.pii) if found else None

    async def transactions(
        self,
        from_ms: int,
        to_ms: int,
        *,
        action: Action | None = None,
        card: str | None = None,
        limit: int = 1000,
        after_event: str | None = None,
    ) -> list[Recorded]:
        """Events with ``from_ms <= time < to_ms`` in (time, event id) order; ``after_event``
        continues a page after that event."""
        where = ["t.time_ms >= ?", "t.time_ms < ?"]
        args: list[object] = [from_ms, to_ms]
        if action is not None:
            where.append("d.action = ?")
            args.append(int(action))
        if card is not None:
            where.append("t.card_fingerprint = ?")
            args.append(card)
        async with self.db.read("transactions") as sql:
            if after_event is not None:
                at = await sql.fetch(
                    "SELECT time_ms FROM pay_transactions WHERE event_id = ?", after_event
                )
                if not at:
                    raise InvalidInputError(f"after: no event {after_event!r}", code="NOT_FOUND")
                where.append("(t.time_ms > ? OR (t.time_ms = ? AND t.event_id > ?))")
                args += [int(at[0][0]), int(at[0][0]), after_event]
            found = await sql.fetch(
                rows.RECORDED_SELECT
                + " WHERE "
                + " AND ".join(where)
                + " ORDER BY t.time_ms, t.event_id LIMIT ?",
                *args,
                max(0, limit),
            )
        return [rows.recorded_from_row(r, self.pii) for r in found]

    async def review_queue(self, limit: int = 100) -> list[ReviewItem]:
        async with self.db.read("review queue") as sql:
            found = await sql.fetch(
                _REVIEW_SELECT + " WHERE d.action = ? AND r.event_id IS NULL"
                " ORDER BY d.decided_ms, t.event_id LIMIT ?",
                int(Action.REVIEW),
                max(0, limit),
            )
        return [rows.review_from_row(r, self.pii) for r in found]

    # -- reviews ---------------------------------------------------------------------------

    async def resolve_review(
        self, event_id: str, verdict: Verdict, analyst: str, note: str, now_ms: int
    ) -> ReviewItem:
        """See ``Ledger.resolve_review``. ``InvalidInputError`` with code ``NOT_FOUND`` for an
        unknown event, ``FAILED_PRECONDITION`` for one not sent for review or answered."""
        async with self.db.write("resolve review") as sql:
            found = await sql.fetch(_REVIEW_SELECT + " WHERE t.event_id = ?", event_id)
            if not found:
                raise InvalidInputError(f"no transaction event {event_id!r}", code="NOT_FOUND")
            item = rows.review_from_row(found[0], self.pii)
            if item.decision.action is not Action.REVIEW:
                raise InvalidInputError(
                    f"{event_id!r} was decided {item.decision.action.label}, not sent for review",
                    code="FAILED_PRECONDITION",
                )
            if item.verdict is not None:
                raise InvalidInputError(
                    f"{event_id!r} was already answered {item.verdict.value} by {item.analyst}",
                    code="FAILED_PRECONDITION",
                )
            await sql.execute(
                "INSERT INTO pay_reviews (event_id, verdict, analyst, note, reviewed_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                event_id,
                verdict.value,
                analyst,
                note,
                now_ms,
            )
            item = replace(item, verdict=verdict, analyst=analyst, note=note, reviewed_ms=now_ms)
            chain = await _Chain.at_head(sql)
            body = {"verdict": verdict.value, "note": note, "was": item.decision.action.label}
            await chain.append(now_ms, "review", analyst, event_id, body)
            await _outbox_put(
                sql,
                f"payments.review.{verdict.value}",
                f"{event_id}/review",
                rows.review_payload(item),
                now_ms,
            )
        return item

    # -- lists -----------------------------------------------------------------------------

    async def list_entries(self) -> list[ListEntry]:
        async with self.db.read("list entries") as sql:
            found = await sql.fetch(
                "SELECT mode, kind, value, note, added_by, added_ms FROM pay_lists"
                " ORDER BY kind, value"
            )
        return [
            ListEntry(ListMode(r[0]), ListKind(r[1]), r[2], r[3], r[4], int(r[5])) for r in found
        ]

    async def set_list_entry(self, entry: ListEntry, actor: str) -> None:
        """Put ``value`` of ``kind`` on the allow or block list (one list per value: setting
        it on one takes it off the other); audited."""
        now = entry.added_ms or self._now_ms()
        async with self.db.write("set list entry") as sql:
            await sql.execute(
                "INSERT INTO pay_lists (kind, value, mode, note, added_by, added_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, value) DO UPDATE SET"
                " mode = excluded.mode, note = excluded.note, added_by = excluded.added_by,"
                " added_ms = excluded.added_ms",
                entry.kind.value,
                entry.value,
                entry.mode.value,
                entry.note,
                entry.added_by or actor,
                now,
            )
            body = {"op": "set", "mode": entry.mode.value, "kind": entry.kind.value,
                    "note": entry.note}  # fmt: skip
            await (await _Chain.at_head(sql)).append(now, "list", actor, entry.value, body)

    async def remove_list_entry(
        self, mode: ListMode, kind: ListKind, value: str, actor: str
    ) -> bool:
        now = self._now_ms()
        async with self.db.write("remove list entry") as sql:
            gone = await sql.fetch(
                "DELETE FROM pay_lists WHERE mode = ? AND kind = ? AND value = ? RETURNING value",
                mode.value,
                kind.value,
                value,
            )
            if gone:
                body = {"op": "remove", "mode": mode.value, "kind": kind.value}
                await (await _Chain.at_head(sql)).append(now, "list", actor, value, body)
        return bool(gone)

    # -- audit -----------------------------------------------------------------------------

    async def audit(self, from_seq: int = 1, limit: int = 1000) -> list[AuditEntry]:
        async with self.db.read("audit") as sql:
            found = await sql.fetch(
                f"SELECT {_AUDIT_COLUMNS} FROM pay_audit WHERE seq >= ? ORDER BY seq LIMIT ?",
                from_seq,
                max(0, limit),
            )
        return [_audit_entry(r) for r in found]

    async def append_audit(
        self, kind: str, actor: str, subject: str, body: Mapping[str, object], now_ms: int
    ) -> AuditEntry:
        canonical_json(dict(body))  # refuse a body that cannot be hashed before writing
        async with self.db.write("append audit") as sql:
            return await (await _Chain.at_head(sql)).append(now_ms, kind, actor, subject, body)

    async def verify_audit(self) -> Broken | None:
        broken, _ = await self.verify_audit_count()
        return broken

    async def verify_audit_count(self) -> tuple[Broken | None, int]:
        """``verify_audit`` and how many entries held."""
        walk = ChainWalk()
        while True:
            page = await self.audit(walk.expected_seq, PAGE)
            for entry in page:
                broken = walk.check(entry)
                if broken is not None:
                    return broken, walk.count
            if len(page) < PAGE:
                return None, walk.count

    # -- outbox ----------------------------------------------------------------------------

    async def outbox(self, limit: int = 1000) -> list[OutboxEvent]:
        """Events not yet published, oldest first."""
        async with self.db.read("outbox") as sql:
            found = await sql.fetch(
                "SELECT id, topic, message_id, payload FROM pay_outbox WHERE done_ms IS NULL"
                " ORDER BY id LIMIT ?",
                max(0, limit),
            )
        return [rows.outbox_from_row(r) for r in found]

    async def outbox_done(self, ids: Sequence[int]) -> None:
        """Mark published; kept (with the time) for inspection. Not durable on its own: see
        ``Database.in_write``."""
        if not ids:
            return
        now = self._now_ms()

        async def body(sql: Sql) -> None:
            for i in range(0, len(ids), _IN_CHUNK):
                chunk = list(ids[i : i + _IN_CHUNK])
                await sql.execute(
                    f"UPDATE pay_outbox SET done_ms = ? WHERE id IN ({', '.join('?' * len(chunk))})"
                    " AND done_ms IS NULL",
                    now,
                    *chunk,
                )

        # a mark lost to a power cut only publishes its event again (at least once, with a
        # stable id): no fsync of its own; the next durable commit makes it durable too
        await self.db.in_write("outbox done", body, durable=False)
