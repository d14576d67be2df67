"""Deskmeter's values: events from watchers, intervals built from them, totals.

Times are UTC Unix milliseconds; a machine's ``time_zone`` (IANA name) matters only for
which local day an interval counts toward (rollups, summaries by day) and for display.
The two made once per event on the ingest path, ``DeskEvent`` and ``Interval``, are frozen
msgspec Structs (ten times cheaper to make than frozen dataclasses; change one with
``msgspec.structs.replace``); the rest are frozen dataclasses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgspec

DOMAIN = "deskmeter"

#: an interval that hears neither switch nor heartbeat for this many heartbeat periods
#: (plus ``SILENCE_SLACK_MS``) is closed at its last event
SILENCE_HEARTBEATS = 2
SILENCE_SLACK_MS = 5_000


class EventKind(enum.Enum):
    SWITCH = "switch"  # workspace, task or idle state changed at this instant
    HEARTBEAT = "heartbeat"  # nothing changed; the watcher is alive


class DeskEvent(msgspec.Struct, frozen=True):
    """One observation of a desktop at one instant (the wire's ``DeskEvent``, validated)."""

    time_ms: int
    kind: EventKind
    workspace_index: int
    workspace: str
    task: str  # "" lets the aggregator map it from the workspace name (task rules)
    idle: bool
    idle_ms: int
    time_zone: str  # IANA zone, validated with zoneinfo


@dataclass(frozen=True, slots=True)
class Machine:
    """A watcher's source identity."""

    id: str  # machine id, the dedupe source key within the domain
    host: str = ""
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class DeskBatch:
    """A validated batch: one machine, one sequence, events in time order."""

    machine: Machine
    sequence: int
    events: tuple[DeskEvent, ...]
    heartbeat_ms: int = 10_000  # the watcher's heartbeat period (decides silence)


class Interval(msgspec.Struct, frozen=True):
    """A span on one machine in one state; a machine's intervals never overlap.

    ``open`` intervals may still be extended by a heartbeat or closed by a switch; their
    ``end_ms`` is the last event heard. Keyed by ``(machine, start_ms)``.
    """

    machine: str
    start_ms: int
    end_ms: int
    workspace_index: int
    workspace: str
    task: str
    idle: bool
    open: bool = False
    time_zone: str = "UTC"

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def clipped(self, from_ms: int, to_ms: int) -> Interval:
        """The part within ``[from_ms, to_ms)`` (callers ensure they overlap)."""
        return Interval(
            self.machine,
            max(self.start_ms, from_ms),
            min(self.end_ms, to_ms),
            self.workspace_index,
            self.workspace,
            self.task,
            self.idle,
            self.open,
            self.time_zone,
        )


class SummaryBy(enum.Enum):
    TASK = "task"
    WORKSPACE = "workspace"
    MACHINE = "machine"
    DAY = "day"  # the machine's local date, YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class Total:
    """Time in one group of a summary: active (not idle) and idle seconds kept apart."""

    key: str
    active_s: float
    idle_s: float
    intervals: int = 0


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """What the store knows about a machine: identity, last event, the open interval."""

    machine: Machine
    last_event_ms: int
    stored_through: int  # highest batch sequence applied (exactly-once watermark)
    current: Interval | None
