"""Who is watching: the machine's identity (as the metrics collector derives it) and zone."""

from __future__ import annotations

import contextlib
import os
import socket
import zoneinfo
from pathlib import Path

from sysmonstm.domains.deskmeter.model import Machine
from sysmonstm.errors import ConfigError
from sysmonstm.transport.identity import MACHINE_ID, MACHINE_ID_RULE, MAX_HOSTNAME
from sysmonstm.transport.source import resolve_machine_id

LOCALTIME = Path("/etc/localtime")
TIMEZONE_FILE = Path("/etc/timezone")


def valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone zoneinfo knows (what the aggregator validates)."""
    if not name or name.startswith(("/", ":")) or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_time_zone() -> str:
    """This machine's IANA zone: ``$TZ``, else ``/etc/localtime``'s link into a zoneinfo
    tree, else ``/etc/timezone``, else "UTC"."""
    candidates: list[str] = []
    if tz := os.environ.get("TZ", "").removeprefix(":"):
        candidates.append(tz)
    with contextlib.suppress(OSError):
        target = str(LOCALTIME.resolve(strict=True))
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1].removeprefix("posix/"))
    with contextlib.suppress(OSError):
        candidates.append(TIMEZONE_FILE.read_text(encoding="utf-8").strip())
    return next((c for c in candidates if valid_zone(c)), "UTC")


def resolve_machine(
    machine_id: str | None, hostname: str | None, time_zone: str | None, spool_dir: Path
) -> Machine:
    """The watcher's identity: explicit values, else what the OS says (machine id as the
    metrics collector resolves it, ``socket.gethostname()``, the local zone).

    Raises ``ConfigError`` for a machine id or a time zone the aggregator would refuse.
    """
    if time_zone is not None and not valid_zone(time_zone):
        raise ConfigError(f"deskmeter: unknown time zone {time_zone!r} (use an IANA name)")
    resolved = resolve_machine_id(machine_id, spool_dir)
    if not MACHINE_ID.fullmatch(resolved):
        raise ConfigError(f"deskmeter: machine id {resolved[:64]!r} is not {MACHINE_ID_RULE}")
    host = hostname or socket.gethostname()
    return Machine(
        id=resolved,
        host="".join(c for c in host if c.isprintable())[:MAX_HOSTNAME],
        time_zone=time_zone or local_time_zone(),
    )
