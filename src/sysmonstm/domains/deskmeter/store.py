"""The interval store: Deskmeter's warm tier seam (SQLite embedded, PostgreSQL in production).

It lives in the same database the warm tier's URL names (``sqlite:///…`` or
``postgresql://…``), in its own tables. Backends: ``store_sqlite.SqliteIntervals`` and
``store_pg.PgIntervals``, chosen by ``open_interval_store(url)``; both pass
``tests/conformance/test_intervals.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from sysmonstm.domains.deskmeter.model import (
    DeskBatch,
    DeskEvent,
    Interval,
    MachineInfo,
    SummaryBy,
    Total,
)


class Step(msgspec.Struct, frozen=True):
    """What one applied event did: the open interval after it, and the one it closed (a
    switch, or an event after a silence that had closed the previous interval)."""

    event: DeskEvent
    current: Interval
    closed: Interval | None


@dataclass(frozen=True, slots=True)
class Applied:
    """A batch that was new, with what each of its events did, in order."""

    batch: DeskBatch
    steps: tuple[Step, ...]


class IntervalStore(Protocol):
    """Intervals, daily rollups and per-machine watermarks, written exactly once."""

    async def open(self) -> None:
        """Connect and create or migrate the tables (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def apply(self, batches: Sequence[DeskBatch]) -> list[Applied]:
        """Apply the batches above their machine's watermark, in order, in one transaction:
        intervals (upserted by ``(machine, start_ms)``), daily rollups, watermark and last
        event time. Batches at or below the watermark change nothing and are left out of
        the result (replays are harmless)."""
        ...

    async def close_silent(self, now_ms: int) -> list[Interval]:
        """Close open intervals whose machine has been silent longer than its limit
        (``SILENCE_HEARTBEATS`` heartbeats + ``SILENCE_SLACK_MS``), at their last event.
        Returns the intervals closed."""
        ...

    async def stored_through(self, machine: str) -> int:
        """Highest batch sequence applied for ``machine`` (0 if none)."""
        ...

    async def machines(self) -> list[MachineInfo]: ...

    async def at(self, t_ms: int, machine: str | None = None) -> list[Interval]:
        """The interval covering ``t_ms`` on each machine (``start <= t < end``; an open
        interval covers up to its last event), one per machine at most."""
        ...

    async def intervals(
        self, from_ms: int, to_ms: int, machine: str | None = None, limit: int | None = None
    ) -> list[Interval]:
        """Intervals overlapping ``[from_ms, to_ms)``, clipped to it, by start then machine."""
        ...

    async def summary(
        self,
        from_ms: int,
        to_ms: int,
        by: SummaryBy,
        machine: str | None = None,
    ) -> list[Total]:
        """Totals over ``[from_ms, to_ms)`` grouped by ``by``, largest active time first.
        Whole local days come from the daily rollups, partial days from the intervals, so
        the cost does not grow with the number of intervals in a long range."""
        ...
