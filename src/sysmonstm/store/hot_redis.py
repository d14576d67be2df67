"""The hot tier on Redis: latest values, a window of recent batches and the sources seen,
and domain documents, shared by every aggregator and gateway pointed at the same server.

Layout and TTLs: ``store/redis_layout.py``, ``store/redis_docs.py`` and docs/storage.md. A
``write(batches)`` is one round trip (one ``EVALSHA`` per up to ``CALL_BATCHES`` batches,
pipelined), whatever the number of batches, frames or series. Every Redis or socket failure
is raised as ``BackendError``; nothing here retries beyond one immediate reconnect (the
caller, usually ``GuardedHot``, decides what an outage means).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import repeat
from typing import Any, NoReturn, cast

import msgspec
import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sysmonstm.errors import BackendError
from sysmonstm.store.hot import HotDocument, LatestPoint
from sysmonstm.store.model import LatestValue, SeriesBatch, SeriesPoints, SourceState
from sysmonstm.store.redis_docs import RedisDocs, mark_key
from sysmonstm.store.redis_layout import (
    Keys,
    Layout,
    decode_entry,
    decode_layout,
    encode_entry,
    encode_frame,
    encode_labels,
    make_layout,
    pack,
    parse_url,
    points_of,
    source_state,
)
from sysmonstm.store.redis_scripts import WRITE, Call

CALL_BATCHES = 256  # batches per EVALSHA: bounds how long one script holds the server
DAY_MS = 86_400_000
_CACHE_MAX = 10_000
_FAILURES = (RedisError, OSError, msgspec.DecodeError)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _newest(
    frames: dict[bytes, bytes], layouts: dict[bytes, tuple[str, ...] | None]
) -> dict[str, LatestPoint]:
    """A ``:latest`` hash (a frame per layout id) as the newest point per series. Frames
    whose layout is unknown (expired) or of another width are left out."""
    newest: dict[str, LatestPoint] = {}
    for layout_id, frame in frames.items():
        names = layouts.get(layout_id)
        if names is None or len(frame) != 8 * (len(names) + 1):
            continue
        t = int.from_bytes(frame[:8], "little", signed=True)
        values = np.frombuffer(frame, dtype="<f8", offset=8).tolist()
        if not newest:  # the usual case: one layout per source
            newest = dict(zip(names, map(LatestPoint, repeat(t), values), strict=True))
            continue
        for name, v in zip(names, values, strict=True):
            seen = newest.get(name)
            if seen is None or seen.t <= t:
                newest[name] = LatestPoint(t, v)
    return newest


class RedisHot:
    """Hot tier in Redis at ``url`` (``redis://host:6379/0?prefix=sysmonstm:``).

    ``window_ms`` bounds ``recent``; the recent set of a source expires ``2 * window`` after
    its last write, its latest values, info and its place in ``sources`` after
    ``expire_ms`` (a day) of silence. ``now_ms`` is the clock the window is cut with.
    """

    def __init__(
        self,
        url: str,
        *,
        window_ms: int = 300_000,
        expire_ms: int = DAY_MS,
        now_ms: Callable[[], int] = _wall_ms,
        connect_timeout_s: float = 1.0,
        timeout_s: float = 3.0,
    ) -> None:
        target = parse_url(url)
        self.url = url
        self.window_ms = window_ms
        self.expire_ms = expire_ms
        self.shown = target.shown
        self.keys = Keys(target.prefix)
        self._target = target
        self._now_ms = now_ms
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._client: aioredis.Redis | None = None
        self._layouts: dict[tuple[str, ...], Layout] = {}
        self._stored_layouts: set[str] = set()  # layout keys we wrote and believe still there
        self._series: dict[str, tuple[str, ...]] = {}  # layout key -> its series (a cache)
        self._columns: dict[str, dict[str, int]] = {}  # layout key -> column by series
        self._docs = RedisDocs(target.prefix, window_ms, expire_ms, now_ms)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, check the server answers and load the write script. May be called again
        after a failure (or to re-check a connection); raises ``BackendError``."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._target.client_url,
                socket_connect_timeout=self._connect_timeout_s,
                # redis-py would wrap every send and read in wait_for (a task each); each
                # call here is bounded by one asyncio.timeout instead (see _calling)
                socket_timeout=None,
                retry=Retry(NoBackoff(), 1),  # one reconnect covers a server restart
            )
        async with self._calling("open"):
            await self._client.ping()
            await WRITE.load(self._client)

    async def close(self) -> None:
        client, self._client = self._client, None
        self._stored_layouts.clear()
        if client is not None:
            async with self._calling("close"):
                await client.aclose()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendError(f"hot tier {self.shown} is not open")
        return self._client

    @contextlib.asynccontextmanager
    async def _calling(self, what: str) -> AsyncIterator[None]:
        """Bound a call by ``timeout_s`` and turn its failures into ``BackendError``."""
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except _FAILURES as exc:
            self._fail(what, exc)

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        self._stored_layouts.clear()  # the server may have restarted empty
        raise BackendError(
            f"hot tier {self.shown} {what} failed: {type(exc).__name__}: {exc}"
        ) from exc

    # -- writes ----------------------------------------------------------------------------

    async def write(self, batches: Sequence[SeriesBatch]) -> None:
        """Store ``batches`` (see ``HotTier.write``) in one round trip; a batch whose layout
        the server lost (evicted, flushed) costs a second one."""
        todo = [b for b in batches if len(b.times_ms)]
        if not todo:
            return
        client = self._redis()
        now = self._now_ms()
        async with self._calling("write"):
            missing = await self._write(client, todo, now)
            if missing:
                for batch in missing:
                    self._stored_layouts.discard(self._layout_key(batch))
                if await self._write(client, missing, now):
                    raise BackendError(f"hot tier {self.shown}: layouts vanish as written")

    async def _write(
        self, client: aioredis.Redis, batches: list[SeriesBatch], now: int
    ) -> list[SeriesBatch]:
        """Run the write script over ``batches``; return those whose layout was missing."""
        head = pack(
            (
                self.keys.prefix,
                2 * self.window_ms,
                self.expire_ms,
                self.expire_ms,  # a frame in :latest may refer to its layout that long
                f"({now - self.window_ms}",
                f"({now - self.expire_ms}",
            )
        )
        chunks = [batches[i : i + CALL_BATCHES] for i in range(0, len(batches), CALL_BATCHES)]
        calls = []
        for chunk in chunks:
            meta, blobs = [], []
            for batch in chunk:
                fields, blob = self._encode(batch, now)
                meta.append(fields)
                blobs.append(blob)
            calls.append(Call((), (head, pack(meta), *blobs)))
        results = await WRITE.run(client, calls)
        missing: list[SeriesBatch] = []
        for chunk, result in zip(chunks, results, strict=True):
            assert isinstance(result, list)
            missing.extend(chunk[int(i) - 1] for i in result)
        return missing

    def _encode(self, batch: SeriesBatch, now: int) -> tuple[tuple[object, ...], bytes]:
        """The batch's small fields for the script's msgpack, and its binary argument."""
        info = batch.source
        layout = self._layout(batch.series)
        layout_key = self.keys.layout(info.domain, info.id, layout.id)
        times = batch.times_ms
        row = int(np.argmax(times)) if len(times) > 1 else 0
        last_t = int(times[row])
        first_t = int(times.min()) if len(times) > 1 else last_t
        stored = layout_key in self._stored_layouts
        if not stored:
            if len(self._stored_layouts) > _CACHE_MAX:
                self._stored_layouts.clear()
            self._stored_layouts.add(layout_key)  # cleared again if the write fails
        frame = encode_frame(last_t, batch.values[row])
        fields = (
            info.domain,
            info.id,
            info.name,
            encode_labels(info.labels),
            batch.interval_ms,
            first_t,
            last_t,
            layout.id,
            "" if stored else layout.text,
            len(frame),
        )
        if last_t < now - self.window_ms:  # already out of the window: no entry
            return fields, frame
        return fields, frame + encode_entry(batch.sequence, layout.id, times, batch.values)

    def _layout(self, series: tuple[str, ...]) -> Layout:
        layout = self._layouts.get(series)
        if layout is None:
            if len(self._layouts) > _CACHE_MAX:
                self._layouts.clear()
            layout = self._layouts[series] = make_layout(series)
        return layout

    def _layout_key(self, batch: SeriesBatch) -> str:
        src = batch.source
        return self.keys.layout(src.domain, src.id, self._layout(batch.series).id)

    # -- reads -----------------------------------------------------------------------------

    async def sources(self, domain: str) -> list[SourceState]:
        """Sources seen within ``expire_ms``, most recently seen first (two round trips,
        three the first time a layout is met)."""
        client = self._redis()
        cutoff = self._now_ms() - self.expire_ms
        async with self._calling("sources"):
            ids = cast(
                list[tuple[bytes, float]],
                await client.zrevrangebyscore(
                    self.keys.sources(domain), "+inf", cutoff, withscores=True
                ),
            )
            if not ids:
                return []
            pipe = client.pipeline(transaction=False)
            for sid, _ in ids:
                source_id = sid.decode()
                pipe.hmget(
                    self.keys.info(domain, source_id), "name", "labels", "interval", "first_seen"
                )
                pipe.hkeys(self.keys.latest(domain, source_id))
            found: list[Any] = await pipe.execute()
            wanted = {
                self.keys.layout(domain, sid.decode(), lid.decode())
                for (sid, _), lids in zip(ids, found[1::2], strict=True)
                for lid in lids
            }
            layouts = await self._layouts_of(client, wanted)
            out = []
            for (sid, last_seen), info, lids in zip(ids, found[::2], found[1::2], strict=True):
                if info[3] is None:  # its info expired before its place in the set
                    continue
                source_id = sid.decode()
                names = (self.keys.layout(domain, source_id, lid.decode()) for lid in lids)
                series = [layouts[k] for k in names if k in layouts]
                out.append(source_state(domain, source_id, int(last_seen), info, series))
            return out

    async def latest(self, domain: str, source_id: str) -> list[LatestValue]:
        """The newest value per series: of the newest frame of each layout holding it."""
        newest = (await self.latest_values(domain, [source_id])).get(source_id, {})
        return [LatestValue(k, p.t, p.v) for k, p in sorted(newest.items())]

    async def latest_values(
        self, domain: str, source_ids: Sequence[str]
    ) -> dict[str, dict[str, LatestPoint]]:
        """``latest`` of every source in one round trip (two the first time a layout is
        met): the ``:latest`` hashes, pipelined."""
        if not source_ids:
            return {}
        client = self._redis()
        async with self._calling("latest"):
            pipe = client.pipeline(transaction=False)
            for source_id in source_ids:
                pipe.hgetall(self.keys.latest(domain, source_id))
            hashes = cast(list[dict[bytes, bytes]], await pipe.execute())
            keys = {
                (sid, lid): self.keys.layout(domain, sid, lid.decode())
                for sid, frames in zip(source_ids, hashes, strict=True)
                for lid in frames
            }
            known = await self._layouts_of(client, set(keys.values()))
        out = {}
        for sid, frames in zip(source_ids, hashes, strict=True):
            if frames:
                layouts = {lid: known.get(keys[(sid, lid)]) for lid in frames}
                out[sid] = _newest(frames, layouts)
        return out

    async def recent(self, domain: str, source_id: str, series: str, since_ms: int) -> SeriesPoints:
        """Raw points of one series from ``since_ms`` on, oldest first: the batches of the
        window whose newest time is at least ``since_ms``, cut at ``since_ms``."""
        client = self._redis()
        low = max(since_ms, self._now_ms() - self.window_ms)
        async with self._calling("recent"):
            pipe = client.pipeline(transaction=False)
            pipe.zrangebyscore(self.keys.recent(domain, source_id), low, "+inf")
            pipe.hget(self.keys.info(domain, source_id), "interval")
            raw: list[bytes]
            interval: bytes | None
            raw, interval = await pipe.execute()
            step = int(interval) if interval is not None else 0
            entries = [decode_entry(e) for e in raw]
            keys = {e.layout_id: self.keys.layout(domain, source_id, e.layout_id) for e in entries}
            layouts = await self._layouts_of(client, set(keys.values()))

        columns = {lid: self._columns[key] for lid, key in keys.items() if key in layouts}
        return points_of(entries, columns, series, since_ms, step)

    async def _layouts_of(
        self, client: aioredis.Redis, keys: set[str]
    ) -> dict[str, tuple[str, ...]]:
        """Series lists by layout key, from a cache (a layout id names its content) or the
        server; keys the server no longer has are left out."""
        unknown = [k for k in keys if k not in self._series]
        if unknown:
            found = cast(list[bytes | None], await client.mget(unknown))
            if len(self._series) > _CACHE_MAX:
                self._series.clear()
                self._columns.clear()
            for key, packed in zip(unknown, found, strict=True):
                if packed is not None:
                    names = decode_layout(packed)
                    self._series[key] = names
                    self._columns[key] = {name: i for i, name in enumerate(names)}
        return {k: self._series[k] for k in keys if k in self._series}

    # -- documents (store/redis_docs.py) ---------------------------------------------------

    async def put_states(self, domain: str, docs: Sequence[HotDocument]) -> None:
        if not docs:
            return
        client = self._redis()
        async with self._calling("put_states"):
            await self._docs.put_states(client, domain, docs)

    async def states(self, domain: str) -> list[HotDocument]:
        client = self._redis()
        async with self._calling("states"):
            return await self._docs.states(client, domain)

    async def add_recent(self, domain: str, docs: Sequence[HotDocument]) -> None:
        if not docs:
            return
        client = self._redis()
        async with self._calling("add_recent"):
            await self._docs.add_recent(client, domain, docs)

    async def recent_docs(self, domain: str, since_ms: int) -> list[HotDocument]:
        client = self._redis()
        async with self._calling("recent_docs"):
            return await self._docs.recent_docs(client, domain, since_ms)

    async def remember(self, domain: str, keys: Sequence[str], ttl_ms: int) -> None:
        if not keys:
            return
        client = self._redis()
        async with self._calling("remember"):
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.set(mark_key(self.keys.prefix, domain, key), b"1", px=ttl_ms)
            await pipe.execute()

    async def known(self, domain: str, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        client = self._redis()
        async with self._calling("known"):
            found = await client.mget([mark_key(self.keys.prefix, domain, k) for k in keys])
        return {k for k, v in zip(keys, found, strict=True) if v is not None}
