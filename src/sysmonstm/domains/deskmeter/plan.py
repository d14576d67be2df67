"""What an ``apply`` writes, worked out before any of it is written (shared by the backends).

A backend reads the state of the machines a call touches (inside its transaction), asks
``plan_apply`` for the writes, and stores all of them in that transaction: the intervals to
upsert (the last version of each), the rollup deltas summed per row, and each machine's new
state (watermark, last event, heartbeat, last interval). The monthly rollups take the daily
deltas summed per month (``by_month``). Nothing is written if planning raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from sysmonstm.domains.deskmeter.builder import DayKey, MachineState
from sysmonstm.domains.deskmeter.builder_batch import apply_events
from sysmonstm.domains.deskmeter.model import DeskBatch, Interval
from sysmonstm.domains.deskmeter.store import Applied


@dataclass(slots=True)
class Plan:
    """The writes of one ``apply`` call."""

    states: dict[str, MachineState] = field(default_factory=dict)  # only machines changed
    intervals: dict[tuple[str, int], Interval] = field(default_factory=dict)
    days: dict[DayKey, tuple[int, int]] = field(default_factory=dict)  # (ms, pieces)
    applied: list[Applied] = field(default_factory=list)


def by_month(days: dict[DayKey, tuple[int, int]]) -> dict[DayKey, tuple[int, int]]:
    """The daily deltas summed per month: keys with ``day`` the month's first day."""
    months: dict[DayKey, tuple[int, int]] = {}
    for key, (ms, pieces) in days.items():
        month = replace(key, day=key.day[:8] + "01")
        old_ms, old_pieces = months.get(month, (0, 0))
        months[month] = (old_ms + ms, old_pieces + pieces)
    return months


def plan_apply(states: Mapping[str, MachineState], batches: Sequence[DeskBatch]) -> Plan:
    """Run the builder over the batches above each machine's watermark, in order.

    ``states`` holds every machine the batches name (a new machine: ``MachineState`` with
    its identity). Raises ``ValueError`` for an event older than its machine's last one.
    """
    plan = Plan()
    for batch in batches:
        mid = batch.machine.id
        state = plan.states.get(mid) or states[mid]
        if batch.sequence <= state.stored_through:
            continue
        state = replace(state, machine=batch.machine, stored_through=batch.sequence)
        state, steps, written = apply_events(state, batch.events, batch.heartbeat_ms, plan.days)
        for interval in written:
            plan.intervals[(interval.machine, interval.start_ms)] = interval
        plan.states[mid] = state
        plan.applied.append(Applied(batch, tuple(steps)))
    return plan
