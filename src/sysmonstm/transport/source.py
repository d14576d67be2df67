"""What every streaming source (collector, watcher, adapter) shares: its machine id, the
TLS files of its stream, and a quiet log of a growing backlog."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

from sysmonstm.transport.spool import Spool

log = structlog.get_logger(__name__)

MACHINE_ID_FILE = Path("/etc/machine-id")


@dataclass(frozen=True)
class ClientTls:
    """PEM files for the stream: ``ca`` to trust the aggregator (default: the system's
    store), ``cert`` and ``key`` for mutual TLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


def resolve_machine_id(explicit: str | None, spool_dir: Path) -> str:
    """``explicit``, else /etc/machine-id, else an id generated once into ``spool_dir``."""
    if explicit:
        return explicit
    with contextlib.suppress(OSError):
        if found := MACHINE_ID_FILE.read_text(encoding="ascii").strip():
            return found
    kept = spool_dir / "machine-id"
    with contextlib.suppress(OSError):
        if found := kept.read_text(encoding="ascii").strip():
            return found
    spool_dir.mkdir(parents=True, exist_ok=True)
    made = uuid.uuid4().hex
    kept.write_text(made + "\n", encoding="ascii")
    return made


class BacklogWatch:
    """Logs once when unacknowledged batches pile up (the aggregator is away or cannot
    store) and once when they are cleared, instead of a line per batch."""

    def __init__(self, spool: Spool, interval_s: float, behind_s: float = 5.0) -> None:
        self.spool = spool
        self.threshold = max(5, int(behind_s / interval_s))
        self.behind = False

    def check(self) -> None:
        pending = self.spool.pending_count
        if not self.behind and pending >= self.threshold:
            self.behind = True
            log.warning(
                "aggregator is not acknowledging; spooling to disk",
                pending=pending,
                spool_bytes=self.spool.size_bytes,
            )
        elif self.behind and pending < self.threshold // 2:
            self.behind = False
            log.info("backlog delivered", pending=pending)
