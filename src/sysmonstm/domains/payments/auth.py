"""Who may call the payment API: bearer tokens from a TOML file, and what each role may do.

The tokens file (``payments.tokens_file``) holds one table per token, never the token::

    [[token]]
    sha256 = "<hex of sha256(token)>"
    user = "alice"
    role = "analyst"        # viewer | analyst | auditor | admin

A request's ``Authorization: Bearer <token>`` is hashed and compared with every entry in
constant time (``hmac.compare_digest``, no early exit), so neither the answer nor its timing
tells which entry was close. The file is read again when its size or mtime changes, so
``sysmonstm payments token add`` takes effect without a restart. No token, an unknown token,
or no tokens file at all answers 401; a role without the access asked for answers 403. A
token is never logged nor echoed in an error.

Roles (docs/payments.md "Gateway API"): viewer < analyst < auditor/admin. Auditors read
everything and change nothing (an auditor does not answer the reviews they audit); admins do
everything; only admins change the lists.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from fastapi import HTTPException, Request

from sysmonstm.domains.payments.tokens import Principal, Role, TokenEntry, parse_tokens
from sysmonstm.errors import ConfigError

log = structlog.get_logger(__name__)


class Access(enum.Enum):
    """What a route does; ``ALLOWED`` says which roles may."""

    READ_TRANSACTIONS = "read transactions"
    READ_REVIEWS = "read the review queue"
    ANSWER_REVIEWS = "answer reviews"
    READ_LISTS = "read the lists"
    CHANGE_LISTS = "change the lists"
    READ_AUDIT = "read the audit trail"


_ALL = frozenset(Role)
_ANALYST_UP = frozenset({Role.ANALYST, Role.AUDITOR, Role.ADMIN})
ALLOWED: dict[Access, frozenset[Role]] = {
    Access.READ_TRANSACTIONS: _ALL,
    Access.READ_REVIEWS: _ANALYST_UP,
    Access.ANSWER_REVIEWS: frozenset({Role.ANALYST, Role.ADMIN}),
    Access.READ_LISTS: _ANALYST_UP,
    Access.CHANGE_LISTS: frozenset({Role.ADMIN}),
    Access.READ_AUDIT: frozenset({Role.AUDITOR, Role.ADMIN}),
}


class TokenBook:
    """The tokens of ``path`` (``None``: no tokens, every request is refused), re-read when
    the file changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._entries: list[TokenEntry] = []

    def _load(self) -> list[TokenEntry]:
        assert self.path is not None
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._entries = parse_tokens(self.path.read_text(), str(self.path))
                self._stamp = stamp
        except OSError as exc:
            raise ConfigError(f"cannot read the tokens file {self.path}: {exc.strerror}") from None
        return self._entries

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, or ``None``. Compares with every entry (constant time
        in the entry that matches)."""
        if self.path is None:
            return None
        presented = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self._load():
            if hmac.compare_digest(presented, entry.sha256):
                found = entry.principal
        return found


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def bearer(request: Request) -> str:
    """The request's bearer token; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("this API needs a token: send Authorization: Bearer <token>")
    return token


class Guard:
    """FastAPI dependencies that let a request through when its token's role has an access."""

    def __init__(self, book: TokenBook) -> None:
        self.book = book

    def principal(self, request: Request) -> Principal:
        token = bearer(request)
        try:
            who = self.book.lookup(token)
        except ConfigError as exc:
            log.error("payment API tokens unusable", error=str(exc))
            raise HTTPException(503, "the API tokens file cannot be read; see the logs") from None
        if who is None:
            if self.book.path is None:
                raise _unauthorized("no API tokens are configured (payments.tokens_file)")
            raise _unauthorized("unknown or revoked token")
        return who

    def needs(self, access: Access) -> Callable[[Request], Awaitable[Principal]]:
        """A dependency answering the principal, or 401/403."""

        async def check(request: Request) -> Principal:
            who = self.principal(request)
            if who.role not in ALLOWED[access]:
                allowed = ", ".join(sorted(r.value for r in ALLOWED[access]))
                raise HTTPException(
                    403, f"{who.user} ({who.role.value}) may not {access.value} (needs {allowed})"
                )
            return who

        return check
