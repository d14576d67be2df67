"""Pick a bus backend by URL scheme."""

from __future__ import annotations

from collections.abc import Callable

from sysmonstm.events.bus import Bus
from sysmonstm.schemes import by_scheme

BusFactory = Callable[[str], Bus]


def _memory(url: str) -> Bus:
    from sysmonstm.events.memory import MemoryBus

    return MemoryBus(url)


def _nats(url: str) -> Bus:
    from sysmonstm.events.nats_bus import NatsBus

    return NatsBus(url)


def _redis(url: str) -> Bus:
    from sysmonstm.events.redis_bus import RedisBus

    return RedisBus(url)


BACKENDS: dict[str, BusFactory] = {
    "memory": _memory,
    "nats": _nats,
    "redis": _redis,
    "rediss": _redis,
}


def open_bus(url: str) -> Bus:
    """A bus for ``url`` (not yet started): ``memory://``, ``nats://``, ``redis://``,
    ``rediss://`` (see ``docs/bus.md``); a bad URL parameter raises ``ConfigError``."""
    return by_scheme("bus backend", url, BACKENDS)(url)
