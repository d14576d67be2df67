"""Many small deques of ``(time, value)`` in two shared arrays, operated on many at once.

Each ring has a region ``[off, off + cap)`` of the shared arrays, a ``head`` (index of its
oldest element within the region) and a ``size``. Operations take arrays of ring ids (each id
at most once per call) and act on all of them with a few numpy calls. A ring that fills up
moves to a region twice as large at the end of the arrays; the space it left is reclaimed
when the abandoned space outgrows what is in use (``compact``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

FIRST_CAP = 8


class Rings:
    """Ring buffers ``0 .. n-1``; ``ensure(n)`` makes room for more ids."""

    def __init__(self) -> None:
        self.t: Ints = np.zeros(1024, np.int64)
        self.v: Floats = np.zeros(1024, np.float64)
        self.top = 0  # first unused position of the shared arrays
        self.off: Ints = np.zeros(0, np.int64)
        self.cap: Ints = np.zeros(0, np.int64)
        self.head: Ints = np.zeros(0, np.int64)
        self.size: Ints = np.zeros(0, np.int64)

    def ensure(self, n: int) -> None:
        """Room for ring ids below ``n`` (new rings have no region until first used)."""
        have = len(self.off)
        if n <= have:
            return
        grow = max(n, 2 * have, 64) - have
        for name in ("off", "cap", "head", "size"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(grow, np.int64)]))

    def clear(self, ids: Ints) -> None:
        """Empty rings ``ids`` and give their regions up."""
        self.cap[ids] = 0
        self.head[ids] = 0
        self.size[ids] = 0

    def _reserve(self, n: int) -> int:
        if self.top + n > len(self.t):
            used = int(self.cap.sum())
            if used * 2 < self.top:
                self.compact()
            if self.top + n > len(self.t):
                size = max(2 * len(self.t), self.top + n)
                self.t = np.resize(self.t, size)
                self.v = np.resize(self.v, size)
        at = self.top
        self.top += n
        return at

    def _regrow(self, ids: Ints) -> None:
        """Give each ring of ``ids`` a region twice as large, its elements in order."""
        caps, sizes = self.cap[ids], self.size[ids]
        new_caps = np.maximum(FIRST_CAP, 2 * caps)
        at = self._reserve(int(new_caps.sum()))  # may compact: read positions after it
        starts = at + np.cumsum(new_caps) - new_caps
        moved = int(sizes.sum())
        if moved:
            ring = np.repeat(np.arange(len(ids)), sizes)
            k = np.arange(moved) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            src = self.off[ids][ring] + (self.head[ids][ring] + k) % caps[ring]
            dst = starts[ring] + k
            self.t[dst] = self.t[src]
            self.v[dst] = self.v[src]
        self.off[ids], self.cap[ids], self.head[ids] = starts, new_caps, 0

    def compact(self) -> None:
        """Move every ring to a fresh packed region (reclaims what grown rings left)."""
        live = np.flatnonzero(self.cap > 0)
        caps = self.cap[live]
        total = int(caps.sum())
        t = np.zeros(max(1024, 2 * total), np.int64)
        v = np.zeros(len(t), np.float64)
        starts = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
        for i, at in zip(live.tolist(), starts.tolist(), strict=True):
            size, cap = int(self.size[i]), int(self.cap[i])
            if size:
                pos = self.off[i] + (self.head[i] + np.arange(size)) % cap
                t[at : at + size] = self.t[pos]
                v[at : at + size] = self.v[pos]
            self.off[i], self.head[i] = at, 0
        self.t, self.v, self.top = t, v, total

    def push(self, ids: Ints, t: Ints, v: Floats) -> None:
        """Append ``(t, v)`` at the back of each ring of ``ids``."""
        full = ids[self.size[ids] >= self.cap[ids]]
        if len(full):
            self._regrow(full)
        pos = self.off[ids] + (self.head[ids] + self.size[ids]) % self.cap[ids]
        self.t[pos] = t
        self.v[pos] = v
        self.size[ids] += 1

    def front(self, ids: Ints) -> Ints:
        """Positions of the oldest elements (rings must not be empty)."""
        return self.off[ids] + self.head[ids]

    def back(self, ids: Ints) -> Ints:
        """Positions of the newest elements (rings must not be empty)."""
        return self.off[ids] + (self.head[ids] + self.size[ids] - 1) % self.cap[ids]

    def at(self, ids: Ints, k: Ints) -> Ints:
        """Positions of element ``k`` (0: oldest) of each ring."""
        return self.off[ids] + (self.head[ids] + k) % self.cap[ids]

    def pop_front(self, ids: Ints) -> None:
        self.head[ids] = (self.head[ids] + 1) % self.cap[ids]
        self.size[ids] -= 1

    def values(self, i: int) -> Floats:
        """Ring ``i``'s values, oldest first."""
        size = int(self.size[i])
        if not size:
            return np.zeros(0, np.float64)
        out: Floats = self.v[self.off[i] + (self.head[i] + np.arange(size)) % self.cap[i]]
        return out
