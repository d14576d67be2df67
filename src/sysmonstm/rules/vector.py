"""Column-wise evaluation: the common rules, many samples per numpy call.

A rule is evaluated here when it is numeric (``gt gte lt lte between``), reads a field and
groups by observation key; with or without a window, ``for``, ``clear`` and
``keep_firing_for``. Other rules stay with ``RuleRuntime.observe``. Semantics are
``sysmonstm.rules.runtime``'s, and so are the results, bit for bit (see the differential
tests): only the bookkeeping moves into arrays (``Slots``).

Samples are gathered as the engine defers observations (one plan lookup, two list extends
per observation) and evaluated by ``flush`` in waves: wave ``k`` holds every slot's ``k``-th
sample of the batch, so a slot's samples are taken in order and each wave touches each slot
once. A wave updates times, windows and values and tests the trigger for all its samples at
once; the few that change or may change an alert (the slot holds one, or the trigger holds)
go through ``RuleRuntime``'s own transition code on a ``Group`` made for the slot, which is
kept while it may hold an alert (and for the instance ids it numbers). Transitions carry the
order key of their sample (observation order, then rule order), so the engine returns them
in the order one-observation-at-a-time evaluation would have produced them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from sysmonstm.rules.colwindow import KINDS
from sysmonstm.rules.conditions import as_number
from sysmonstm.rules.model import Aggregate, AlertEvent, Observation, Operator, Rule
from sysmonstm.rules.rings import Floats, Ints
from sysmonstm.rules.runtime import RuleRuntime
from sysmonstm.rules.slots import Bools, Objects, Slots
from sysmonstm.rules.state import Group

_OPS = {Operator.GT: 1, Operator.GTE: 2, Operator.LT: 3, Operator.LTE: 4, Operator.BETWEEN: 5}
_COUNT = KINDS[Aggregate.COUNT]
_PROBES = 8  # as RuleRuntime: how many old groups a new one may inspect for an idle victim
Keyed = list[tuple[int, AlertEvent]]


def columnar(rule: Rule) -> bool:
    """Whether ``rule`` is evaluated column-wise."""
    return rule.op in _OPS and rule.field is not None and not rule.group_by


class Binding:
    """The rules an observation shape of one key reaches: ``python`` ones (evaluated by
    ``RuleRuntime.observe``) and column-evaluated ``rules``, bound to the key's slots."""

    __slots__ = ("epoch", "names", "python", "read", "ripe", "rules", "slots")

    def __init__(self, python: tuple[RuleRuntime, ...], rules: tuple[RuleRuntime, ...]) -> None:
        self.python = python
        self.rules = rules
        self.names = tuple(rt.field or "" for rt in rules)
        # the rules' fields of an observation of this shape, in one call (all are present:
        # the rules were picked because the shape carries their fields)
        self.read = itemgetter(*self.names) if len(rules) > 1 else None
        self.slots: list[int] = []
        self.ripe = False  # every slot is born: samples go straight to the batch
        self.epoch = -1


