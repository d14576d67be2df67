"""Loads a ``FleetHistory`` into a warm tier through its own code, and checks it reads back.

Through the ``WarmTier`` seam, the same for SQLite and PostgreSQL:

1. the raw frames with ``write`` (as the aggregator writes them: sources with their names and
   labels, series, layouts, watermarks; rollup progress starts at the first frame);
2. the older rollup rows with ``import_partition`` (the path an archive restore takes: binary
   COPY on PostgreSQL), one long table per partition; the raw partitions of the omitted days
   and the 1-minute partitions of the 30 days are imported empty, so they exist and a read
   has to leave them out by their period rather than by their absence;
3. ``rollup``: the warm tier's own job rolls the raw frames up into 1-minute and 1-hour rows
   and advances each source's progress, as it does every few seconds in the aggregator.

``check`` then reads some of it back through the warm tier and compares with the history.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from bench.fleet_history import DOMAIN, FleetHistory, Host
from bench.procs import BenchError
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Retention, SeriesBatch, Tier
from sysmonstm.store.partitions import partitions_between
from sysmonstm.store.rollup import Buckets
from sysmonstm.store.warm import WarmTier

WRITE_SAMPLES = 2_000_000  # raw samples per ``write`` call (one transaction)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a load stored and how long each step took."""

    raw_samples: int
    m1_rows: int
    h1_rows: int
    rolled_up: int
    seconds: dict[str, float]

    def facts(self) -> dict[str, Any]:
        return {
            "history_raw_samples": self.raw_samples,
            "history_m1_rows": self.m1_rows,
            "history_h1_rows": self.h1_rows,
            "history_rolled_up_buckets": self.rolled_up,
            **{f"load_{k}_seconds": v for k, v in self.seconds.items()},
            "load_seconds": sum(self.seconds.values()),
        }


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """What every backend is loaded with, built once: the raw batches and every partition's
    rollup rows (empty tables for partitions that only have to exist)."""

    batches: list[SeriesBatch]
    tables: dict[str, pa.Table]


def _long_table(tier: Tier, parts: list[tuple[Host, Buckets]]) -> pa.Table:
    """Rollup rows in the archive's long format; a bucket's column index names its series."""
    tables = []
    for host, b in parts:
        if not len(b):
            continue
        keys = pa.array(list(host.series), pa.string())
        series = pa.DictionaryArray.from_arrays(pa.array(b.series_ids, pa.int32()), keys)
        n = len(b)
        columns = {
            "domain": pa.repeat(DOMAIN, n),
            "source": pa.repeat(host.id, n),
            "series": series.dictionary_decode(),
            "t": b.t,
            "min": b.min,
            "max": b.max,
            "sum": b.sum,
            "count": b.count,
            "last": b.last,
        }
        tables.append(pa.table(columns, schema=schema_for(tier)))
    if not tables:
        return schema_for(tier).empty_table()
    return pa.concat_tables(tables)


def _partitioned(
    tier: Tier, parts: list[tuple[Host, Buckets]], start_ms: int, end_ms: int
) -> dict[str, pa.Table]:
    """One long table per partition of ``tier`` overlapping ``[start_ms, end_ms)``."""
    out = {}
    for name, lo, hi in partitions_between(tier, start_ms, end_ms):
        cut = [(h, _within(b, lo, hi)) for h, b in parts]
        out[name] = _long_table(tier, cut)
    return out


def _within(b: Buckets, lo: int, hi: int) -> Buckets:
    keep = (b.t >= lo) & (b.t < hi)
    if keep.all():
        return b
    return Buckets(
        *(a[keep] for a in (b.series_ids, b.t, b.min, b.max, b.sum, b.count, b.last, b.last_t))
    )


def _omitted_raw(history: FleetHistory, retention: Retention) -> list[str]:
    """The raw partitions of the days whose frames were left out (within raw retention)."""
    held = {n for n, _, _ in partitions_between(Tier.RAW, history.raw_start_ms, history.end_ms)}
    days = partitions_between(Tier.RAW, history.end_ms - retention.raw_ms, history.raw_start_ms)
    return [n for n, _, _ in days if n not in held]


def raw_batches(history: FleetHistory) -> list[SeriesBatch]:
    """Every host's raw frames of the history's raw span, as numbered batches."""
    out: list[SeriesBatch] = []
    for host in history.hosts:
        times, values = history.frames(host, history.raw_start_ms, history.end_ms)
        out += history.batches(host, times, values)
    return out


