"""The hot tier seam: the latest value of every series and the last few minutes, and the
same for domain documents (the current state of a thing, its recent events)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import msgspec

from sysmonstm.store.model import LatestValue, SeriesBatch, SeriesPoints, SourceState


class LatestPoint(msgspec.Struct, frozen=True, gc=False):
    """A series' newest sample: its time (Unix ms) and value; JSON ``{"t": ..., "v": ...}``.

    Not tracked by the garbage collector: a fleet's latest values are thousands of these,
    which as tuples or dicts would set off a collection every few hundred and now and then a
    full one over the whole heap (tens of ms in a gateway)."""

    t: int
    v: float


@dataclass(frozen=True, slots=True)
class HotDocument:
    """A domain's JSON document in the hot tier.

    ``key`` names what it is about (a machine, an account), ``time_ms`` orders documents of
    one key, ``body`` is JSON-compatible (read back as JSON decodes it: lists, not tuples).
    """

    key: str
    time_ms: int
    body: Mapping[str, object]


@runtime_checkable
class HotTier(Protocol):
    """Current state, in memory or Redis. Losing it loses no history (the warm tier has it).

    ``window_ms`` is how far back ``recent`` reaches (5 minutes by default).
    """

    url: str
    window_ms: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, batches: Sequence[SeriesBatch]) -> None:
        """Take stored batches; older samples than a series' latest are kept in the window
        but never replace its latest value."""
        ...

    async def sources(self, domain: str) -> list[SourceState]:
        """Sources seen within the window or since start, most recently seen first."""
        ...

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        """The newest value of each series of a source (empty if unknown)."""
        ...

    async def latest_values(
        self, domain: str, source_ids: Sequence[str]
    ) -> dict[str, dict[str, LatestPoint]]:
        """``latest`` of many sources in one read, as ``{source: {series: point}}``;
        sources the tier does not know are left out. What a fleet overview reads: one round
        trip for the fleet."""
        ...

    async def recent(self, domain: str, source_id: str, series: str, since_ms: int) -> SeriesPoints:
        """Raw points of one series from ``since_ms`` on, oldest first."""
        ...

    async def put_states(self, domain: str, docs: Sequence[HotDocument]) -> None:
        """Make each document the current state of its ``(domain, key)``, unless the state
        held is newer (a late document never replaces a newer one; an equal time does).
        A state is kept while its domain writes states at least once per day."""
        ...

    async def states(self, domain: str) -> list[HotDocument]:
        """The current state of every key of ``domain``, most recent first (then by key)."""
        ...

    async def add_recent(self, domain: str, docs: Sequence[HotDocument]) -> None:
        """Add to ``domain``'s time-ordered list of recent documents, kept for the window.
        Documents already out of the window are not kept; adding a document equal to one
        held (same key, time and body) changes nothing, so a replay is harmless."""
        ...

    async def recent_docs(self, domain: str, since_ms: int) -> list[HotDocument]:
        """The recent documents of ``domain`` from ``since_ms`` on (and within the window),
        oldest first."""
        ...

    async def remember(self, domain: str, keys: Sequence[str], ttl_ms: int) -> None:
        """Mark ``keys`` of ``domain`` as seen for ``ttl_ms`` (a fast duplicate check that
        every process sharing the hot tier sees; marking again restarts the time)."""
        ...

    async def known(self, domain: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are marked and not expired."""
        ...
