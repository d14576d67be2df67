"""The payment API's tokens file, as read and written (``sysmonstm payments token …``):
users, roles and the SHA-256 of each token (docs/payments.md "Gateway API"). Apart from
``auth`` (which checks requests against it) so that the command line can write the file
without loading the web stack."""

from __future__ import annotations

import enum
import hashlib
import re
import tomllib
from dataclasses import dataclass

from sysmonstm.errors import ConfigError

USER_RULE = "1 to 64 characters of letters, digits and . _ @ -"
USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Role(enum.Enum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a request's token."""

    user: str
    role: Role


@dataclass(frozen=True, slots=True)
class TokenEntry:
    sha256: bytes
    principal: Principal


def token_hash(token: str) -> str:
    """The hex SHA-256 the tokens file stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(text: str, where: str) -> list[TokenEntry]:
    """The entries of a tokens file; ``ConfigError`` naming the entry that is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not TOML: {exc}") from None
    tables = data.get("token", [])
    if not isinstance(tables, list) or set(data) - {"token"}:
        raise ConfigError(f"{where}: expected only [[token]] tables")
    entries = []
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict) or set(table) != {"sha256", "user", "role"}:
            raise ConfigError(f"{where}: token {i}: needs exactly sha256, user and role")
        digest, user, role = table["sha256"], table["user"], table["role"]
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ConfigError(f"{where}: token {i}: sha256 must be 64 lower-case hex digits")
        if not isinstance(user, str) or not USER.fullmatch(user):
            raise ConfigError(f"{where}: token {i}: user must be {USER_RULE}")
        try:
            parsed = Role(role)
        except ValueError:
            names = ", ".join(r.value for r in Role)
            raise ConfigError(f"{where}: token {i}: role {role!r} is not one of {names}") from None
        entries.append(TokenEntry(bytes.fromhex(digest), Principal(user, parsed)))
    return entries
