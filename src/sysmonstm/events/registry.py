"""Pick a bus backend by URL scheme."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from sysmonstm.errors import UnknownBackendError
from sysmonstm.events.bus import Bus

BusFactory = Callable[[str], Bus]


def _memory(url: str) -> Bus:
    from sysmonstm.events.memory import MemoryBus

    return MemoryBus(url)


BACKENDS: dict[str, BusFactory] = {"memory": _memory}


def open_bus(url: str) -> Bus:
    """A bus for ``url`` (not yet started): ``memory://`` now; more schemes register here."""
    scheme = urlsplit(url).scheme
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(BACKENDS))
        raise UnknownBackendError(f"no bus backend for {url!r}; known: {known}")
    return factory(url)
