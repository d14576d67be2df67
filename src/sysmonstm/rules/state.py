"""Per-group state of one rule: the group's window, its last fields and its alert instance."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sysmonstm.rules.model import AlertEvent, AlertState, Rule, Scalar
from sysmonstm.rules.template import render
from sysmonstm.rules.window import SlidingWindow

GroupId = tuple[Any, ...]


class Alert:
    """The mutable life of one alert instance (pending or firing)."""

    __slots__ = ("changed_ms", "cleared_ms", "fired_ms", "id", "started_ms", "state")

    def __init__(self, instance_id: str, state: AlertState, started_ms: int) -> None:
        self.id = instance_id
        self.state = state
        self.started_ms = started_ms
        self.fired_ms: int | None = started_ms if state is AlertState.FIRING else None
        self.changed_ms = started_ms
        # Observation time at which the clear condition was first met (keep_firing_for).
        self.cleared_ms: int | None = None


class Group:
    """What a rule remembers about one group.

    ``seen_ms`` is the engine clock at the last observation (absence, idleness); ``obs_ms``
    the newest observation time (``for``, ``keep_firing_for`` and windows run on it).
    """

    __slots__ = (
        "alert",
        "fields",
        "gid",
        "group",
        "key",
        "last_start",
        "obs_ms",
        "seen_ms",
        "value",
        "window",
    )

    def __init__(
        self,
        gid: GroupId,
        key: str,
        group: tuple[tuple[str, Any], ...],
        *,
        window: SlidingWindow | None,
        now_ms: int,
        obs_ms: int,
    ) -> None:
        self.gid = gid
        self.key = key
        self.group = group
        self.window = window
        self.fields: Mapping[str, Any] = {}
        self.seen_ms = now_ms
        self.obs_ms = obs_ms
        self.value: Scalar | None = None
        self.alert: Alert | None = None
        self.last_start = (-1, 0)  # (started_ms, instances started at that ms)

    def projected_ms(self, now_ms: int) -> int:
        """The group's observation clock at engine time ``now_ms``.

        The newest observation time advanced by the engine time elapsed since it arrived,
        so a source whose clock is skewed or a replay of old data is judged on its own clock.
        """
        return self.obs_ms + max(0, now_ms - self.seen_ms)

    def new_instance_id(self, rule: str, started_ms: int) -> str:
        """A deterministic id: the same stream replayed yields the same ids."""
        at, n = self.last_start
        n = n + 1 if at == started_ms else 0
        self.last_start = (started_ms, n)
        digest = hashlib.blake2b(
            repr((rule, self.gid, started_ms, n)).encode(), digest_size=10
        ).hexdigest()
        return f"{rule}-{digest}"


def alert_event(
    rule: Rule,
    group: Group,
    alert: Alert,
    state: AlertState,
    *,
    time_ms: int,
    resolved_ms: int | None = None,
) -> AlertEvent:
    """The event describing ``alert`` in ``state`` at ``time_ms``, message rendered."""
    context: dict[str, Any] = dict(group.fields)
    context.update(group.group)
    context.update(
        value=group.value,
        threshold=rule.threshold,
        clear=rule.clear,
        rule=rule.name,
        field=rule.field,
        key=group.key,
        state=str(state),
        severity=str(rule.severity),
    )
    return AlertEvent(
        id=alert.id,
        rule=rule.name,
        state=state,
        severity=rule.severity,
        key=group.key,
        group=group.group,
        value=group.value,
        threshold=rule.threshold,
        message=render(rule.message, context),
        labels=rule.labels,
        started_ms=alert.started_ms,
        fired_ms=alert.fired_ms,
        resolved_ms=resolved_ms,
        time_ms=time_ms,
    )
