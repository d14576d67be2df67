"""Wire ``DeskBatch`` → ``model.DeskBatch``, or ``InvalidInputError`` naming what is wrong.

Checks what one batch can show by itself: identity, sequence, counts, string bounds, event
kinds, times within ``[now - max_past, now + max_future]`` and non-decreasing, IANA time
zones. Whether the batch follows the machine's last applied event is the ingest's check
(it needs the store).
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass

from sysmonstm.domains.deskmeter.builder import DEFAULT_HEARTBEAT_MS
from sysmonstm.domains.deskmeter.model import DeskBatch, DeskEvent, EventKind, Machine
from sysmonstm.errors import InvalidInputError
from sysmonstm.transport.identity import MACHINE_ID, MACHINE_ID_RULE, MAX_HOSTNAME
from sysmonstm.v1 import deskmeter_pb2 as pb

MAX_SEQUENCE = 2**63 - 1
_KINDS = {pb.DeskEvent.SWITCH: EventKind.SWITCH, pb.DeskEvent.HEARTBEAT: EventKind.HEARTBEAT}


@dataclass(frozen=True, slots=True)
class DeskLimits:
    """What one batch may hold; beyond it a batch is refused whole."""

    max_events: int = 10_000
    max_name: int = 256  # characters of a workspace name or a task
    max_workspace_index: int = 65_535
    max_idle_ms: int = 10 * 365 * 86_400_000
    min_heartbeat_ms: int = 100
    max_heartbeat_ms: int = 3_600_000
    max_future_ms: int = 300_000
    max_past_ms: int = 7 * 86_400_000


@functools.lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows (``Europe/Berlin``, ``UTC``)."""
    if not _known_zone(name):
        raise InvalidInputError(f"time_zone {name[:70]!r} is not an IANA time zone")
    return name


def _text(value: str, what: str, limit: int) -> str:
    if len(value) > limit or not value.isprintable():
        raise InvalidInputError(f"{what} must be printable, at most {limit} characters")
    return value


@functools.lru_cache(maxsize=1024)
def _source(machine_id: str, hostname: str) -> tuple[str, str]:
    """``(id, host)`` of a batch's source (a stream repeats its source in every batch)."""
    if not machine_id:
        raise InvalidInputError("source.machine_id is required")
    if not MACHINE_ID.fullmatch(machine_id):
        raise InvalidInputError(f"source.machine_id must be {MACHINE_ID_RULE}")
    host = _text(hostname, "source.hostname", MAX_HOSTNAME)
    return machine_id, host or machine_id


def _event(raw: pb.DeskEvent, i: int, lim: DeskLimits) -> DeskEvent:
    # runs for every event: the checks are inline and messages are built only on failure
    kind = _KINDS.get(raw.kind)
    if kind is None:
        raise InvalidInputError(f"event {i}: kind must be SWITCH or HEARTBEAT")
    index, idle_ms, zone = raw.workspace_index, raw.idle_ms, raw.time_zone
    if not 0 <= index <= lim.max_workspace_index:
        raise InvalidInputError(
            f"event {i}: workspace_index must be within 0..{lim.max_workspace_index}"
        )
    if not 0 <= idle_ms <= lim.max_idle_ms:
        raise InvalidInputError(f"event {i}: idle_ms must be within 0..{lim.max_idle_ms}")
    if not _known_zone(zone):
        raise InvalidInputError(f"event {i}: time_zone {zone[:70]!r} is not an IANA time zone")
    workspace, task = raw.workspace, raw.task
    if not (len(workspace) <= lim.max_name and workspace.isprintable()):
        _text(workspace, f"event {i}: workspace", lim.max_name)
    if not (len(task) <= lim.max_name and task.isprintable()):
        _text(task, f"event {i}: task", lim.max_name)
    return DeskEvent(raw.time_unix_ms, kind, index, workspace, task, raw.idle, idle_ms, zone)


def _check_times(events: tuple[DeskEvent, ...], now_ms: int, lim: DeskLimits) -> None:
    previous = None
    for i, event in enumerate(events):
        t = event.time_ms
        if t > now_ms + lim.max_future_ms:
            raise InvalidInputError(
                f"event {i}: time {t} ms is more than {lim.max_future_ms // 1000} s in the future"
            )
        if t < now_ms - lim.max_past_ms:
            raise InvalidInputError(
                f"event {i}: time {t} ms is more than {lim.max_past_ms // 1000} s in the past"
            )
        if previous is not None and t < previous:
            raise InvalidInputError(
                f"event {i}: time {t} ms is before the previous event's {previous} ms"
                " (events must be in time order)"
            )
        previous = t


def desk_batch(raw: object, now_ms: int, limits: DeskLimits | None = None) -> DeskBatch:
    """The validated batch of ``raw`` (a wire ``DeskBatch``) at wall time ``now_ms``.

    The machine's time zone is that of the batch's last event; ``heartbeat_ms`` 0 means
    the default (10 s).
    """
    lim = limits or DeskLimits()
    if not isinstance(raw, pb.DeskBatch):
        raise InvalidInputError("expected a DeskBatch")
    if not raw.HasField("source"):
        raise InvalidInputError("source.machine_id is required")
    machine_id, host = _source(raw.source.machine_id, raw.source.hostname)
    if not 1 <= raw.sequence <= MAX_SEQUENCE:
        raise InvalidInputError(f"sequence must be within 1..{MAX_SEQUENCE}")
    if not 1 <= len(raw.events) <= lim.max_events:
        raise InvalidInputError(
            f"a batch holds 1..{lim.max_events} events, not {len(raw.events)}",
            code="RESOURCE_EXHAUSTED" if raw.events else "INVALID_ARGUMENT",
        )
    heartbeat_ms = raw.heartbeat_ms or DEFAULT_HEARTBEAT_MS
    if not lim.min_heartbeat_ms <= heartbeat_ms <= lim.max_heartbeat_ms:
        raise InvalidInputError(
            f"heartbeat_ms must be within {lim.min_heartbeat_ms}..{lim.max_heartbeat_ms}"
        )
    events = tuple([_event(e, i, lim) for i, e in enumerate(raw.events)])
    _check_times(events, now_ms, lim)
    return DeskBatch(
        Machine(machine_id, host, events[-1].time_zone), raw.sequence, events, heartbeat_ms
    )
