"""Which rules an observation reaches: a plan per observation shape, built once and reused.

An observation reaches a rule when the rule's topic pattern matches the event's topic (one
``Route`` per concrete topic), when it carries the rule's field (or the rule has none: a
count), and when every ``where`` glob of the rule matches. The last two depend only on the
observation's field names and on the values of the fields some rule's ``where`` names, so
the rules reached, in declaration order, are worked out once per such shape and kept with
the observation key (``Binding``: the column-evaluated ones also hold the key's slots). A
stream of similar observations (a host's frames, a merchant's payments) then costs one
dictionary lookup per observation instead of a test per rule: a fleet-wide rule book with
per-rack or per-host ``where`` selectors costs per sample only the rules that select it.

Bindings are kept only when every ``where`` value is a string or missing (the glob tests
``str(value)``, and ``1``, ``1.0`` and ``True`` are equal keys with different strings);
other observations are planned each time. The cache is bounded per route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sysmonstm.rules.model import Observation
from sysmonstm.rules.runtime import RuleRuntime
from sysmonstm.rules.vector import Binding

PLANS_MAX = 200_000
"""Observation shapes (with their keys) remembered per route; past it the cache starts over."""
WHERE_VALUES_MAX = 1024
"""``where`` value sets remembered per shape, likewise."""


class _Shape:
    """One key's observations with one set of field names: the ``where`` fields among them
    (read with one ``itemgetter`` call), and the binding per set of their values."""

    __slots__ = ("bindings", "last", "wheres")

    def __init__(self, names: tuple[str, ...]) -> None:
        # A getter of two or more names returns a tuple; one name is asked for twice so that
        # it does too.
        self.wheres = itemgetter(*names, *names[:1] * (len(names) == 1)) if names else None
        self.bindings: dict[tuple[Any, ...], Binding] = {}
        self.last: tuple[tuple[Any, ...], Binding] | None = None


class Route:
    """The rules one concrete topic reaches, and the plans of the shapes seen on it."""

    __slots__ = ("always", "by_field", "shapes", "where_names")

    def __init__(self, runtimes: Sequence[RuleRuntime]) -> None:
        by_field: dict[str, list[RuleRuntime]] = {}
        always: list[RuleRuntime] = []
        names: set[str] = set()
        for rt in runtimes:
            names.update(name for name, _ in rt.rule.where)
            if rt.rule.field is None:
                always.append(rt)
            else:
                by_field.setdefault(rt.rule.field, []).append(rt)
        self.by_field = {name: tuple(rts) for name, rts in by_field.items()}
        self.always = tuple(always)
        self.where_names = tuple(sorted(names))
        self.shapes: dict[tuple[str, tuple[str, ...]], _Shape] = {}

    @property
    def empty(self) -> bool:
        return not self.by_field and not self.always

    def bind(self, obs: Observation) -> Binding:
        """The rules ``obs`` reaches, in declaration order, bound to its key."""
        fields = obs.fields
        head = (obs.key, tuple(fields))
        shape = self.shapes.get(head)
        if shape is None:
            if len(self.shapes) >= PLANS_MAX:
                self.shapes.clear()
            present = tuple(n for n in self.where_names if n in fields)
            shape = self.shapes[head] = _Shape(present)
        wheres = shape.wheres(fields) if shape.wheres is not None else ()
        last = shape.last
        if last is not None and last[0] == wheres:
            return last[1]
        found = self._cached(shape, wheres, fields)
        if all(type(v) is str for v in wheres):
            shape.last = (wheres, found)
        return found

    def _cached(self, shape: _Shape, wheres: tuple[Any, ...], fields: Mapping[str, Any]) -> Binding:
        if not all(type(v) is str for v in wheres):
            return self._binding(fields)  # never cached (see the module docstring)
        found = shape.bindings.get(wheres)
        if found is None:
            if len(shape.bindings) >= WHERE_VALUES_MAX:
                shape.bindings.clear()
            found = shape.bindings[wheres] = self._binding(fields)
        return found

    def _binding(self, fields: Mapping[str, Any]) -> Binding:
        hits = self._select(fields)
        return Binding(
            tuple(rt for rt in hits if not rt.columnar), tuple(rt for rt in hits if rt.columnar)
        )

    def _select(self, fields: Mapping[str, Any]) -> list[RuleRuntime]:
        by_field = self.by_field
        # Walk whichever side is smaller: few rules over wide observations, or the reverse.
        if len(by_field) <= len(fields):
            hits = [rt for name, rts in by_field.items() if name in fields for rt in rts]
        else:
            hits = [rt for name in fields for rt in by_field.get(name, ())]
        hits.extend(self.always)
        hits = [rt for rt in hits if rt.selects(fields)]
        hits.sort(key=lambda rt: rt.index)  # transitions come out in declaration order
        return hits
