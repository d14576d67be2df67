"""The rule engine: a pure state machine over observations, no I/O, clock injected.

``observe(topic, observations)`` routes each observation to the rules whose topic pattern
matches ``topic`` and whose field the observation carries (rules are indexed by pattern
and by field, so a host observation with 150 fields touches only the rules reading one of
them), and returns the alert transitions it caused. ``tick(now_ms)`` applies the
transitions that time alone causes and evicts idle groups; a service calls it about once a
second. Lifecycle and timing semantics are described in ``sysmonstm.rules.runtime``.

Two clocks meet here. ``for``, ``keep_firing_for`` and windows run on observation time
(what the source says), so a replay or a skewed source is judged on its own timeline.
Absence and idleness run on the engine clock (receive time), since a silent source says
nothing about time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sysmonstm.errors import InvalidInputError
from sysmonstm.events.topics import TopicPattern
from sysmonstm.rules.conditions import RuleError
from sysmonstm.rules.model import AlertEvent, Observation, Rule
from sysmonstm.rules.runtime import RuleRuntime

Clock = Callable[[], int]
"""Returns the current time in Unix milliseconds."""

_ROUTE_CACHE_MAX = 10_000


def wall_clock_ms() -> int:
    """The system clock in Unix milliseconds (UTC)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Sizes worth watching: groups held, alerts active, groups refused at the cap."""

    rules: int
    groups: int
    active: int
    refused: int


class _Route:
    """The rules one concrete topic reaches, indexed by the field each reads."""

    __slots__ = ("always", "by_field")

    def __init__(self, runtimes: Sequence[RuleRuntime]) -> None:
        by_field: dict[str, list[RuleRuntime]] = {}
        always: list[RuleRuntime] = []
        for rt in runtimes:
            if rt.rule.field is None:
                always.append(rt)
            else:
                by_field.setdefault(rt.rule.field, []).append(rt)
        self.by_field = {name: tuple(rts) for name, rts in by_field.items()}
        self.always = tuple(always)

    def dispatch(self, obs: Observation, now_ms: int, out: list[AlertEvent]) -> None:
        fields = obs.fields
        by_field = self.by_field
        # Walk whichever side is smaller: few rules over wide observations, or the reverse.
        if len(by_field) <= len(fields):
            hits = [rt for name, rts in by_field.items() if name in fields for rt in rts]
        else:
            hits = [rt for name in fields for rt in by_field.get(name, ())]
        if self.always:
            hits.extend(self.always)
        if len(hits) > 1:
            hits.sort(key=lambda rt: rt.index)  # transitions come out in declaration order
        for rt in hits:
            rt.observe(obs, now_ms, out)


class Engine:
    """Evaluates ``rules`` over observations; see the module docstring for the contract.

    ``idle_ms`` is added to twice a rule's longest duration to decide when a group without
    an alert is forgotten; ``max_groups`` caps the groups one rule holds. Raises
    ``ConfigError`` for duplicate names, bad topic patterns or inconsistent rules.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        clock: Clock = wall_clock_ms,
        idle_ms: int = 600_000,
        max_groups: int = 1_000_000,
    ) -> None:
        seen: set[str] = set()
        self._clock = clock
        self._runtimes: list[RuleRuntime] = []
        by_topic: dict[str, list[RuleRuntime]] = {}
        for index, rule in enumerate(rules):
            if rule.name in seen:
                raise RuleError(rule.name, "name", "duplicate rule name")
            seen.add(rule.name)
            try:
                TopicPattern.parse(rule.topic)
            except InvalidInputError as exc:
                raise RuleError(rule.name, "topic", exc.reason) from exc
            rt = RuleRuntime(rule, index, idle_ms=idle_ms, max_groups=max_groups)
            self._runtimes.append(rt)
            by_topic.setdefault(rule.topic, []).append(rt)
        self._patterns = [(TopicPattern.parse(t), rts) for t, rts in by_topic.items()]
        self._routes: dict[str, _Route] = {}

    @property
    def rules(self) -> list[Rule]:
        """The rules, in declaration order."""
        return [rt.rule for rt in self._runtimes]

    @property
    def clock(self) -> Clock:
        """The clock ``observe`` and ``tick`` read."""
        return self._clock

    def _route(self, topic: str) -> _Route:
        route = self._routes.get(topic)
        if route is None:
            hits = [rt for pattern, rts in self._patterns if pattern.matches(topic) for rt in rts]
            hits.sort(key=lambda rt: rt.index)
            if len(self._routes) >= _ROUTE_CACHE_MAX:
                self._routes.clear()
            route = self._routes[topic] = _Route(hits)
        return route

    def reaches(self, topic: str) -> bool:
        """Whether any rule evaluates events on ``topic``."""
        route = self._route(topic)
        return bool(route.by_field or route.always)

    def observe(self, topic: str, observations: Iterable[Observation]) -> list[AlertEvent]:
        """Evaluate the observations carried by one event on ``topic``; return transitions."""
        route = self._route(topic)
        out: list[AlertEvent] = []
        if not route.by_field and not route.always:
            return out
        now_ms = self._clock()
        for obs in observations:
            route.dispatch(obs, now_ms, out)
        return out

    def tick(self, now_ms: int | None = None) -> list[AlertEvent]:
        """Apply the transitions time causes by ``now_ms`` (default: the clock); evict."""
        now = self._clock() if now_ms is None else now_ms
        out: list[AlertEvent] = []
        for rt in self._runtimes:
            rt.tick(now, out)
        return out

    def active(self) -> list[AlertEvent]:
        """Every pending or firing alert as it stands, by rule order then group key."""
        events: list[AlertEvent] = []
        for rt in self._runtimes:
            events.extend(sorted(rt.snapshot(), key=lambda e: e.key))
        return events

    def stats(self) -> EngineStats:
        """Current sizes (for health checks and the bounded-memory tests)."""
        return EngineStats(
            rules=len(self._runtimes),
            groups=sum(len(rt.groups) for rt in self._runtimes),
            active=sum(len(rt.active) for rt in self._runtimes),
            refused=sum(rt.refused for rt in self._runtimes),
        )