def plan(history: FleetHistory, retention: Retention) -> Plan:
    """The load of ``history``; the expected aggregates learn all of it."""
    m1_parts, h1_parts = [], []
    for host in history.hosts:
        m1, h1 = history.m1_rows(host), history.h1_rows(host)
        history.add(host, h1)
        history.add(host, m1)  # as a read of the hourly tier sees it: merged into hours
        m1_parts.append((host, m1))
        h1_parts += [(host, h1), (host, history.m1_hourly(m1))]
    start, end = history.h1_start_ms, history.raw_start_ms
    tables = _partitioned(Tier.H1, h1_parts, start, end)
    tables |= _partitioned(Tier.M1, m1_parts, start, end)
    tables |= {
        name: schema_for(Tier.RAW).empty_table() for name in _omitted_raw(history, retention)
    }
    return Plan(raw_batches(history), tables)


async def load(plan: Plan, warm: WarmTier) -> Loaded:
    """Store the planned history in the open, empty ``warm`` (see the module docstring)."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    chunk: list[SeriesBatch] = []
    for batch in plan.batches:
        chunk.append(batch)
        if sum(b.size for b in chunk) >= WRITE_SAMPLES:
            await warm.write(chunk)
            chunk = []
    if chunk:
        await warm.write(chunk)
    seconds["raw"] = time.perf_counter() - began

    began = time.perf_counter()
    rows = {Tier.RAW: 0, Tier.M1: 0, Tier.H1: 0}
    for name, table in plan.tables.items():
        tier = (
            Tier.RAW if name.startswith("raw_") else Tier.M1 if name.startswith("m1_") else Tier.H1
        )
        rows[tier] += await warm.import_partition(name, table)
    seconds["rollups"] = time.perf_counter() - began

    began = time.perf_counter()
    rolled = await warm.rollup()
    seconds["rollup_job"] = time.perf_counter() - began
    samples = sum(b.size for b in plan.batches)
    return Loaded(samples, rows[Tier.M1], rows[Tier.H1], rolled, seconds)


async def check(history: FleetHistory, warm: WarmTier, reads: int = 5) -> None:
    """Sources, latest values and hourly reads of random series, read back through the warm
    tier, are what the history holds; raises ``BenchError`` if not."""
    found = {s.source.id: s for s in await warm.sources(DOMAIN)}
    if sorted(found) != sorted(h.id for h in history.hosts):
        raise BenchError(f"the warm tier holds sources {sorted(found)[:5]}…")
    rng = random.Random(0)
    for host in rng.sample(history.hosts, min(reads, len(history.hosts))):
        state = found[host.id]
        if (state.source, state.first_seen_ms) != (host.info, history.h1_start_ms):
            raise BenchError(f"{host.id}: stored as {state}")
        latest = await warm.latest(DOMAIN, host.id)
        t, values = history.last_frame[host.id]
        want = sorted(zip(host.series, values.tolist(), strict=True))
        if [(lv.series, lv.value) for lv in latest] != want or {lv.time_ms for lv in latest} != {t}:
            raise BenchError(f"{host.id}: latest values differ from the last frame")
        column = rng.randrange(len(host.series))
        got = await warm.read(
            DOMAIN, host.id, host.series[column], history.h1_start_ms, history.end_ms, Tier.H1
        )
        check_points(history, host.id, column, history.h1_start_ms, history.end_ms, got)


def check_points(
    history: FleetHistory, host_id: str, column: int, start_ms: int, end_ms: int, got: Any
) -> None:
    """An hourly read's ``got`` (``SeriesPoints``, or a REST body's columns) is the history's."""
    t, avg, mn, mx, _ = history.expected_points(host_id, column, start_ms, end_ms)
    if isinstance(got, dict):
        cols = [np.asarray(got[k]) for k in ("t", "avg", "min", "max")]
    else:
        cols = [got.times_ms, got.avg, got.min, got.max]
    ok = (
        len(cols[0]) == len(t)
        and np.array_equal(cols[0], t)
        and np.array_equal(cols[2], mn)
        and np.array_equal(cols[3], mx)
        and np.allclose(cols[1], avg, rtol=1e-9, atol=0)
    )
    if not ok:
        raise BenchError(
            f"{host_id} series {column}: read {len(cols[0])} points "
            f"({cols[0][:2]}…), expected {len(t)} ({t[:2]}…)"
        )