class Columns:
    """The column-evaluated rules of one engine, their slots and the deferred batch."""

    def __init__(self, runtimes: Sequence[RuleRuntime], rule_count: int) -> None:
        self.slots = Slots()
        self.rule_count = rule_count
        self.runtimes = {rt.index: rt for rt in runtimes}
        self.groups: dict[int, Group] = {}  # slot -> its Group, while it may hold an alert
        self._expiring: set[int] = set()  # rules with groups to evict at this tick
        # per rule index: comparison code, lo, hi, window kind and span, ttl
        n = rule_count
        self.op: Ints = np.zeros(n, np.int64)
        self.lo: Floats = np.zeros(n, np.float64)
        self.hi: Floats = np.zeros(n, np.float64)
        self.ttl: Ints = np.zeros(n, np.int64)
        self.scans: Bools = np.zeros(n, bool)  # tick re-tests every group (not just alerts)
        for rt in runtimes:
            r, rule = rt.index, rt.rule
            self.op[r] = _OPS[rule.op]
            band = rule.threshold if isinstance(rule.threshold, tuple) else (rule.threshold,) * 2
            self.lo[r], self.hi[r] = (float(x) for x in band)  # type: ignore[arg-type]
            self.ttl[r] = rt.ttl_ms
            self.scans[r] = rt.scan_all
        self._reset()

    def _reset(self) -> None:
        self.values: list[Any] = []
        self.ids: list[int] = []
        self.counts: list[int] = []
        self.seqs: list[int] = []
        self.times: list[int] = []
        self.nows: list[int] = []
        self.fields: list[Any] = []
        self._seen: set[int] = set()
        self._seen_upto = 0

    @property
    def backlog(self) -> int:
        """Samples deferred and not yet evaluated."""
        return len(self.ids)

    # -- gathering --------------------------------------------------------------------------

    def gather(self, b: Binding, obs: Observation, now_ms: int, seq: int, out: Keyed) -> None:
        """Defer the samples ``obs`` gives the rules of ``b`` (order key base ``seq``)."""
        if not b.ripe or b.epoch != self.slots.epoch:
            ids = self._prepare(b, obs, now_ms, seq, out)
        else:
            ids = b.slots
        if not ids:
            return
        fields = obs.fields
        if ids is b.slots:
            if b.read is not None:
                self.values.extend(b.read(fields))
            else:
                self.values.append(fields[b.names[0]])
        else:
            names = {s: rt.field for s, rt in zip(b.slots, b.rules, strict=True)}
            self.values.extend(fields.get(names[s] or "") for s in ids)
        self.ids.extend(ids)
        self.counts.append(len(ids))
        self.seqs.append(seq)
        self.times.append(obs.time_ms)
        self.nows.append(now_ms)
        self.fields.append(fields)

    def _prepare(
        self, b: Binding, obs: Observation, now_ms: int, seq: int, out: Keyed
    ) -> list[int]:
        """Bind ``b`` to live slots, give birth to those that get their first usable sample;
        the slots this observation feeds (a refused group's is left out)."""
        slots = self.slots
        b.slots = [slots.slot(rt.index, obs.key, *_window(rt.rule)) for rt in b.rules]
        b.epoch = slots.epoch
        feeds: list[int] = []
        for rt, i in zip(b.rules, b.slots, strict=True):
            if not slots.born[i]:
                if _sample(rt, obs.fields.get(rt.field or "")) is None:
                    continue
                if not self._admit(rt, seq, out):
                    rt.refused += 1
                    continue
                slots.birth(i, seq * self.rule_count + rt.index)
            feeds.append(i)
        b.ripe = all(slots.born[i] for i in b.slots)
        return b.slots if feeds == b.slots else feeds

    def _admit(self, rt: RuleRuntime, seq: int, out: Keyed) -> bool:
        """Room for one more group of ``rt``: past ``max_groups`` the least recently seen
        idle one of the oldest few goes, else the new one is refused."""
        slots = self.slots
        if slots.groups(rt.index) < rt.max_groups:
            return True
        oldest = slots.oldest(rt.index, _PROBES)
        deferred = self._deferred()
        if any(i in deferred for i in oldest):
            out.extend(self.flush())  # deferred samples move or alert some of them
            oldest = slots.oldest(rt.index, _PROBES)
        for i in oldest:
            if not slots.alert[i]:
                self._drop(i)
                return True
        return False

    def _deferred(self) -> set[int]:
        """The slots with deferred samples (kept up to date incrementally)."""
        seen, ids = self._seen, self.ids
        if len(ids) > self._seen_upto:
            seen.update(ids[self._seen_upto :])
            self._seen_upto = len(ids)
        return seen

    def _drop(self, i: int) -> None:
        self.groups.pop(i, None)
        self.slots.kill(i)

    # -- evaluation -------------------------------------------------------------------------

    def flush(self) -> Keyed:
        """Evaluate every deferred sample; the transitions with their order keys."""
        if not self.ids:
            return []
        slots = self.slots
        ids = np.array(self.ids, np.int64)
        per_obs = np.repeat(np.arange(len(self.counts)), self.counts)
        keys = np.array(self.seqs, np.int64)[per_obs] * self.rule_count + slots.rule[ids]
        t = np.array(self.times, np.int64)[per_obs]
        now = np.array(self.nows, np.int64)[per_obs]
        fields = np.empty(len(self.fields), object)
        fields[:] = self.fields
        values, usable = self._numbers(self.values, slots.windows.kind[ids] == _COUNT)
        self._reset()
        keep = np.flatnonzero(usable)
        if len(keep) < len(ids):
            ids, keys, t, now, per_obs = ids[keep], keys[keep], t[keep], now[keep], per_obs[keep]
            values = values[keep]
        batch = _Batch(ids, keys, t, now, values, fields[per_obs], slots.alert[ids])
        waves, order = _waves(ids)
        for wave in waves:
            self._wave(batch, wave)
        return self._transitions(batch, order)

    @staticmethod
    def _numbers(raw: list[Any], counting: Bools) -> tuple[Floats, Bools]:
        """The samples as floats and which are usable (``as_number``; a count any value)."""
        if set(map(type, raw)) <= {float}:
            values = np.array(raw, np.float64)
            usable = ~np.isnan(values) | counting
            return np.where(counting, 0.0, values), usable
        values = np.zeros(len(raw), np.float64)
        usable = np.zeros(len(raw), bool)
        for j, v in enumerate(raw):
            if counting[j]:
                usable[j] = v is not None
            elif (number := as_number(v)) is not None:
                values[j], usable[j] = number, True
        return values, usable

    def _wave(self, b: _Batch, w: Ints | slice) -> None:
        """Samples ``w`` (of distinct slots): times, windows and values in the columns; in
        ``b``, each one's time, result and whether it starts an alert (if none is held)."""
        slots = self.slots
        ids = b.ids[w]
        slots.touch[ids] = b.keys[w]
        slots.seen[ids] = b.now[w]
        t = np.maximum(b.t[w], slots.obs[ids])
        slots.obs[ids] = b.t[w] = t
        rule = slots.rule[ids]
        scans = self.scans[rule]
        if scans.any():  # kept for the groups tick re-tests (else a sample brings them)
            slots.fields[ids[scans]] = b.fields[w][scans]
        result, known = b.values[w], np.ones(len(ids), bool)
        windowed = slots.windows.kind[ids] > 0
        if windowed.any():
            result = result.copy()
            k = np.flatnonzero(windowed)
            result[k], known[k] = slots.windows.add(ids[k], t[k], result[k])
        b.result[w], b.known[w] = result, known
        quiet = known & ~b.held[w]
        slots.value[ids[quiet]] = result[quiet]
        b.fires[w] = quiet & _test(self.op[rule], self.lo[rule], self.hi[rule], result)

    def _transitions(self, b: _Batch, order: Ints) -> Keyed:
        """Run ``RuleRuntime``'s transition code on every sample of a slot from its first
        that holds or starts an alert on, in order key order; the transitions."""
        slots = self.slots
        marked = b.held | b.fires
        if not marked.any():
            return []
        # a slot's samples after a marked one are marked too (its alert may live on)
        ranked, hit = b.ids[order], marked[order].astype(np.int64)
        first = np.ones(len(ranked), bool)
        first[1:] = ranked[1:] != ranked[:-1]
        total = np.cumsum(hit)
        before = (total - hit)[first]
        run = np.cumsum(first) - 1
        marked[order] = total - before[run] > 0
        out: Keyed = []
        done: dict[int, Group] = {}
        for j in np.flatnonzero(marked).tolist():
            i = int(b.ids[j])
            rt = self.runtimes[int(slots.rule[i])]
            group = done.get(i) or self._group(i)
            done[i] = group
            t = int(b.t[j])
            group.fields = b.fields[j]
            group.seen_ms = int(b.now[j])
            group.obs_ms = t
            events: list[AlertEvent] = []
            if group.alert is not None:
                rt._advance(group, t, events)
            if b.known[j]:
                value = float(b.result[j])
                if group.alert is None:
                    group.value = value
                    if rt.trigger(value):
                        rt._start(group, t, events)
                else:
                    rt._evaluate(group, value, t, events)
            if events:
                key = int(b.keys[j])
                out.extend((key, e) for e in events)
        for i, group in done.items():
            slots.alert[i] = group.alert is not None
            if isinstance(group.value, float):
                slots.value[i] = group.value
        return out

    def _group(self, i: int) -> Group:
        """Slot ``i``'s ``Group`` (made on its first alert, kept while the slot lives: it
        numbers its alert instances). Fields, times and, unless it holds an alert, the value
        are the caller's to bring up to date."""
        group = self.groups.get(i)
        if group is None:
            slots = self.slots
            key = slots.keys[i]
            group = self.groups[i] = Group(
                (key,), key, (), window=None, now_ms=int(slots.seen[i]), obs_ms=int(slots.obs[i])
            )
        return group

    # -- time -------------------------------------------------------------------------------

    def tick(
        self, rt: RuleRuntime, now_ms: int, fresh: Callable[[], int], out: list[AlertEvent]
    ) -> None:
        """``RuleRuntime.tick`` for a column-evaluated rule (the engine flushed first);
        ``fresh()`` hands out order keys newer than every sample so far."""
        slots = self.slots
        if rt.rule.window is None:
            by_key = slots.slot_of.get(rt.index, {})
            for group in list(rt.timed.values()):
                rt._advance(group, group.projected_ms(now_ms), out)
                slots.alert[by_key[group.key]] = group.alert is not None
        else:
            self._tick_windows(rt, now_ms, out)
        if rt.index in self._expiring:
            self._evict(rt, slots.born_of(rt.index), now_ms, fresh)

    def expiring(self, now_ms: int) -> None:
        """Note the rules holding groups idle past their ``ttl`` (one pass over all slots);
        ``tick`` evicts only from those."""
        slots = self.slots
        n = slots.n
        rule = slots.rule[:n]
        idle = slots.born[:n] & (slots.seen[:n] + self.ttl[rule] <= now_ms)
        self._expiring = set(np.unique(rule[idle]).tolist()) if idle.any() else set()

    def _tick_windows(self, rt: RuleRuntime, now_ms: int, out: list[AlertEvent]) -> None:
        slots = self.slots
        if rt.scan_all:
            born = slots.born_of(rt.index)
            ids = born[np.argsort(slots.touch[born], kind="stable")]
        elif rt.active:
            by_key = slots.slot_of[rt.index]
            ids = np.array([by_key[g.key] for g in rt.active.values()], np.int64)
        else:
            return
        if not len(ids):
            return
        t = slots.obs[ids] + np.maximum(0, now_ms - slots.seen[ids])
        slots.windows.expire(ids, t)
        result, known = slots.windows.results(ids)
        for j, i in enumerate(ids.tolist()):
            group = self._group(i)
            if group.alert is None:  # only a rule that re-tests every group gets here
                value = float(slots.value[i])
                group.value = None if np.isnan(value) else value
                group.fields = slots.fields[i]
                group.seen_ms, group.obs_ms = int(slots.seen[i]), int(slots.obs[i])
            rt._advance(group, int(t[j]), out)
            if known[j]:
                rt._evaluate(group, float(result[j]), int(t[j]), out)
            slots.alert[i] = group.alert is not None
            if group.value is not None:
                slots.value[i] = float(group.value)

    def _evict(self, rt: RuleRuntime, born: Ints, now_ms: int, fresh: Callable[[], int]) -> None:
        """Drop the idle groups ``RuleRuntime._evict`` would: from the least recently seen
        up to the first one still within ``ttl``; expired ones holding alerts are kept and
        become the most recently seen."""
        slots = self.slots
        expired = slots.seen[born] + self.ttl[rt.index] <= now_ms
        within = born[~expired]
        cut = slots.touch[within].min() if len(within) else None
        old = born[expired]
        if cut is not None:
            old = old[slots.touch[old] < cut]
        old = old[np.argsort(slots.touch[old], kind="stable")]
        for i in old.tolist():
            if slots.alert[i]:
                slots.retouch(i, fresh())
            else:
                self._drop(i)

    def groups_of(self, rt: RuleRuntime) -> int:
        return self.slots.groups(rt.index)


