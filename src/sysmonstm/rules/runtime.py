"""One rule at run time: its groups and the lifecycle of their alerts.

Lifecycle per group: no alert → ``pending`` (condition met, waiting ``for``) → ``firing`` →
``resolved``; ``pending`` → ``cancelled`` when the condition lapses before ``for`` has
elapsed. With ``for = 0`` an alert goes straight to ``firing`` (no pending event).

Values are a step function: an observation's value holds until the group's next one. So a
pending alert whose ``for`` elapses between two observations fires at the exact deadline
(``started + for``), whether ``tick`` noticed it or the next observation did, and a firing
alert that met its clear condition resolves at ``cleared + keep_firing_for``. Before an
observation is evaluated, the transitions due up to its time are applied; hence the outcome
never depends on how often ``tick`` runs. ``tick`` advances each group on its own clock
(see ``Group.projected_ms``).

A firing alert stays firing while ``sustain`` holds (hysteresis, see ``conditions``). Once
the clear condition is met, ``keep_firing_for`` starts counting; if ``sustain`` holds again
meanwhile, the countdown is dropped and the alert simply carries on.

``absent`` runs on the engine clock (receive time): a group that has been seen fires once
nothing carrying the rule's field has arrived for ``absent_for`` (at exactly last seen +
``absent_for``), and resolves when something arrives. Its value is ``None`` while firing.

Windowed rules re-evaluate on ``tick`` the groups holding an alert (a count falls as
samples leave); rules for which decay may start an alert re-evaluate every group (see
``conditions.decay_may_trigger``). A window left empty keeps its last known result, except
``count``/``sum`` which fall to 0.

Memory is bounded: a group without an alert whose last observation is older than
``ttl_ms`` (twice the rule's longest duration plus ``idle_ms``) is evicted on ``tick``, and
past ``max_groups`` a new group evicts the least recently seen idle one, or is refused
(counted in ``refused``) when the oldest groups all hold alerts.
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

from sysmonstm.rules.conditions import as_number, as_scalar, compile_condition, decay_may_trigger
from sysmonstm.rules.model import Aggregate, AlertEvent, AlertState, Observation, Operator, Rule
from sysmonstm.rules.state import Alert, Group, GroupId, alert_event
from sysmonstm.rules.template import check_template
from sysmonstm.rules.window import new_window

_SKIP: Any = object()  # marks an observation the rule ignores
_EVICT_PROBES = 8  # how many old groups a new one may inspect for an idle victim
_Events = list[AlertEvent]


def _glob(patterns: tuple[str, ...]) -> Callable[[str], Any]:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


class RuleRuntime:
    """Evaluates one rule; ``observe``/``tick`` append the transitions to ``out``."""

    __slots__ = (
        "active",
        "coerce",
        "columnar",
        "condition",
        "counting",
        "field",
        "grouped",
        "groups",
        "index",
        "max_groups",
        "refused",
        "rule",
        "scan_all",
        "timed",
        "trigger",
        "ttl_ms",
        "watch",
        "where",
    )

    def __init__(self, rule: Rule, index: int, *, idle_ms: int, max_groups: int) -> None:
        self.rule = rule
        self.index = index
        self.condition = compile_condition(rule)
        check_template(rule)
        self.where = tuple((name, _glob(globs)) for name, globs in rule.where)
        longest = max(
            rule.window.ms if rule.window else 0,
            rule.for_ms,
            rule.keep_firing_for_ms,
            rule.absent_for_ms,
        )
        self.ttl_ms = 2 * longest + idle_ms
        self.max_groups = max_groups
        self.scan_all = decay_may_trigger(rule)
        self.counting = rule.window is not None and rule.window.agg is Aggregate.COUNT
        self.field = rule.field
        self.columnar = False  # evaluated by sysmonstm.rules.vector (the engine decides)
        self.grouped = bool(rule.group_by)
        self.coerce = self._coercion()
        self.trigger = self.condition.trigger if self.condition is not None else bool
        self.groups: OrderedDict[GroupId, Group] = OrderedDict()  # least recently seen first
        self.active: dict[GroupId, Group] = {}  # groups holding an alert
        self.timed: dict[GroupId, Group] = {}  # pending, or firing with a countdown
        self.watch: OrderedDict[GroupId, Group] = OrderedDict()  # absent: not yet firing
        self.refused = 0

    # -- observations ---------------------------------------------------------------

    def selects(self, fields: Mapping[str, Any]) -> bool:
        """Whether every ``where`` glob matches ``fields`` (the dispatcher asks, then plans)."""
        for name, match in self.where:
            value = fields.get(name)
            if value is None or not match(value if isinstance(value, str) else str(value)):
                return False
        return True

    def observe(  # noqa: PLR0912 - the engine's innermost loop, kept in one frame
        self, obs: Observation, by_key: GroupId, now_ms: int, out: _Events
    ) -> None:
        """Evaluate one observation the dispatcher routed here (topic and ``where`` already
        matched); ``by_key`` is ``(obs.key,)``, the group when the rule has no ``group_by``."""
        field = self.field
        raw = None if field is None else obs.fields.get(field)
        if type(raw) is float and raw == raw:  # noqa: PLR0124 - NaN is not a number
            sample: Any = 0.0 if self.counting else raw  # what every coercion makes of it
        else:
            sample = self._sample(raw)
            if sample is _SKIP:
                return
        gid = self._gid(obs) if self.grouped else by_key
        if gid is None:
            return
        group = self.groups.get(gid)
        if group is not None:
            self.groups.move_to_end(gid)  # least recently seen first
        else:
            group = self._new_group(gid, obs, now_ms)
            if group is None:
                return
        group.fields = obs.fields
        group.seen_ms = now_ms
        t = group.obs_ms = max(obs.time_ms, group.obs_ms)
        if self.condition is None:
            self._seen(group, sample, now_ms, out)
            return
        if group.alert is not None:
            self._advance(group, t, out)
        window = group.window
        if window is not None:
            sample = window.add_result(t, sample)
            if sample is None:
                return
        if group.alert is None:
            group.value = sample
            if self.trigger(sample):
                self._start(group, t, out)
        else:
            self._evaluate(group, sample, t, out)

    def _sample(self, raw: Any) -> Any:
        """What the rule tests for field value ``raw`` (not a plain float), or ``_SKIP``."""
        if self.field is None:
            return 0.0  # a count window without a field counts every observation
        if raw is None:
            return _SKIP
        sample = self.coerce(raw)
        return _SKIP if sample is None and self.condition is not None else sample

    def _coercion(self) -> Callable[[Any], Any]:
        """What this rule makes of a field value that is not a plain float (``None``: skip)."""
        rule = self.rule
        if self.condition is None:
            return as_scalar  # absent: anything carrying the field is a sign of life
        if rule.window is None:
            return self.condition.coerce
        if self.counting:
            return lambda raw: 0.0
        return as_number

    def _gid(self, obs: Observation) -> GroupId | None:
        names = self.rule.group_by
        values = []
        for name in names:
            value = obs.fields.get(name)
            if value is None:
                return None
            values.append(value if isinstance(value, str | int | float) else repr(value))
        return tuple(values)

    def _new_group(self, gid: GroupId, obs: Observation, now_ms: int) -> Group | None:
        """A new group for ``gid``, making room past ``max_groups``; ``None`` if refused."""
        if len(self.groups) >= self.max_groups and not self._make_room():
            self.refused += 1
            return None
        if self.rule.group_by:
            key = "|".join(str(v) for v in gid)
            pairs = tuple(zip(self.rule.group_by, gid, strict=True))
        else:
            key, pairs = obs.key, ()
        window = new_window(self.rule.window) if self.rule.window else None
        group = self.groups[gid] = Group(
            gid, key, pairs, window=window, now_ms=now_ms, obs_ms=obs.time_ms
        )
        return group

    def _make_room(self) -> bool:
        for gid, group in list(islice(self.groups.items(), _EVICT_PROBES)):
            if group.alert is None:
                self._drop(gid)
                return True
        return False

    def _drop(self, gid: GroupId) -> None:
        del self.groups[gid]
        self.watch.pop(gid, None)

    # -- transitions ----------------------------------------------------------------

    def _advance(self, group: Group, until_ms: int, out: _Events) -> None:
        """Apply the time-based transitions due at or before ``until_ms``."""
        alert = group.alert
        if alert is None:
            return
        rule = self.rule
        if alert.state is AlertState.PENDING:
            due = alert.started_ms + rule.for_ms
            if due <= until_ms:
                self._fire(group, alert, due, out)
        elif alert.cleared_ms is not None:
            due = alert.cleared_ms + rule.keep_firing_for_ms
            if due <= until_ms:
                self._end(group, alert, AlertState.RESOLVED, due, out)

    def _evaluate(self, group: Group, value: Any, t: int, out: _Events) -> None:
        assert self.condition is not None
        group.value = value
        alert = group.alert
        if alert is None:
            if self.condition.trigger(value):
                self._start(group, t, out)
        elif alert.state is AlertState.PENDING:
            if not self.condition.trigger(value):
                self._end(group, alert, AlertState.CANCELLED, t, out)
        elif self.condition.sustain(value):
            if alert.cleared_ms is not None:
                alert.cleared_ms = None
                self.timed.pop(group.gid, None)
        elif self.rule.keep_firing_for_ms == 0:
            self._end(group, alert, AlertState.RESOLVED, t, out)
        elif alert.cleared_ms is None:
            alert.cleared_ms = t
            self.timed[group.gid] = group

    def _start(self, group: Group, t: int, out: _Events) -> None:
        pending = self.rule.for_ms > 0
        state = AlertState.PENDING if pending else AlertState.FIRING
        alert = group.alert = Alert(group.new_instance_id(self.rule.name, t), state, t)
        self.active[group.gid] = group
        if pending:
            self.timed[group.gid] = group
        out.append(alert_event(self.rule, group, alert, state, time_ms=t))

    def _fire(self, group: Group, alert: Alert, t: int, out: _Events) -> None:
        alert.state = AlertState.FIRING
        alert.fired_ms = alert.changed_ms = t
        self.timed.pop(group.gid, None)
        out.append(alert_event(self.rule, group, alert, AlertState.FIRING, time_ms=t))

    def _end(self, group: Group, alert: Alert, state: AlertState, t: int, out: _Events) -> None:
        t = max(t, alert.changed_ms)
        group.alert = None
        self.active.pop(group.gid, None)
        self.timed.pop(group.gid, None)
        resolved = t if state is AlertState.RESOLVED else None
        out.append(alert_event(self.rule, group, alert, state, time_ms=t, resolved_ms=resolved))

    def _seen(self, group: Group, value: Any, now_ms: int, out: _Events) -> None:
        """An ``absent`` rule's group sent its field: watch it again, resolve its alert."""
        self.watch[group.gid] = group
        self.watch.move_to_end(group.gid)
        if group.alert is not None:
            group.value = value
            self._end(group, group.alert, AlertState.RESOLVED, now_ms, out)
        group.value = None

    # -- time -----------------------------------------------------------------------

    def tick(self, now_ms: int, out: _Events) -> None:
        """Transitions due by engine time ``now_ms``, then evict idle groups."""
        if self.rule.op is Operator.ABSENT:
            self._tick_absent(now_ms, out)
        elif self.rule.window is not None:
            for group in list((self.groups if self.scan_all else self.active).values()):
                t = group.projected_ms(now_ms)
                self._advance(group, t, out)
                assert group.window is not None
                group.window.expire(t)
                value = group.window.result()
                if value is not None:
                    self._evaluate(group, value, t, out)
        else:
            for group in list(self.timed.values()):
                self._advance(group, group.projected_ms(now_ms), out)
        self._evict(now_ms)

    def _tick_absent(self, now_ms: int, out: _Events) -> None:
        watch = self.watch
        while watch:
            gid, group = next(iter(watch.items()))
            due = group.seen_ms + self.rule.absent_for_ms
            if due > now_ms:
                break
            del watch[gid]
            group.value = None
            alert = group.alert = Alert(
                group.new_instance_id(self.rule.name, due), AlertState.FIRING, due
            )
            self.active[gid] = group
            out.append(alert_event(self.rule, group, alert, AlertState.FIRING, time_ms=due))

    def _evict(self, now_ms: int) -> None:
        groups = self.groups
        budget = len(groups)  # each group is looked at once per tick at most
        while groups and budget:
            budget -= 1
            gid, group = next(iter(groups.items()))
            if group.seen_ms + self.ttl_ms > now_ms:
                break
            if group.alert is not None:
                groups.move_to_end(gid)  # kept while its alert lives; looked at again later
            else:
                self._drop(gid)

    def snapshot(self) -> _Events:
        """The current state of every pending or firing alert of this rule."""
        events = []
        for group in self.active.values():
            alert = group.alert
            assert alert is not None
            events.append(
                alert_event(self.rule, group, alert, alert.state, time_ms=alert.changed_ms)
            )
        return events
