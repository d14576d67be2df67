"""The interval store on PostgreSQL 14+ (asyncpg), in the warm tier's database.

``postgresql://…`` (or ``postgres://``), the same URL as the warm tier; ``open`` applies the
pending schema migrations (the Deskmeter tables are migration 2 of ``store.pg_schema``).
Each ``apply`` and ``close_silent`` is one transaction that locks the machines it touches,
so several aggregators may share the database. Foreign errors become ``BackendError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sysmonstm.domains.deskmeter import pg_intervals_read as read
from sysmonstm.domains.deskmeter.model import DeskBatch, Interval, MachineInfo, SummaryBy, Total
from sysmonstm.domains.deskmeter.pg_intervals_write import close_silent, load_states, write_plan
from sysmonstm.domains.deskmeter.plan import plan_apply
from sysmonstm.domains.deskmeter.store import Applied
from sysmonstm.store.pg_store import PgStore


class PgIntervals(PgStore):
    """Intervals, rollups and watermarks in one PostgreSQL database."""

    async def apply(self, batches: Sequence[DeskBatch]) -> list[Applied]:
        """See ``IntervalStore.apply``; ``ValueError`` (nothing written) for an event older
        than its machine's last one."""
        if not batches:
            return []
        async with self.db.tx("apply intervals") as conn:
            states, ids = await load_states(conn, batches)
            plan = plan_apply(states, batches)
            await write_plan(conn, plan, ids)
        return plan.applied

    async def close_silent(self, now_ms: int) -> list[Interval]:
        async with self.db.tx("close silent intervals") as conn:
            return await close_silent(conn, now_ms)

    async def stored_through(self, machine: str) -> int:
        async with self.db.tx("stored_through", readonly=True) as conn:
            return await read.stored_through(conn, machine)

    async def machines(self) -> list[MachineInfo]:
        async with self.db.tx("machines", readonly=True) as conn:
            return await read.machines(conn)

    async def at(self, t_ms: int, machine: str | None = None) -> list[Interval]:
        async with self.db.tx("at", readonly=True) as conn:
            return await read.at(conn, t_ms, machine)

    async def intervals(
        self, from_ms: int, to_ms: int, machine: str | None = None, limit: int | None = None
    ) -> list[Interval]:
        async with self.db.tx("intervals", readonly=True) as conn:
            return await read.intervals(conn, from_ms, to_ms, machine, limit)

    async def summary(
        self, from_ms: int, to_ms: int, by: SummaryBy, machine: str | None = None
    ) -> list[Total]:
        async with self.db.tx("summary", readonly=True, isolation="repeatable_read") as conn:
            return await read.summary(conn, from_ms, to_ms, by, machine)
