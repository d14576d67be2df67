"""Deskmeter on the bus: topics and payloads exactly as docs/deskmeter.md "Bus" has them.

``workspace.switch.<machine>`` carries each event that began a new interval (a change of
workspace, task or idle state, or the first event after a silence) with the interval it
closed; ``workspace.heartbeat.<machine>`` every other event (the open interval grew).
"""

from __future__ import annotations

from sysmonstm.domains.deskmeter.model import Interval, Machine
from sysmonstm.domains.deskmeter.store import Step
from sysmonstm.events.topics import topic_token

SWITCH = "switch"
HEARTBEAT = "heartbeat"


def switch_topic(machine_id: str) -> str:
    return f"workspace.switch.{topic_token(machine_id)}"


def heartbeat_topic(machine_id: str) -> str:
    return f"workspace.heartbeat.{topic_token(machine_id)}"


def _same_interval(a: Interval, b: Interval) -> bool:
    return (a.start_ms, a.workspace_index, a.workspace, a.task, a.idle) == (
        b.start_ms,
        b.workspace_index,
        b.workspace,
        b.task,
        b.idle,
    )


def is_switch(step: Step, previous: Interval | None) -> bool:
    """Whether ``step`` began a new interval. ``previous`` is the machine's open interval
    before the step, if known: an event at the instant its interval opened only re-states
    it, which is a switch only if the state changed."""
    if step.closed is not None:
        return True
    if step.current.start_ms != step.event.time_ms:
        return False  # the open interval grew
    return previous is None or not _same_interval(previous, step.current)


def closed_payload(interval: Interval) -> dict[str, object]:
    return {
        "start_ms": interval.start_ms,
        "end_ms": interval.end_ms,
        "workspace": interval.workspace,
        "task": interval.task,
        "idle": interval.idle,
    }


def step_payload(machine: Machine, step: Step, switch: bool) -> dict[str, object]:
    """The payload of one applied event (``switch``: see ``is_switch``). ``closed`` is the
    interval this event ended (only a switch ends one; null otherwise);
    ``current.duration_s`` how long the open interval has lasted at the event."""
    event, current = step.event, step.current
    return {
        "machine": machine.id,
        "host": machine.host,
        "time_ms": event.time_ms,
        "kind": SWITCH if switch else HEARTBEAT,
        "workspace_index": event.workspace_index,
        "workspace": event.workspace,
        "task": event.task,
        "idle": event.idle,
        "idle_ms": event.idle_ms,
        "time_zone": event.time_zone,
        "current": {
            "start_ms": current.start_ms,
            "duration_s": (event.time_ms - current.start_ms) / 1000,
        },
        "closed": None if step.closed is None else closed_payload(step.closed),
    }
