"""PostgreSQL plumbing for the warm tier: a pool whose transactions survive a server restart,
foreign errors turned into ``BackendError``, and URLs with their password masked
(``sysmonstm.redact``).

Every statement runs inside ``PgDb.tx``: a transaction on a pooled connection. A connection
the server dropped (restart, failover, idle timeout) is noticed when the transaction starts:
the pool is told to replace its connections and the transaction is started once more on a
fresh one, so a restarted server costs no error. A connection lost after that point fails the
operation with ``BackendError``; the server rolled the transaction back, so nothing of it is
kept, and a retried write is skipped or stored by the source watermark, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal, NoReturn, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from sysmonstm.errors import BackendError
from sysmonstm.redact import MASK, redact_url, url_secrets

if TYPE_CHECKING:
    Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:  # asyncpg's classes are not generic at run time
    Conn = PoolConnectionProxy
Isolation = Literal["read_committed", "repeatable_read", "serializable"]

# what asyncpg and the socket layer raise; all of it becomes BackendError at the seam
FOREIGN_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# a connection the server or the network dropped (asyncpg may only notice it as a protocol
# state it did not expect): worth one more try on a fresh connection
LOST_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


class PgDb:
    """A connection pool to one PostgreSQL database (``url`` is an asyncpg DSN).

    ``masked`` is the URL safe to show; messages of converted errors never hold the password.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._url = url
        self.masked = redact_url(url)
        self._secrets = url_secrets(url)
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    async def open(self) -> None:
        with self.converted("cannot connect"):
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout_s,
            )

    async def close(self, timeout_s: float = 10.0) -> None:
        """Close every connection once released; after ``timeout_s``, cut them off."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout_s)
        except FOREIGN_ERRORS:  # TimeoutError among them
            pool.terminate()  # closing went wrong (a server gone mid-way): drop the sockets

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise BackendError(f"warm tier {self.masked} is not open")
        return self._pool

    @contextlib.contextmanager
    def converted(self, what: str) -> Iterator[None]:
        """Turn foreign errors raised inside into ``BackendError("<url>: <what>: ...")``."""
        try:
            yield
        except FOREIGN_ERRORS as exc:
            self._raise(what, exc)

    def _raise(self, what: str, exc: BaseException) -> NoReturn:
        text = str(exc) or type(exc).__name__
        leaked = any(s in text for s in self._secrets)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        error = BackendError(f"warm tier {self.masked}: {what}: {text}")
        if leaked:  # the original's message holds the password: do not chain it
            raise error from None
        raise error from exc

    @asynccontextmanager
    async def tx(
        self, what: str, *, readonly: bool = False, isolation: Isolation = "read_committed"
    ) -> AsyncIterator[Conn]:
        """A connection inside a transaction, committed when the block ends without error
        and rolled back otherwise. Foreign errors become ``BackendError``."""
        with self.converted(what):
            pool = self.pool  # the one to give the connection back to, even if closed meanwhile
            conn, tr = await self._begin(pool, readonly, isolation)
            try:
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(*FOREIGN_ERRORS):
                        await tr.rollback()
                    raise
                await tr.commit()
            finally:
                with contextlib.suppress(*FOREIGN_ERRORS):
                    await pool.release(conn)

    async def _begin(
        self, pool: asyncpg.Pool[asyncpg.Record], readonly: bool, isolation: Isolation
    ) -> tuple[Conn, asyncpg.transaction.Transaction]:
        for attempt in range(2):
            conn = await pool.acquire()
            tr = conn.transaction(isolation=isolation, readonly=readonly)
            try:
                await tr.start()
            except BaseException as exc:
                # a connection that cannot even begin is of no further use (asyncpg may
                # have let go of it already, which these calls then say)
                with contextlib.suppress(*FOREIGN_ERRORS):
                    conn.terminate()
                with contextlib.suppress(*FOREIGN_ERRORS):
                    await pool.release(conn)
                if attempt or not isinstance(exc, LOST_CONNECTION):
                    raise
                # the server went away since the pool last used its connections (a restart):
                # replace them all rather than meet every stale one in turn
                await pool.expire_connections()
                continue
            return conn, tr
        raise AssertionError("unreachable")
