"""How the Redis hot tier lays out keys and values (see docs/storage.md, "Redis hot tier").

Per source, under ``{prefix}hot:{domain}:{source}``:

- ``:latest`` hash: field = layout id, value = the newest frame of that layout: its time
  (int64) then one float64 per series, little endian. A source sends one layout almost
  always, so this is one field rewritten whole per batch (a field per series would cost
  the server a listpack scan per series). The newest value of a series is that of the
  newest frame holding it.
- ``:recent`` sorted set: score = the batch's newest time, member = an entry (msgpack:
  sequence, layout id, times, row-major values)
- ``:info`` hash: ``name``, ``labels`` (JSON pairs), ``interval``, ``first_seen``
- ``:layout:{id}`` string: the JSON list of series keys a frame or entry follows; the id is
  a hash of that list, so every aggregator names the same layout the same way

and per domain ``{prefix}hot:{domain}:sources``, a sorted set of source ids by last seen.
Domain names must not contain ``:`` (they are code-defined: ``metrics``, ``payments``, ...).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import numpy as np

from sysmonstm.errors import ConfigError
from sysmonstm.store.model import (
    Float64Array,
    Int64Array,
    SeriesPoints,
    SourceInfo,
    SourceState,
    Tier,
)

DEFAULT_PREFIX = "sysmonstm:"

_LABELS = msgspec.json.Decoder(list[tuple[str, str]])
_SERIES = msgspec.json.Decoder(list[str])
_ENTRY = msgspec.msgpack.Decoder(tuple[int, str, bytes, bytes])
_ENCODE = msgspec.msgpack.Encoder()
_JSON = msgspec.json.Encoder()
_TIME = struct.Struct("<q")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A hot-tier URL split into what redis-py connects to and our own key prefix."""

    client_url: str
    prefix: str
    shown: str  # the URL without credentials, for messages and logs


def parse_url(url: str) -> RedisTarget:
    """``redis[s]://[user:pass@]host:port/db?prefix=sysmonstm:`` (default prefix
    ``sysmonstm:``). Other query parameters go to redis-py (``socket_timeout=…``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"not a Redis URL: {parts.scheme}://…")
    prefix = DEFAULT_PREFIX
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "prefix":
            prefix = value
        else:
            rest.append((key, value))
    client = urlunsplit(parts._replace(query=urlencode(rest)))
    host = parts.netloc.rpartition("@")[2]
    shown = urlunsplit(parts._replace(netloc=host, query=f"prefix={prefix}"))
    return RedisTarget(client, prefix, shown)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str

    def sources(self, domain: str) -> str:
        return f"{self.prefix}hot:{domain}:sources"

    def base(self, domain: str, source_id: str) -> str:
        return f"{self.prefix}hot:{domain}:{source_id}"

    def latest(self, domain: str, source_id: str) -> str:
        return self.base(domain, source_id) + ":latest"

    def recent(self, domain: str, source_id: str) -> str:
        return self.base(domain, source_id) + ":recent"

    def info(self, domain: str, source_id: str) -> str:
        return self.base(domain, source_id) + ":info"

    def layout(self, domain: str, source_id: str, layout_id: str) -> str:
        return f"{self.base(domain, source_id)}:layout:{layout_id}"


@dataclass(frozen=True, slots=True)
class Layout:
    """A list of series keys as JSON text, and the id it is stored under."""

    id: str
    text: str


def make_layout(series: tuple[str, ...]) -> Layout:
    packed = _JSON.encode(series)
    return Layout(hashlib.blake2b(packed, digest_size=8).hexdigest(), packed.decode())


def decode_layout(packed: bytes) -> tuple[str, ...]:
    return tuple(_SERIES.decode(packed))


def pack(value: object) -> bytes:
    """msgpack for the write script (its decoder knows no ``bin``: strings and numbers)."""
    return _ENCODE.encode(value)


def encode_labels(labels: tuple[tuple[str, str], ...]) -> str:
    return _JSON.encode(labels).decode()


def decode_labels(packed: bytes) -> tuple[tuple[str, str], ...]:
    return tuple(_LABELS.decode(packed))


def encode_frame(time_ms: int, values: Float64Array) -> bytes:
    """A ``:latest`` value: the time, then every series' value in layout order."""
    return _TIME.pack(time_ms) + values.astype("<f8", copy=False).tobytes()


def encode_entry(
    sequence: int, layout_id: str, times_ms: Int64Array, values: Float64Array
) -> bytes:
    """One batch of the recent window: sequence (keeps members unique), layout id, times
    and the row-major value matrix as raw little-endian arrays."""
    return _ENCODE.encode(
        (
            sequence,
            layout_id,
            np.ascontiguousarray(times_ms, dtype="<i8").tobytes(),
            np.ascontiguousarray(values, dtype="<f8").tobytes(),
        )
    )


@dataclass(frozen=True, slots=True)
class Entry:
    layout_id: str
    times_ms: Int64Array
    values: Float64Array  # shape (len(times_ms), len(layout))


def decode_entry(packed: bytes) -> Entry:
    _seq, layout_id, times, values = _ENTRY.decode(packed)
    t = np.frombuffer(times, dtype="<i8").astype(np.int64, copy=False)
    v = np.frombuffer(values, dtype="<f8").astype(np.float64, copy=False)
    return Entry(layout_id, t, v.reshape(len(t), -1) if len(t) else v.reshape(0, 0))


def source_state(
    domain: str,
    source_id: str,
    last_seen_ms: int,
    info: list[bytes],
    layouts: list[tuple[str, ...]],
) -> SourceState:
    """A source from its ``:info`` fields (name, labels, interval, first_seen) and the
    layouts of its ``:latest`` frames (the series count is their union)."""
    name, labels, interval, first_seen = info
    series: set[str] = set()
    for names in layouts:
        series.update(names)
    source = SourceInfo(domain, source_id, name.decode(), decode_labels(labels))
    return SourceState(source, int(first_seen), last_seen_ms, int(interval), len(series))


def points_of(
    entries: list[Entry], columns: dict[str, dict[str, int]], series: str, since_ms: int, step: int
) -> SeriesPoints:
    """One series' raw points from ``since_ms`` on, oldest first, out of window entries
    (``columns``: column by series key per layout id; entries of other layouts are skipped)."""
    times, values = [], []
    for entry in entries:
        col = columns.get(entry.layout_id, {}).get(series)
        if col is None:  # not in this layout, or the layout expired meanwhile
            continue
        keep = entry.times_ms >= since_ms
        if keep.any():
            times.append(entry.times_ms[keep])
            values.append(entry.values[keep, col])
    if not times:
        return SeriesPoints.empty(series, Tier.HOT, step)
    t = np.concatenate(times)
    v = np.concatenate(values)
    order = np.argsort(t, kind="stable")
    return SeriesPoints.raw(series, Tier.HOT, step, t[order], v[order])
