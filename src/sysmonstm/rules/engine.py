"""The rule engine: a pure state machine over observations, no I/O, clock injected.

``observe(topic, observations)`` routes each observation to the rules whose topic pattern
matches ``topic``, whose field the observation carries and whose ``where`` selects it (see
``sysmonstm.rules.dispatch``: each observation touches only the rules that select it), and
returns the alert transitions it caused. ``tick(now_ms)`` applies the
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
from operator import itemgetter

from sysmonstm.errors import InvalidInputError
from sysmonstm.events.topics import TopicPattern
from sysmonstm.rules.conditions import RuleError
from sysmonstm.rules.dispatch import Route
from sysmonstm.rules.model import AlertEvent, Observation, Rule
from sysmonstm.rules.runtime import RuleRuntime
from sysmonstm.rules.vector import Columns, columnar

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


class Engine:
    """Evaluates ``rules`` over observations; see the module docstring for the contract.

    ``idle_ms`` is added to twice a rule's longest duration to decide when a group without
    an alert is forgotten; ``max_groups`` caps the groups one rule holds. ``vectorize=False``
    evaluates every rule one observation at a time (``sysmonstm.rules.vector`` says which
    rules are otherwise evaluated column-wise; the outcome is the same). Raises
    ``ConfigError`` for duplicate names, bad topic patterns or inconsistent rules.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        clock: Clock = wall_clock_ms,
        idle_ms: int = 600_000,
        max_groups: int = 1_000_000,
        vectorize: bool = True,
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
        self._routes: dict[str, Route] = {}
        for rt in self._runtimes:
            rt.columnar = vectorize and columnar(rt.rule)
        self._columns = Columns([rt for rt in self._runtimes if rt.columnar], len(rules))
        self._ready: list[tuple[int, AlertEvent]] = []  # transitions not yet returned
        self._seq = 0  # observations taken so far (order keys: seq * len(rules) + rule)

    @property
    def rules(self) -> list[Rule]:
        """The rules, in declaration order."""
        return [rt.rule for rt in self._runtimes]

    @property
    def clock(self) -> Clock:
        """The clock ``observe`` and ``tick`` read."""
        return self._clock

    def _route(self, topic: str) -> Route:
        route = self._routes.get(topic)
        if route is None:
            hits = [rt for pattern, rts in self._patterns if pattern.matches(topic) for rt in rts]
            hits.sort(key=lambda rt: rt.index)
            if len(self._routes) >= _ROUTE_CACHE_MAX:
                self._routes.clear()
            route = self._routes[topic] = Route(hits)
        return route

    def reaches(self, topic: str) -> bool:
        """Whether any rule evaluates events on ``topic``."""
        return not self._route(topic).empty

    def observe(self, topic: str, observations: Iterable[Observation]) -> list[AlertEvent]:
        """Evaluate the observations carried by one event on ``topic``; return transitions
        (with those of anything deferred before)."""
        self.defer(topic, observations)
        return self.flush()

    def defer(self, topic: str, observations: Iterable[Observation]) -> None:
        """Take the observations of one event on ``topic``; ``flush`` evaluates them.

        Deferring many events and flushing once evaluates them column-wise, many samples per
        numpy call, with exactly the outcome of observing them one by one."""
        route = self._route(topic)
        if route.empty:
            return
        now_ms = self._clock()
        ready, columns, width = self._ready, self._columns, len(self._runtimes)
        found: list[AlertEvent] = []
        for obs in observations:
            binding = route.bind(obs)
            seq = self._seq
            self._seq += 1
            if binding.python:
                by_key = (obs.key,)  # the group of every rule without group_by
                for rt in binding.python:
                    rt.observe(obs, by_key, now_ms, found)
                    if found:
                        key = seq * width + rt.index
                        ready.extend((key, e) for e in found)
                        found.clear()
            if binding.rules:
                columns.gather(binding, obs, now_ms, seq, ready)

    @property
    def backlog(self) -> int:
        """Samples deferred and not yet evaluated."""
        return self._columns.backlog

    def flush(self) -> list[AlertEvent]:
        """Evaluate what was deferred; its transitions, in the order observing one event at a
        time would have produced them."""
        self._settle()
        ready, self._ready = self._ready, []
        return [e for _, e in ready]

    def _settle(self) -> None:
        """Evaluate what was deferred, keeping the transitions for the next ``flush``."""
        self._ready.extend(self._columns.flush())
        if len(self._ready) > 1:
            self._ready.sort(key=itemgetter(0))  # stable: a sample's own order is kept

    def _fresh(self) -> int:
        """An order key newer than every sample so far."""
        self._seq += 1
        return self._seq * len(self._runtimes)

    def tick(self, now_ms: int | None = None) -> list[AlertEvent]:
        """Apply the transitions time causes by ``now_ms`` (default: the clock); evict.
        Evaluates what was deferred first (its transitions come first)."""
        now = self._clock() if now_ms is None else now_ms
        out = self.flush()
        self._columns.expiring(now)
        for rt in self._runtimes:
            if rt.columnar:
                self._columns.tick(rt, now, self._fresh, out)
            else:
                rt.tick(now, out)
        return out

    def active(self) -> list[AlertEvent]:
        """Every pending or firing alert as it stands, by rule order then group key."""
        self._settle()
        events: list[AlertEvent] = []
        for rt in self._runtimes:
            events.extend(sorted(rt.snapshot(), key=lambda e: e.key))
        return events

    def stats(self) -> EngineStats:
        """Current sizes (for health checks and the bounded-memory tests)."""
        self._settle()
        groups = self._columns.groups_of
        return EngineStats(
            rules=len(self._runtimes),
            groups=sum(groups(rt) if rt.columnar else len(rt.groups) for rt in self._runtimes),
            active=sum(len(rt.active) for rt in self._runtimes),
            refused=sum(rt.refused for rt in self._runtimes),
        )
