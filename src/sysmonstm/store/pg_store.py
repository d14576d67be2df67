"""A store in the warm tier's PostgreSQL database: a pool whose ``open`` brings the schema
up to date (the numbered migrations of ``pg_schema``, which hold every store's tables)."""

from __future__ import annotations

from sysmonstm.store.pg_conn import PgDb
from sysmonstm.store.pg_schema import migrate


class PgStore:
    """A pool to the PostgreSQL database ``url`` names (``self.url``: the URL with its
    password masked, safe to show); ``open`` applies the pending migrations.

    An opening that fails closes the pool again, so it leaves nothing open.
    """

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.db = PgDb(url, max_size=pool_size)
        self.url = self.db.masked

    async def open(self) -> None:
        await self.db.open()
        try:
            async with self.db.tx("migrate") as conn:
                await migrate(conn)
            await self._opened()
        except BaseException:
            await self.db.close()
            raise

    async def _opened(self) -> None:
        """What a subclass does once the schema is current (its failure fails ``open``)."""

    async def close(self) -> None:
        await self.db.close()
