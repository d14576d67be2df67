"""Deskmeter's hot state: the current interval of each machine and the last minutes of
switches, in the hot tier's documents (``HotTier.put_states`` … ``recent_docs``).

Written by the ingest after each stored batch; read by the REST API through
``machines_now`` and ``recent_switches``, which answer from the interval store instead when
the hot tier cannot (degraded, empty after a restart, or with a hole after an outage).

- state of key ``<machine>``: ``{"machine", "host", "time_zone", "heartbeat_ms",
  "last_event_ms", "stored_through", "current": null | {"start_ms", "end_ms",
  "workspace_index", "workspace", "task", "idle", "time_zone"}}``, timed by its last event;
- recent documents: the ``workspace.switch.<machine>`` payloads (see ``payloads.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sysmonstm.domains.deskmeter.model import DOMAIN, Interval, Machine, MachineInfo
from sysmonstm.domains.deskmeter.payloads import closed_payload
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.store.hot import HotDocument

if TYPE_CHECKING:
    from sysmonstm.runtime import Core
    from sysmonstm.store.hot_guard import GuardedHot

DAY_MS = 86_400_000


def _interval_body(interval: Interval) -> dict[str, object]:
    return {
        "start_ms": interval.start_ms,
        "end_ms": interval.end_ms,
        "workspace_index": interval.workspace_index,
        "workspace": interval.workspace,
        "task": interval.task,
        "idle": interval.idle,
        "time_zone": interval.time_zone,
    }


def state_document(info: MachineInfo, heartbeat_ms: int) -> HotDocument:
    """A machine's state as a hot document, timed by its last event."""
    m = info.machine
    body: dict[str, object] = {
        "machine": m.id,
        "host": m.host,
        "time_zone": m.time_zone,
        "heartbeat_ms": heartbeat_ms,
        "last_event_ms": info.last_event_ms,
        "stored_through": info.stored_through,
        "current": None if info.current is None else _interval_body(info.current),
    }
    return HotDocument(m.id, info.last_event_ms, body)


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"a Deskmeter hot document holds {value!r} where a number belongs")
    return value


def _interval_of(machine: str, body: Mapping[str, object]) -> Interval:
    return Interval(
        machine,
        _int(body["start_ms"]),
        _int(body["end_ms"]),
        _int(body["workspace_index"]),
        str(body["workspace"]),
        str(body["task"]),
        bool(body["idle"]),
        open=True,
        time_zone=str(body["time_zone"]),
    )


def machine_info(doc: HotDocument) -> MachineInfo:
    """The ``MachineInfo`` a state document holds (as the store's ``machines()`` has it)."""
    b = doc.body
    machine = Machine(str(b["machine"]), str(b["host"]), str(b["time_zone"]))
    current = b["current"]
    return MachineInfo(
        machine,
        _int(b["last_event_ms"]),
        _int(b["stored_through"]),
        _interval_of(machine.id, current) if isinstance(current, Mapping) else None,
    )


async def put_states(hot: GuardedHot, states: Sequence[tuple[MachineInfo, int]]) -> None:
    """Record ``(info, heartbeat_ms)`` pairs as the machines' current states."""
    await hot.put_states(DOMAIN, [state_document(i, hb) for i, hb in states])


async def add_switches(hot: GuardedHot, payloads: Sequence[Mapping[str, object]]) -> None:
    """Keep switch payloads for the hot window."""
    docs = [HotDocument(str(p["machine"]), _int(p["time_ms"]), p) for p in payloads]
    await hot.add_recent(DOMAIN, docs)


async def machines_now(core: Core) -> list[MachineInfo]:
    """Every machine with its current interval, most recently heard first: from the hot
    tier, or from the interval store when the hot tier is degraded or holds none."""
    if not core.hot.degraded:
        found = [machine_info(d) for d in await core.hot.states(DOMAIN)]
        if found:
            return found
    store = await interval_store(core)
    infos = await store.machines()
    return sorted(infos, key=lambda i: (-i.last_event_ms, i.machine.id))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def recent_switches(
    core: Core, since_ms: int, now_ms: int | None = None
) -> list[dict[str, object]]:
    """Switches from ``since_ms`` on (within the hot window), oldest first, as their bus
    payloads. Read from the hot tier while it is complete for that range; else rebuilt from
    the interval store (each interval that started in the range, with the interval of its
    machine that ended where it began as ``closed``; ``idle_ms`` unknown there, 0)."""
    now = _now_ms() if now_ms is None else now_ms
    since = max(since_ms, now - core.hot.window_ms)
    if core.hot.covers(since):
        return [dict(d.body) for d in await core.hot.recent_docs(DOMAIN, since)]
    store = await interval_store(core)
    hosts = {i.machine.id: i.machine.host for i in await store.machines()}
    # a day back, so the interval before the first switch comes with its real start
    intervals = await store.intervals(since - DAY_MS, now + 1)
    previous: dict[str, Interval] = {}
    out: list[dict[str, object]] = []
    for interval in intervals:
        before = previous.get(interval.machine)
        previous[interval.machine] = interval
        if interval.start_ms < since:
            continue
        closed = before if before is not None and before.end_ms == interval.start_ms else None
        out.append(_switch_of(interval, hosts.get(interval.machine, interval.machine), closed))
    return out


def _switch_of(interval: Interval, host: str, closed: Interval | None) -> dict[str, object]:
    return {
        "machine": interval.machine,
        "host": host,
        "time_ms": interval.start_ms,
        "kind": "switch",
        "workspace_index": interval.workspace_index,
        "workspace": interval.workspace,
        "task": interval.task,
        "idle": interval.idle,
        "idle_ms": 0,
        "time_zone": interval.time_zone,
        "current": {"start_ms": interval.start_ms, "duration_s": 0.0},
        "closed": None if closed is None else closed_payload(closed),
    }
