"""Backend tables keyed by URL scheme: the one lookup every registry (bus, tiers, archive,
domain stores) makes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from sysmonstm.errors import UnknownBackendError

F = TypeVar("F")


def by_scheme(what: str, url: str, table: Mapping[str, F]) -> F:
    """The entry of ``table`` for ``url``'s scheme; ``UnknownBackendError`` ("no <what> for
    <url>; known: <schemes>") when there is none."""
    factory = table.get(urlsplit(url).scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(table))
        raise UnknownBackendError(f"no {what} for {url!r}; known: {known}")
    return factory
