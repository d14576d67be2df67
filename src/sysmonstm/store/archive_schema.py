"""The long format partitions take in the archive: one row per (series, time).

Sorted by (domain, source, series, t), the string columns compress to dictionary runs and
the times to small deltas, so Parquet stores a raw sample in about the bytes of its value.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sysmonstm.store.model import Tier

_KEYS: list[pa.Field[Any]] = [
    pa.field("domain", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("series", pa.string(), nullable=False),
    pa.field("t", pa.int64(), nullable=False),
]
RAW_SCHEMA = pa.schema([*_KEYS, pa.field("value", pa.float64(), nullable=False)])
ROLLUP_SCHEMA = pa.schema(
    [
        *_KEYS,
        pa.field("min", pa.float64(), nullable=False),
        pa.field("max", pa.float64(), nullable=False),
        pa.field("sum", pa.float64(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("last", pa.float64(), nullable=False),
    ]
)


def schema_for(tier: Tier) -> pa.Schema:
    return RAW_SCHEMA if tier is Tier.RAW else ROLLUP_SCHEMA
