"""ActivityWatch's heartbeat merge, as aw-core defines it (``aw_transform.heartbeats``).

A heartbeat is an observation "the state is ``data`` at ``timestamp``" (usually with
duration 0). It extends the bucket's latest event instead of adding one when:

- its ``data`` equals the latest event's (JSON equality: ``1 == 1.0``, key order aside), and
- it starts within the pulse window: ``last.timestamp <= hb.timestamp <=
  last.timestamp + last.duration + pulsetime`` (both ends inclusive), and
- the latest event's duration is not negative (aw-core refuses to merge then).

The merged event keeps the latest event's id, timestamp and data; its duration becomes
``max(last.duration, hb.timestamp - last.timestamp + hb.duration)``, so a heartbeat that
ends before the event does never shortens it. Anything else is stored as a new event.
All arithmetic is in integer microseconds, exactly as Python's ``timedelta`` does it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from sysmonstm.domains.deskmeter.aw_store import AwEvent
from sysmonstm.errors import InvalidInputError

_US = timedelta(microseconds=1)
#: spans beyond ten thousand years are refused: they would not fit the databases' int8
MAX_SPAN_US = 10_000 * 366 * 86_400 * 1_000_000


def seconds_to_us(seconds: float, what: str) -> int:
    """Seconds as aw-core holds them, in a ``timedelta``: whole microseconds (rounded half
    to even). Raises ``InvalidInputError`` for non-finite or out-of-range values."""
    if not math.isfinite(seconds):
        raise InvalidInputError(f"{what} must be a finite number of seconds, got {seconds!r}")
    try:
        span = timedelta(seconds=seconds)
    except OverflowError:
        span = timedelta.max
    us = span // _US
    if abs(us) > MAX_SPAN_US:
        raise InvalidInputError(f"{what} {seconds!r} s is out of range")
    return us


def heartbeat_merge(last: AwEvent, heartbeat: AwEvent, pulsetime_us: int) -> AwEvent | None:
    """``last`` extended by ``heartbeat``, or None when they do not merge (module docs)."""
    if last.data != heartbeat.data:
        return None
    window_end = last.end_us + pulsetime_us
    if not last.timestamp_us <= heartbeat.timestamp_us <= window_end:
        return None
    if last.duration_us < 0:
        return None
    reach = heartbeat.timestamp_us - last.timestamp_us + heartbeat.duration_us
    return replace(last, duration_us=max(last.duration_us, reach))


def heartbeat_apply(
    last: AwEvent | None, heartbeat: AwEvent, pulsetime_us: int
) -> tuple[AwEvent, bool]:
    """What a heartbeat does to a bucket whose latest event is ``last``: the event to store
    and whether it replaces ``last`` (True) or is added (False)."""
    if last is not None:
        merged = heartbeat_merge(last, heartbeat, pulsetime_us)
        if merged is not None:
            return merged, True
    return replace(heartbeat, id=None), False
