"""Time partitions of the PostgreSQL warm tier: created ahead and on demand, listed, dropped.

Names and periods are those of ``store/partitions.py`` (``raw_YYYYMMDD``, ``m1_YYYYMM``,
``h1_YYYY``), attached to the ``raw``, ``m1`` and ``h1`` parents by range on ``t``.

A partition is created as a plain table and then attached: ``ATTACH PARTITION`` takes only a
SHARE UPDATE EXCLUSIVE lock on the parent, so reads and writes go on meanwhile (``CREATE
TABLE ... PARTITION OF`` would lock them out). Creators serialize on an advisory lock, so two
processes never race on one name. Days ahead are created on open and on every maintenance
pass; a write for a day that has none (late data) creates it first, in its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sysmonstm.errors import BackendError
from sysmonstm.store.model import PartitionInfo, Tier
from sysmonstm.store.partitions import parse_partition, partition_name
from sysmonstm.store.pg_conn import Conn, PgDb
from sysmonstm.store.pg_schema import PARTITION_LOCK

PARENTS = {Tier.RAW: "raw", Tier.M1: "m1", Tier.H1: "h1"}
DAY_MS = 86_400_000
AHEAD_DAYS = 2
# DDL waits at most this long for the parent's lock: a maintenance pass that cannot get it
# fails and retries later rather than queue every reader and writer behind it
DDL_LOCK_TIMEOUT = "3s"

_CHILDREN = """
    SELECT c.relname, pg_relation_size(c.oid)
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent IN (to_regclass('raw'), to_regclass('m1'), to_regclass('h1'))"""


async def children(conn: Conn) -> dict[str, int]:
    """Every attached partition and its size in bytes (its main fork)."""
    rows = await conn.fetch(_CHILDREN)
    return {str(r[0]): int(r[1]) for r in rows if parse_partition(str(r[0])) is not None}


def ahead_names(now_ms: int, days: int = AHEAD_DAYS) -> set[str]:
    """Partitions of every tier covering today and the next ``days`` days."""
    return {
        partition_name(tier, now_ms + d * DAY_MS)
        for d in range(days + 1)
        for tier in (Tier.RAW, Tier.M1, Tier.H1)
    }


class PartitionsMissingError(Exception):
    """Raised inside a transaction that found partitions missing: roll it back, create them
    with ``Partitions.ensure``, run it again."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(", ".join(sorted(names)))
        self.names = names


class Partitions:
    """Which partitions exist (cached per process) and the DDL that changes that."""

    def __init__(self, db: PgDb) -> None:
        self.db = db
        self.known: set[str] = set()

    def require(self, names: Iterable[str]) -> None:
        """Raise ``NeedPartitions`` unless every one of ``names`` is known to exist."""
        missing = set(names) - self.known
        if missing:
            raise PartitionsMissingError(missing)

    async def refresh(self) -> dict[str, int]:
        async with self.db.tx("list partitions", readonly=True) as conn:
            found = await children(conn)
        self.known = set(found)
        return found

    async def ensure(self, names: Iterable[str]) -> None:
        """Create whichever of ``names`` do not exist yet (each a partition name)."""
        missing = set(names) - self.known
        if not missing:
            return
        async with self.db.tx("create partitions") as conn:
            await conn.execute(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            existing = set(await children(conn))
            for name in sorted(missing - existing):
                await _create(conn, name)
        self.known = existing | missing

    async def ensure_ahead(self, now_ms: int) -> None:
        """Create the partitions of today and the next days; notice ones dropped elsewhere."""
        await self.refresh()
        await self.ensure(ahead_names(now_ms))

    async def listing(self) -> list[PartitionInfo]:
        """Partitions that hold data, oldest first. Partitions created ahead and still empty
        are left out: there is nothing in them to archive yet."""
        found = await self.refresh()
        out = []
        for name, size in found.items():
            parsed = parse_partition(name)
            if parsed is not None and size > 0:
                out.append(PartitionInfo(parsed[0], name, parsed[1], parsed[2]))
        return sorted(out, key=lambda p: (p.start_ms, p.tier.value))

    async def drop(self, name: str) -> bool:
        """Drop partition ``name`` (a no-op when it does not exist); True if it did."""
        if parse_partition(name) is None:
            raise BackendError(f"{name!r} is not a partition")
        async with self.db.tx(f"drop partition {name}") as conn:
            await conn.execute(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")
            exists = name in await children(conn)
            if exists:
                await conn.execute(f"DROP TABLE {name}")
        self.known.discard(name)
        return exists


async def _create(conn: Conn, name: str) -> None:
    parsed = parse_partition(name)
    if parsed is None:
        raise BackendError(f"{name!r} is not a partition")
    tier, start, end = parsed
    parent = PARENTS[tier]
    await conn.execute(
        f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        " INCLUDING STORAGE)"
    )
    await conn.execute(
        f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"
    )
