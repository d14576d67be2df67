"""Sliding windows of many groups at once: ``sysmonstm.rules.window``'s semantics, in arrays.

Window ``i`` holds its samples in ring ``i`` of ``samples`` (for ``rate``: the increase since
the previous sample) and, for ``min``/``max``, its monotonic candidates in ring ``i`` of
``mono``. ``add`` and ``expire`` take arrays of window ids, each at most once, and do per
window exactly the float operations the one-window classes do, in the same order (running
sums updated sample by sample, recomputed with ``math.fsum`` once as many samples have left
as remain), so both give bit-identical results.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from sysmonstm.rules.model import Aggregate
from sysmonstm.rules.rings import Floats, Ints, Rings

KINDS = {agg: code for code, agg in enumerate(Aggregate, start=1)}
"""Window kind codes (0: no window)."""
_AVG, _MIN, _MAX, _COUNT, _SUM, _RATE = (KINDS[a] for a in Aggregate)
_RUNNING = (_AVG, _SUM, _RATE)


def _running(kind: Ints) -> npt.NDArray[np.bool_]:
    """Which of ``kind`` keep a running sum (``np.isin`` sorts; three tests do not)."""
    found: npt.NDArray[np.bool_] = (kind == _AVG) | (kind == _SUM) | (kind == _RATE)
    return found


Bools = npt.NDArray[np.bool_]  # kinds that keep a running sum of what their ring holds


class WindowColumns:
    """The windows of slots ``0 .. n-1`` (``kind`` 0: the slot has none)."""

    def __init__(self) -> None:
        self.samples = Rings()
        self.mono = Rings()
        self.kind: Ints = np.zeros(0, np.int64)
        self.span: Ints = np.zeros(0, np.int64)
        self.acc: Floats = np.zeros(0, np.float64)  # running sum / increase
        self.evicted: Ints = np.zeros(0, np.int64)
        self.prev: Floats = np.zeros(0, np.float64)  # rate: the last value (NaN: none yet)

    def ensure(self, n: int) -> None:
        self.samples.ensure(n)
        self.mono.ensure(n)
        have = len(self.kind)
        if n <= have:
            return
        grow = len(self.samples.off) - have
        self.kind = np.concatenate([self.kind, np.zeros(grow, np.int64)])
        self.span = np.concatenate([self.span, np.zeros(grow, np.int64)])
        self.acc = np.concatenate([self.acc, np.zeros(grow, np.float64)])
        self.evicted = np.concatenate([self.evicted, np.zeros(grow, np.int64)])
        self.prev = np.concatenate([self.prev, np.full(grow, np.nan)])

    def reset(self, ids: Ints, kind: Ints, span: Ints) -> None:
        """Make windows ``ids`` empty windows of ``kind`` over ``span`` ms."""
        self.samples.clear(ids)
        self.mono.clear(ids)
        self.kind[ids] = kind
        self.span[ids] = span
        self.acc[ids] = 0.0
        self.evicted[ids] = 0
        self.prev[ids] = np.nan

    def add(self, ids: Ints, t: Ints, v: Floats) -> tuple[Floats, Bools]:
        """Add sample ``v`` at ``t`` to each window and expire; the results and which are
        known (an unknown result is the classes' ``None``)."""
        kind = self.kind[ids]
        rate = kind == _RATE
        if rate.any():
            r_ids, r_v = ids[rate], v[rate]
            prev = self.prev[r_ids]
            delta = np.where(np.isnan(prev), 0.0, np.where(r_v >= prev, r_v - prev, r_v))
            self.prev[r_ids] = r_v
            v = v.copy()
            v[rate] = delta
        self.samples.push(ids, t, v)
        running = _running(kind)
        if running.any():
            self.acc[ids[running]] += v[running]
        extreme = (kind == _MIN) | (kind == _MAX)
        if extreme.any():
            self._push_mono(ids[extreme], t[extreme], v[extreme], kind[extreme] == _MAX)
        self.expire(ids, t)
        return self.results(ids)

    def _push_mono(self, ids: Ints, t: Ints, v: Floats, largest: Bools) -> None:
        """Drop the candidates ``v`` outdoes (binary search: they sit at the back), append."""
        mono = self.mono
        lo = np.zeros(len(ids), np.int64)
        hi = mono.size[ids].copy()
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            mid = (lo + hi) // 2
            idx = np.flatnonzero(open_)
            mv = mono.v[mono.at(ids[idx], mid[idx])]
            beaten = np.where(largest[idx], mv <= v[idx], mv >= v[idx])
            hi[idx] = np.where(beaten, mid[idx], hi[idx])
            lo[idx] = np.where(beaten, lo[idx], mid[idx] + 1)
        mono.size[ids] = lo
        mono.push(ids, t, v)

    def expire(self, ids: Ints, now: Ints) -> None:
        """Drop the samples that have left windows ``ids`` at times ``now``."""
        cutoff = now - self.span[ids]
        samples, mono = self.samples, self.mono
        live = ids
        cut = cutoff
        touched = []
        while len(live):
            has = samples.size[live] > 0
            live, cut = live[has], cut[has]
            out = samples.t[samples.front(live)] <= cut
            live, cut = live[out], cut[out]
            if not len(live):
                break
            running = _running(self.kind[live])
            if running.any():
                r = live[running]
                self.acc[r] -= samples.v[samples.front(r)]
            samples.pop_front(live)
            self.evicted[live] += 1
            touched.append(live)
        live, cut = ids, cutoff
        while len(live):
            has = mono.size[live] > 0
            live, cut = live[has], cut[has]
            out = mono.t[mono.front(live)] <= cut
            live, cut = live[out], cut[out]
            if len(live):
                mono.pop_front(live)
        if touched:
            self._recompute(touched[0])  # later rounds only hold windows of the first

    def _recompute(self, ids: Ints) -> None:
        """``math.fsum`` the running sums of windows where as many left as remain."""
        due = ids[(self.evicted[ids] >= self.samples.size[ids]) & (self.evicted[ids] > 0)]
        for i in due.tolist():
            if self.kind[i] in _RUNNING:
                self.acc[i] = math.fsum(self.samples.values(i).tolist())
            self.evicted[i] = 0

    def results(self, ids: Ints) -> tuple[Floats, Bools]:
        """Each window's aggregate and whether it is known."""
        kind = self.kind[ids]
        size = self.samples.size[ids]
        out = np.zeros(len(ids), np.float64)
        known = np.ones(len(ids), bool)
        count = kind == _COUNT
        out[count] = size[count]
        total = kind == _SUM
        out[total] = self.acc[ids[total]]
        avg = kind == _AVG
        n_avg = size[avg]
        known[avg] = n_avg > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            out[avg] = self.acc[ids[avg]] / n_avg
        extreme = (kind == _MIN) | (kind == _MAX)
        e_ids = ids[extreme]
        has = self.mono.size[e_ids] > 0
        known[extreme] = has
        e_out = np.zeros(len(e_ids), np.float64)
        e_out[has] = self.mono.v[self.mono.front(e_ids[has])]
        out[extreme] = e_out
        rate = kind == _RATE
        if rate.any():
            out[rate], known[rate] = self._rates(ids[rate])
        return out, known

    def _rates(self, ids: Ints) -> tuple[Floats, Bools]:
        samples = self.samples
        n = samples.size[ids]
        out = np.zeros(len(ids), np.float64)
        known = n >= 2
        k = ids[known]
        first = samples.front(k)
        elapsed = samples.t[samples.back(k)] - samples.t[first]
        ok = elapsed > 0
        value = (self.acc[k] - samples.v[first]) * 1000.0 / np.where(ok, elapsed, 1)
        out[known] = np.where(ok, value, 0.0)
        known[known] = ok
        return out, known
