"""Wire ``DeskBatch``es for ingest tests: one machine's events, built the way a watcher does."""

from __future__ import annotations

from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.deskmeter_pb2 import DeskBatch, DeskEvent

SWITCH = DeskEvent.SWITCH
HEARTBEAT = DeskEvent.HEARTBEAT


def event(
    t_ms: int,
    kind: DeskEvent.Kind.ValueType = SWITCH,
    workspace: str = "Code",
    index: int = 0,
    task: str = "",
    idle: bool = False,
    idle_ms: int = 0,
    time_zone: str = "Europe/Berlin",
) -> DeskEvent:
    return DeskEvent(
        time_unix_ms=t_ms,
        kind=kind,
        workspace_index=index,
        workspace=workspace,
        task=task,
        idle=idle,
        idle_ms=idle_ms,
        time_zone=time_zone,
    )


def desk_batch(
    machine: str,
    seq: int,
    events: list[DeskEvent],
    *,
    host: str = "",
    heartbeat_ms: int = 10_000,
) -> DeskBatch:
    return DeskBatch(
        source=SourceIdentity(machine_id=machine, hostname=host or f"host-{machine}"),
        sequence=seq,
        events=events,
        heartbeat_ms=heartbeat_ms,
    )
