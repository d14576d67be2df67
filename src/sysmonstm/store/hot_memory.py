"""The embedded hot tier: per source, the latest value of every series and a window of
recent batches, all in memory. Work per batch is O(series), never a Python loop per frame."""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from sysmonstm.store.hot import HotDocument, LatestPoint
from sysmonstm.store.hot_docs import member, normalized
from sysmonstm.store.model import (
    LatestValue,
    SeriesBatch,
    SeriesPoints,
    SourceInfo,
    SourceState,
    Tier,
)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Source:
    info: SourceInfo
    first_seen_ms: int
    last_seen_ms: int
    interval_ms: int
    latest: dict[str, LatestPoint] = field(default_factory=dict)
    batches: deque[SeriesBatch] = field(default_factory=deque)


class MemoryHot:
    """Hot tier in this process. ``window_ms`` bounds what ``recent`` can return."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        window_ms: int = 300_000,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.url = url
        self.window_ms = window_ms
        self._now_ms = now_ms
        self._sources: dict[tuple[str, str], _Source] = {}
        self._columns: dict[tuple[str, ...], dict[str, int]] = {}
        self._states: dict[str, dict[str, HotDocument]] = {}
        # per domain: (time, member bytes, document), sorted as Redis sorts its members
        self._recent: dict[str, list[tuple[int, bytes, HotDocument]]] = {}
        self._marks: dict[str, dict[str, int]] = {}  # per domain: key → expiry (ms)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._sources.clear()
        self._states.clear()
        self._recent.clear()
        self._marks.clear()

    async def write(self, batches: Sequence[SeriesBatch]) -> None:
        now = self._now_ms()
        for batch in batches:
            if len(batch.times_ms) == 0:
                continue
            key = (batch.source.domain, batch.source.id)
            first_t, last_t = int(batch.times_ms.min()), int(batch.times_ms.max())
            src = self._sources.get(key)
            if src is None:
                src = _Source(batch.source, first_t, last_t, batch.interval_ms)
                self._sources[key] = src
            src.info = batch.source
            src.interval_ms = batch.interval_ms
            self._update_latest(src, batch, last_t)
            src.last_seen_ms = max(src.last_seen_ms, last_t)
            src.first_seen_ms = min(src.first_seen_ms, first_t)
            if last_t >= now - self.window_ms:
                src.batches.append(batch)
            self._trim(src, now)

    def _update_latest(self, src: _Source, batch: SeriesBatch, last_t: int) -> None:
        row = int(np.argmax(batch.times_ms))
        values = batch.values[row].tolist()
        if last_t >= src.last_seen_ms:
            src.latest.update(
                zip(batch.series, map(LatestPoint, repeat(last_t), values), strict=True)
            )
            return
        for name, v in zip(batch.series, values, strict=True):  # a late batch: per series
            seen = src.latest.get(name)
            if seen is None or seen.t <= last_t:
                src.latest[name] = LatestPoint(last_t, v)

    def _trim(self, src: _Source, now: int) -> None:
        cutoff = now - self.window_ms
        while src.batches and int(src.batches[0].times_ms.max()) < cutoff:
            src.batches.popleft()

    async def sources(self, domain: str) -> list[SourceState]:
        found = [
            SourceState(s.info, s.first_seen_ms, s.last_seen_ms, s.interval_ms, len(s.latest))
            for (d, _), s in self._sources.items()
            if d == domain
        ]
        return sorted(found, key=lambda s: s.last_seen_ms, reverse=True)

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        src = self._sources.get((domain, source_id))
        if src is None:
            return []
        return [LatestValue(k, p.t, p.v) for k, p in sorted(src.latest.items())]

    async def latest_values(
        self, domain: str, source_ids: Sequence[str]
    ) -> dict[str, dict[str, LatestPoint]]:
        found = ((sid, self._sources.get((domain, sid))) for sid in source_ids)
        return {sid: dict(src.latest) for sid, src in found if src is not None}

    async def recent(self, domain: str, source_id: str, series: str, since_ms: int) -> SeriesPoints:
        src = self._sources.get((domain, source_id))
        if src is None:
            return SeriesPoints.empty(series, Tier.HOT, 0)
        self._trim(src, self._now_ms())
        times: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for batch in src.batches:
            col = self._column(batch.series).get(series)
            if col is None:
                continue
            keep = batch.times_ms >= since_ms
            if keep.any():
                times.append(batch.times_ms[keep])
                values.append(batch.values[keep, col])
        if not times:
            return SeriesPoints.empty(series, Tier.HOT, src.interval_ms)
        t = np.concatenate(times)
        v = np.concatenate(values)
        order = np.argsort(t, kind="stable")
        return SeriesPoints.raw(series, Tier.HOT, src.interval_ms, t[order], v[order])

    def _column(self, series: tuple[str, ...]) -> dict[str, int]:
        cols = self._columns.get(series)
        if cols is None:
            if len(self._columns) > 10_000:
                self._columns.clear()
            cols = {name: i for i, name in enumerate(series)}
            self._columns[series] = cols
        return cols

    async def put_states(self, domain: str, docs: Sequence[HotDocument]) -> None:
        held = self._states.setdefault(domain, {})
        for doc in docs:
            old = held.get(doc.key)
            if old is None or old.time_ms <= doc.time_ms:
                held[doc.key] = normalized(doc)

    async def states(self, domain: str) -> list[HotDocument]:
        found = self._states.get(domain, {}).values()
        return sorted(found, key=lambda d: (-d.time_ms, d.key))

    async def add_recent(self, domain: str, docs: Sequence[HotDocument]) -> None:
        cutoff = self._now_ms() - self.window_ms
        held = self._recent.setdefault(domain, [])
        for doc in docs:
            if doc.time_ms < cutoff:
                continue
            entry = (doc.time_ms, member(doc), normalized(doc))
            at = bisect.bisect_left(held, entry[:2], key=lambda e: e[:2])
            if at < len(held) and held[at][:2] == entry[:2]:
                continue  # the same document again
            held.insert(at, entry)
        self._trim_recent(held, cutoff)

    async def recent_docs(self, domain: str, since_ms: int) -> list[HotDocument]:
        held = self._recent.get(domain, [])
        self._trim_recent(held, self._now_ms() - self.window_ms)
        start = bisect.bisect_left(held, since_ms, key=lambda e: e[0])
        return [doc for _, _, doc in held[start:]]

    @staticmethod
    def _trim_recent(held: list[tuple[int, bytes, HotDocument]], cutoff: int) -> None:
        drop = bisect.bisect_left(held, cutoff, key=lambda e: e[0])
        del held[:drop]

    # -- marks ---------------------------------------------------------------------------

    async def remember(self, domain: str, keys: Sequence[str], ttl_ms: int) -> None:
        marks = self._marks.setdefault(domain, {})
        until = self._now_ms() + ttl_ms
        for key in keys:
            marks.pop(key, None)
            marks[key] = until  # insertion order = expiry order (one ttl per caller)
        now = self._now_ms()
        while marks:
            oldest, expiry = next(iter(marks.items()))
            if expiry > now:
                break
            del marks[oldest]

    async def known(self, domain: str, keys: Sequence[str]) -> set[str]:
        marks = self._marks.get(domain, {})
        now = self._now_ms()
        return {k for k in keys if marks.get(k, 0) > now}