def _window(rule: Rule) -> tuple[int, int]:
    """The window kind code and span of ``rule`` ((0, 0): none)."""
    return (KINDS[rule.window.agg], rule.window.ms) if rule.window else (0, 0)


def _sample(rt: RuleRuntime, raw: Any) -> float | None:
    """What ``RuleRuntime.observe`` takes from ``raw`` for a column-evaluated rule."""
    if raw is None:
        return None
    return 0.0 if rt.counting else as_number(raw)


def _test(op: Ints, lo: Floats, hi: Floats, v: Floats) -> Bools:
    """The trigger of each sample's rule (codes of ``_OPS``)."""
    with np.errstate(invalid="ignore"):
        return np.select(
            [op == 1, op == 2, op == 3, op == 4],
            [v > lo, v >= lo, v < lo, v <= lo],
            (lo <= v) & (v <= hi),
        )


def _waves(ids: Ints) -> tuple[list[Ints | slice], Ints]:
    """The waves of ``ids`` (each slot at most once per wave, a slot's samples in order) and
    the order that sorts ``ids`` stably."""
    order = np.argsort(ids, kind="stable")
    ranked = ids[order]
    first = np.ones(len(ids), bool)
    first[1:] = ranked[1:] != ranked[:-1]
    if first.all():
        return [slice(None)], order
    starts = np.flatnonzero(first)
    run = np.repeat(starts, np.diff(np.append(starts, len(ids))))
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids)) - run
    return [np.flatnonzero(rank == k) for k in range(int(rank.max()) + 1)], order


class _Batch:
    """The usable deferred samples of one flush, in order key order, and what the waves
    found for each."""

    __slots__ = ("fields", "fires", "held", "ids", "keys", "known", "now", "result", "t", "values")

    def __init__(
        self,
        ids: Ints,
        keys: Ints,
        t: Ints,
        now: Ints,
        values: Floats,
        fields: Objects,
        held: Bools,
    ) -> None:
        self.ids, self.keys, self.t, self.now = ids, keys, t, now
        self.values, self.fields, self.held = values, fields, held  # held: at the start
        n = len(ids)
        self.result: Floats = np.zeros(n, np.float64)
        self.known: Bools = np.zeros(n, bool)
        self.fires: Bools = np.zeros(n, bool)
