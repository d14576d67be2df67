"""What importing a partition means on every warm backend (``WarmTier.import_partition``).

The table is checked first (``check``). Its long rows ``(domain, source, series, t, ...)``
map to distinct sources (``imported_sources``) and series (``imported_series``), which each
backend finds or creates its own way; raw rows then regroup into frames (``frames``): one per
source and instant, series sorted by id, and a repeated (source, series, t) goes to frames
``seq`` 0, 1, ... A source the import creates has its rollups complete through its newest
row (``progress.closed``), so an import never makes the rollup job rewrite rollups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Float64Array, Int64Array, Tier
from sysmonstm.store.partitions import parse_partition


def check(name: str, table: pa.Table) -> tuple[Tier, Int64Array]:
    """The partition's tier and the rows' times; ``InvalidInputError`` if they do not fit."""
    parsed = parse_partition(name)
    if parsed is None:
        raise InvalidInputError(f"{name!r} is not a partition name")
    tier, start, end = parsed
    if not table.schema.equals(schema_for(tier)):
        raise InvalidInputError(f"{name}: the table's schema is not the {tier} archive schema")
    t = np.asarray(table.column("t").to_numpy(), dtype=np.int64)
    if len(t) and (int(t.min()) < start or int(t.max()) >= end):
        raise InvalidInputError(f"{name}: rows lie outside the partition's period")
    if tier is not Tier.RAW and _repeats(table, t):
        raise InvalidInputError(f"{name}: a series has two rollup rows at one time")
    return tier, t


def _repeats(table: pa.Table, t: Int64Array) -> bool:
    """Whether two rows share (domain, source, series, t): a rollup bucket is one row."""
    codes = [_codes(table.column(c))[1] for c in ("domain", "source", "series")]
    order = np.lexsort((t, *codes))
    same = np.diff(t[order]) == 0
    for c in codes:
        same &= np.diff(c[order]) == 0
    return bool(same.any())


def _codes(column: pa.ChunkedArray[Any]) -> tuple[list[str], Int64Array]:
    """Distinct values (in order of appearance) and each row's index into them."""
    encoded = column.combine_chunks().dictionary_encode()
    values = [str(v) for v in encoded.dictionary.to_pylist()]
    return values, np.asarray(encoded.indices.to_numpy(), dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class ImportedSources:
    """The distinct ``(domain, source)`` pairs of a table, the earliest and latest time of
    each, and per row the index of its pair."""

    pairs: list[tuple[str, str]]
    first_ms: Int64Array
    last_ms: Int64Array
    of_row: Int64Array

    def per_row(self, ids: Int64Array) -> Int64Array:
        """Per row, the id of its pair given ``ids`` in the order of ``pairs``."""
        found: Int64Array = ids[self.of_row]
        return found


def imported_sources(table: pa.Table, t: Int64Array) -> ImportedSources:
    domains, d_index = _codes(table.column("domain"))
    keys, k_index = _codes(table.column("source"))
    unique, inverse = np.unique(d_index * len(keys) + k_index, return_inverse=True)
    inverse = inverse.reshape(-1)
    firsts = np.full(len(unique), np.iinfo(np.int64).max, dtype=np.int64)
    lasts = np.full(len(unique), np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(firsts, inverse, t)
    np.maximum.at(lasts, inverse, t)
    pairs = [(domains[c // len(keys)], keys[c % len(keys)]) for c in unique.tolist()]
    return ImportedSources(pairs, firsts, lasts, inverse)


def imported_series(
    table: pa.Table, sources: Int64Array
) -> tuple[list[tuple[int, str]], Int64Array]:
    """The distinct ``(source id, series key)`` pairs of a table (``sources``: per row, its
    source id) and per row the index of its pair."""
    keys, key_index = _codes(table.column("series"))
    unique, inverse = np.unique(sources * len(keys) + key_index, return_inverse=True)
    pairs = [(c // len(keys), keys[c % len(keys)]) for c in unique.tolist()]
    return pairs, inverse.reshape(-1)


@dataclass(frozen=True, slots=True, eq=False)
class Frames:
    """Raw rows in frame order, by (source, t, seq, series id); frame ``i`` is the rows
    ``starts[i]:ends[i]``, its values the series ``series[starts[i]:ends[i]]`` in that order."""

    source: Int64Array
    t: Int64Array
    seq: Int64Array
    series: Int64Array
    values: Float64Array  # little-endian float64, contiguous
    starts: Int64Array
    ends: Int64Array


def frames(sources: Int64Array, series: Int64Array, t: Int64Array, values: Any) -> Frames:
    """Regroup long raw rows (per row: source id, series id, time, value) into frames."""
    n = len(t)
    # a repeated (source, series, t) (two frames at one instant) goes to frames seq 0, 1, ...
    key_order = np.lexsort((t, series, sources))
    ks, kser, kt = sources[key_order], series[key_order], t[key_order]
    new_run = np.r_[True, (ks[1:] != ks[:-1]) | (kser[1:] != kser[:-1]) | (kt[1:] != kt[:-1])]
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[key_order] = np.arange(n) - run_start
    order = np.lexsort((series, rank, t, sources))
    s, r, tt = sources[order], rank[order], t[order]
    cut = np.flatnonzero((s[1:] != s[:-1]) | (tt[1:] != tt[:-1]) | (r[1:] != r[:-1])) + 1
    return Frames(
        source=s,
        t=tt,
        seq=r,
        series=series[order],
        values=np.ascontiguousarray(np.asarray(values)[order], dtype="<f8"),
        starts=np.r_[0, cut].astype(np.int64),
        ends=np.r_[cut, n].astype(np.int64),
    )
