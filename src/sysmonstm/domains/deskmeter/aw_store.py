"""ActivityWatch's buckets and events, kept as ActivityWatch keeps them (the ``/api/0`` seam).

Values follow aw-server's storage exactly: event timestamps in UTC at millisecond resolution
(aw-core truncates them), durations at microsecond resolution (a ``timedelta``; negative ones
are kept), ``data`` any JSON object. The tables live in the database the warm tier's URL
names (``aw_meta``, ``aw_buckets``, ``aw_events``); backends ``aw_sqlite.SqliteAw`` and
``aw_pg.PgAw``, chosen by ``open_aw_store(url)``; both pass ``tests/deskmeter/test_aw_store.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from sysmonstm.errors import SysmonstmError
from sysmonstm.schemes import by_scheme

if TYPE_CHECKING:
    from sysmonstm.runtime import Core

AW_STORE = "deskmeter.aw"
#: aw-server's range reads skip events that start more than a day before ``start`` (its
#: index-friendly prefilter, which assumes no event lasts longer); we answer the same
PREFILTER_US = 24 * 3600 * 1_000_000


class NoSuchBucketError(SysmonstmError):
    """The bucket named does not exist (``/api/0`` answers 404)."""

    def __init__(self, bucket_id: str) -> None:
        super().__init__(f"There's no bucket named {bucket_id}")
        self.bucket_id = bucket_id


@dataclass(frozen=True, slots=True)
class AwEvent:
    """One ActivityWatch event. ``id`` is None until stored."""

    timestamp_ms: int  # UTC Unix milliseconds
    duration_us: int  # microseconds, may be negative
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def timestamp_us(self) -> int:
        return self.timestamp_ms * 1000

    @property
    def end_us(self) -> int:
        return self.timestamp_ms * 1000 + self.duration_us

    def with_id(self, event_id: int | None) -> AwEvent:
        return replace(self, id=event_id)


@dataclass(frozen=True, slots=True)
class AwBucket:
    """A bucket's metadata; ``last_updated_us`` (end of its latest event) only in listings."""

    id: str
    type: str
    client: str
    hostname: str
    created_us: int  # UTC Unix microseconds
    name: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    last_updated_us: int | None = None


@dataclass(frozen=True, slots=True)
class AwBucketExport:
    """A bucket with all its events (newest first), as an export holds it."""

    bucket: AwBucket
    events: tuple[AwEvent, ...]


@dataclass(frozen=True, slots=True)
class AwRange:
    """A range read: ``limit`` < 0 means no limit; bounds in UTC microseconds, inclusive.

    Events overlapping ``[start_us, end_us]`` count (starting at or before ``end_us`` and
    ending at or after ``start_us``); ``trim`` cuts the returned events to the range."""

    limit: int = -1
    start_us: int | None = None
    end_us: int | None = None
    trim: bool = True


@dataclass(frozen=True, slots=True)
class Bounds:
    """A range as column bounds (None: unbounded): ``ts_ms >= min_ts_ms`` (aw-server's one-day
    prefilter), ``ts_ms * 1000 + dur_us >= min_end_us`` and ``ts_ms <= max_ts_ms``."""

    min_ts_ms: int | None
    min_end_us: int | None
    max_ts_ms: int | None

    @classmethod
    def of(cls, query: AwRange) -> Bounds:
        start, end = query.start_us, query.end_us
        return cls(
            None if start is None else -(-(start - PREFILTER_US) // 1000),  # ceiling
            start,
            None if end is None else end // 1000,
        )


def trimmed(event: AwEvent, start_us: int | None, end_us: int | None) -> AwEvent:
    """``event`` cut to ``[start_us, end_us]``, as aw-server trims range reads.

    Bounds are whole milliseconds here (the API rounds them), so timestamps stay so."""
    ts_us, end = event.timestamp_us, event.end_us
    if start_us is not None and ts_us < start_us:
        ts_us = start_us
    if end_us is not None and end > end_us:
        end = end_us
    if ts_us == event.timestamp_us and end == event.end_us:
        return event
    return replace(event, timestamp_ms=ts_us // 1000, duration_us=end - ts_us)


class AwStore(Protocol):
    """Buckets and events, each call one transaction (a failed call keeps nothing).

    Calls about the events of a bucket raise ``NoSuchBucketError`` when it does not exist."""

    async def open(self) -> None:
        """Connect and create the tables (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def device_id(self) -> str:
        """A UUID made on first open and kept in the database (``/api/0/info``)."""
        ...

    async def buckets(self) -> list[AwBucket]:
        """Every bucket by id, each with ``last_updated_us`` when it holds events."""
        ...

    async def bucket(self, bucket_id: str) -> AwBucket | None: ...

    async def create_bucket(self, bucket: AwBucket) -> bool:
        """Create ``bucket``; False (and no change) when its id exists."""
        ...

    async def delete_bucket(self, bucket_id: str) -> bool:
        """Delete a bucket and its events; False when there was none."""
        ...

    async def events(self, bucket_id: str, query: AwRange) -> list[AwEvent]:
        """Events of a bucket overlapping the range, newest first (ties: highest id first),
        at most ``limit`` of them, trimmed to the range when ``query.trim``."""
        ...

    async def count(self, bucket_id: str, query: AwRange) -> int:
        """How many events ``events`` would return without a limit."""
        ...

    async def event(self, bucket_id: str, event_id: int) -> AwEvent | None: ...

    async def delete_event(self, bucket_id: str, event_id: int) -> int:
        """Delete one event; the number of events deleted (0 or 1)."""
        ...

    async def insert(self, bucket_id: str, events: Sequence[AwEvent]) -> list[AwEvent]:
        """Store events; one whose ``id`` names an event of this bucket replaces it, any other
        is added with a new id. Returns them with their ids, in order."""
        ...

    async def heartbeat(self, bucket_id: str, heartbeat: AwEvent, pulsetime_us: int) -> AwEvent:
        """Merge ``heartbeat`` into the bucket's latest event (``aw_merge.heartbeat_merge``)
        or add it as a new event, atomically; returns the stored event with its id."""
        ...

    async def import_buckets(self, exports: Sequence[AwBucketExport]) -> None:
        """Create every bucket with its events (ids are new). Raises ``InvalidInputError``
        naming the buckets that exist already, and then nothing is imported."""
        ...


def _sqlite(url: str) -> AwStore:
    from sysmonstm.domains.deskmeter.aw_sqlite import SqliteAw

    return SqliteAw(url)


def _postgres(url: str) -> AwStore:
    from sysmonstm.domains.deskmeter.aw_pg import PgAw

    return PgAw(url)


_BACKENDS = {"sqlite": _sqlite, "postgresql": _postgres, "postgres": _postgres}


def open_aw_store(url: str) -> AwStore:
    """The ActivityWatch store in the database ``url`` names (not yet opened)."""
    return by_scheme("ActivityWatch store", url, _BACKENDS)(url)


async def aw_store(core: Core) -> AwStore:
    """This process's ActivityWatch store, in the warm tier's database, opened on first use
    and closed with the Core."""

    return await core.warm_store(AW_STORE, open_aw_store)
