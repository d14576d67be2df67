"""Deskmeter envelopes (``workspace.switch.<machine>``, ``workspace.heartbeat.<machine>``) as
rule observations.

One observation per envelope, keyed by the machine id, timed by the event (``time_ms`` of the
payload, so scripted sessions and replays are judged on their own clock). Fields, for the
focus rules in ``rules.toml`` and for user rules:

- ``machine``, ``host``, ``workspace``, ``workspace_index``, ``task``, ``idle``, ``idle_ms``,
  ``time_zone``, ``kind`` ("switch" or "heartbeat") as published;
- ``focus``: the task, or the workspace name when no task is set (what a message names);
- ``idle_min``: minutes without input — ``idle_ms``, or the open idle interval's duration
  when that is longer (a watcher may reset ``idle_ms`` on its own threshold);
- ``task_min``: minutes the open interval has lasted in its state (``current.duration_s``),
  0 while idle, so deep work ends when the person walks away;
- ``change`` (switch topic only): what the switch changed compared with the interval it
  closed — ``workspace``, ``task``, ``idle``, ``resume`` (same state after a silence) or
  ``start`` (nothing was closed). Only ``workspace`` and ``task`` are context switches.

Other ``workspace.*`` topics carry no observation. A malformed payload raises
``InvalidInputError`` (the rules service logs and skips it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sysmonstm.errors import InvalidInputError
from sysmonstm.events.envelope import Envelope
from sysmonstm.rules.model import Extractor, Observation

TOPIC_PATTERN = "workspace.>"
# One pattern for switches and heartbeats: the rules service consumes each extractor pattern
# on its own subscription, and a machine's switches and heartbeats must be judged in the
# order they were published (an idle heartbeat and the switch that ends the idleness).
_KINDS = frozenset({"switch", "heartbeat"})


def _typed(value: object, kind: type | tuple[type, ...]) -> bool:
    # bool is an int to Python, never to a payload reader
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _get(payload: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = payload.get(name)
    if not _typed(value, kind):
        raise InvalidInputError(f"deskmeter payload: {name!r} is missing or of the wrong type")
    return value


def _optional(payload: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    value = payload.get(name)
    if value is None:
        return default
    if not _typed(value, kind):
        raise InvalidInputError(f"deskmeter payload: {name!r} is of the wrong type")
    return value


def _change(payload: Mapping[str, Any], closed: Mapping[str, Any] | None) -> str:
    if closed is None:
        return "start"
    if closed.get("workspace") != payload.get("workspace"):
        return "workspace"
    if closed.get("task") != payload.get("task"):
        return "task"
    if closed.get("idle") != payload.get("idle"):
        return "idle"
    return "resume"


def desk_observations(envelope: Envelope) -> list[Observation]:
    """The observation of one Deskmeter envelope; ``InvalidInputError`` if it is malformed."""
    tokens = envelope.topic.split(".")
    if len(tokens) != 3 or tokens[1] not in _KINDS:
        return []
    payload = envelope.payload
    if not isinstance(payload, Mapping):
        raise InvalidInputError("deskmeter payload: expected a mapping")
    machine: str = _get(payload, "machine", str)
    if not machine:
        raise InvalidInputError("deskmeter payload: 'machine' must not be empty")
    time_ms: int = _get(payload, "time_ms", int)
    idle: bool = _get(payload, "idle", bool)
    current: Mapping[str, Any] = _get(payload, "current", Mapping)
    duration_s = float(_get(current, "duration_s", (int, float)))
    idle_ms: int = _optional(payload, "idle_ms", int, 0)
    task: str = _optional(payload, "task", str, "")
    workspace: str = _optional(payload, "workspace", str, "")
    closed = _optional(payload, "closed", Mapping, None)
    fields: dict[str, Any] = {
        "machine": machine,
        "host": _optional(payload, "host", str, "") or machine,
        "kind": _optional(payload, "kind", str, ""),
        "workspace": workspace,
        "workspace_index": _optional(payload, "workspace_index", int, 0),
        "task": task,
        "focus": task or workspace or "this workspace",
        "idle": idle,
        "idle_ms": idle_ms,
        "time_zone": _optional(payload, "time_zone", str, "UTC"),
        "idle_min": max(idle_ms / 1000.0, duration_s if idle else 0.0) / 60.0,
        "task_min": 0.0 if idle else duration_s / 60.0,
    }
    if tokens[1] == "switch":
        fields["change"] = _change(payload, closed)
    return [Observation(machine, time_ms, fields)]


EXTRACTORS: dict[str, Extractor] = {TOPIC_PATTERN: desk_observations}
"""The Deskmeter domain's extractors, keyed by the topic pattern they read."""
