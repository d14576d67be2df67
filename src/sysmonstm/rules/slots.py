"""Per-group state of the column-evaluated rules, one array element per (rule, group) slot.

A slot is allocated when a plan first binds a rule to an observation key, and is *born* when
the rule first gets a sample it can use for that key: from then on it is a group in the sense
of ``sysmonstm.rules.runtime`` (counted, aged, evicted). Slot ids are never reused; ``compact``
would be the place to renumber them, and ``epoch`` changes whenever a slot dies, so plans
holding slot ids know to look again.

Least-recently-seen order is the order of ``touch`` (the order key of the last sample; an
alert kept through an eviction gets a new, larger one), never maintained per sample.
``oldest`` reads it from a per-rule queue sorted by ``touch`` when it was built: an entry
whose slot was touched since is stale and skipped, and every entry still valid is older than
anything touched since, so the front of the queue is the least recently seen group. The
queue is rebuilt (a sort of the rule's groups) only when it holds too few valid entries.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from sysmonstm.rules.colwindow import WindowColumns
from sysmonstm.rules.rings import Floats, Ints

Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]


class Slots:
    """The columns of every slot, and which slots each rule has."""

    def __init__(self) -> None:
        self.n = 0  # slots allocated
        self.rule: Ints = np.zeros(0, np.int64)  # the rule's index in the engine
        self.alive: Bools = np.zeros(0, bool)
        self.born: Bools = np.zeros(0, bool)
        self.alert: Bools = np.zeros(0, bool)  # holds a pending or firing alert
        self.seen: Ints = np.zeros(0, np.int64)  # engine clock at the last sample
        self.obs: Ints = np.zeros(0, np.int64)  # newest observation time
        self.touch: Ints = np.zeros(0, np.int64)  # order key of the last touch
        self.value: Floats = np.zeros(0, np.float64)  # the last value tested
        self.fields: Objects = np.zeros(0, object)  # the last observation's fields
        self.keys: list[str] = []
        self.windows = WindowColumns()
        self.slot_of: dict[int, dict[str, int]] = {}  # rule -> observation key -> slot
        self.members: dict[int, dict[int, None]] = {}  # rule -> born slots
        self._queues: dict[int, deque[tuple[int, int]]] = {}  # rule -> (slot, touch) by age
        self.epoch = 0

    def _grow(self) -> None:
        size = max(64, 2 * len(self.rule))
        extra = size - len(self.rule)
        for name in ("rule", "seen", "obs", "touch"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, np.int64)]))
        for name in ("alive", "born", "alert"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, bool)]))
        self.value = np.concatenate([self.value, np.full(extra, np.nan)])
        self.fields = np.concatenate([self.fields, np.full(extra, None, object)])
        self.windows.ensure(size)

    def slot(self, rule: int, key: str, kind: int, span: int) -> int:
        """The live slot of ``rule`` for observation ``key``, allocated if need be."""
        by_key = self.slot_of.setdefault(rule, {})
        found = by_key.get(key)
        if found is not None:
            return found
        if self.n >= len(self.rule):
            self._grow()
        i = self.n
        self.n += 1
        self.rule[i] = rule
        self.alive[i] = True
        self.keys.append(key)
        ids = np.array([i], np.int64)
        self.windows.reset(ids, np.array([kind], np.int64), np.array([span], np.int64))
        by_key[key] = i
        return i

    def birth(self, i: int, touch: int) -> None:
        """Slot ``i`` becomes a group, the most recently seen of its rule."""
        self.born[i] = True
        self.touch[i] = touch
        self.members.setdefault(int(self.rule[i]), {})[i] = None

    def kill(self, i: int) -> None:
        """Slot ``i`` is gone (evicted): its key gets a fresh slot if it comes back."""
        rule = int(self.rule[i])
        self.members[rule].pop(i, None)
        del self.slot_of[rule][self.keys[i]]
        self.alive[i] = self.born[i] = self.alert[i] = False
        self.fields[i] = None
        self.windows.samples.clear(np.array([i], np.int64))
        self.windows.mono.clear(np.array([i], np.int64))
        self.epoch += 1

    def groups(self, rule: int) -> int:
        """How many groups (born slots) ``rule`` holds."""
        return len(self.members.get(rule, ()))

    def born_of(self, rule: int) -> Ints:
        """The born slots of ``rule``."""
        members = self.members.get(rule, {})
        return np.fromiter(members, np.int64, len(members))

    def oldest(self, rule: int, count: int) -> list[int]:
        """Up to ``count`` born slots of ``rule``, least recently seen first."""
        queue = self._queues.get(rule)
        found: list[int] = []
        rebuilt = False
        while len(found) < count:
            if not queue:
                if rebuilt:
                    break
                queue = self._queues[rule] = self._queue(rule, found)
                rebuilt = True
                continue
            i, t = queue.popleft()
            if self.born[i] and self.touch[i] == t and self.rule[i] == rule:
                found.append(i)
        if queue is not None:
            queue.extendleft((i, int(self.touch[i])) for i in reversed(found))
        return found

    def _queue(self, rule: int, skip: list[int]) -> deque[tuple[int, int]]:
        ids = self.born_of(rule)
        if skip:
            ids = ids[~np.isin(ids, skip)]
        touch = self.touch[ids]
        order = np.argsort(touch, kind="stable")
        return deque(zip(ids[order].tolist(), touch[order].tolist(), strict=True))

    def retouch(self, i: int, touch: int) -> None:
        """Make slot ``i`` the most recently seen of its rule (an alert kept by eviction)."""
        self.touch[i] = touch
