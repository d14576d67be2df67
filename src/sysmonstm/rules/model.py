"""The rule engine's values: rules as declared, observations in, alert transitions out.

Domain-neutral on purpose: an observation is an entity key, a time and flat fields; a rule
names a topic pattern and a field. Metrics, payments and workspace activity all reduce to
that shape through their extractors.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from sysmonstm.events.envelope import Envelope

Scalar = float | str | bool
"""A value a threshold may hold (numbers are kept as floats)."""

Threshold = Scalar | tuple[Scalar, ...] | None
"""A number, string or bool; a tuple for ``in``/``not_in`` and ``between`` (lo, hi)."""


class Operator(enum.StrEnum):
    """How a rule compares a value with its threshold."""

    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    BETWEEN = "between"
    ABSENT = "absent"


class Aggregate(enum.StrEnum):
    """What a sliding window reduces its samples to."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    SUM = "sum"
    RATE = "rate"


class Severity(enum.StrEnum):
    """How loud an alert is; ``success`` lets rules celebrate (Deskmeter's deep work)."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(enum.StrEnum):
    """Where an alert instance is in its lifecycle.

    ``pending`` and ``firing`` are active; ``resolved`` and ``cancelled`` are final.
    """

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Window:
    """Test ``agg`` over the group's last ``ms`` milliseconds instead of the raw value."""

    agg: Aggregate
    ms: int


@dataclass(frozen=True, slots=True)
class Rule:
    """One declared rule (see ``loader`` for the TOML form and the checks it passes).

    Durations are milliseconds. ``field`` may be ``None`` only for a ``count`` window (count
    every matching observation). ``where`` holds per field the fnmatch globs of which one
    must match; ``group_by`` empty means "group by the observation key".
    """

    name: str
    topic: str
    op: Operator
    field: str | None = None
    threshold: Threshold = None
    clear: Threshold = None
    window: Window | None = None
    group_by: tuple[str, ...] = ()
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    absent_for_ms: int = 0
    severity: Severity = Severity.WARNING
    labels: tuple[tuple[str, str], ...] = ()
    message: str = ""
    origin: str = ""


class Observation(msgspec.Struct, frozen=True):
    """One observed state of entity ``key`` at ``time_ms`` (Unix ms, UTC): flat ``fields``.

    A msgspec Struct rather than a dataclass: extractors make one per entity per sample
    (24 per metrics message), and a Struct is built several times faster."""

    key: str
    time_ms: int
    fields: Mapping[str, Any]


Extractor = Callable[[Envelope], Iterable[Observation]]
"""A domain's converter from a bus envelope to observations; raises on a malformed one."""


def json_value(value: Any) -> Any:
    """``value`` with tuples turned into lists (payloads must survive a JSON round trip)."""
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One transition of one alert instance, or (from ``active()``) its current state.

    ``id`` is stable across an instance's transitions and deterministic (rule, group,
    start time), so a replayed stream yields the same ids. ``group`` holds the ``group_by``
    fields (empty when grouped by observation key); ``key`` is the group as one string.
    """

    id: str
    rule: str
    state: AlertState
    severity: Severity
    key: str
    group: tuple[tuple[str, Any], ...]
    value: Scalar | None
    threshold: Threshold
    message: str
    labels: tuple[tuple[str, str], ...]
    started_ms: int
    fired_ms: int | None
    resolved_ms: int | None
    time_ms: int

    def to_payload(self) -> dict[str, Any]:
        """The published form: plain dicts, lists, strings and numbers."""
        return {
            "id": self.id,
            "rule": self.rule,
            "state": str(self.state),
            "severity": str(self.severity),
            "key": self.key,
            "group": dict(self.group),
            "value": self.value,
            "threshold": json_value(self.threshold),
            "message": self.message,
            "labels": dict(self.labels),
            "started_ms": self.started_ms,
            "fired_ms": self.fired_ms,
            "resolved_ms": self.resolved_ms,
            "time_ms": self.time_ms,
        }
