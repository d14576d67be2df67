"""Reads of the PostgreSQL minute tier: one series over 1, 7 and 20 days, 100 series stored.

    python -m bench.m1_reads [--days 20] [--series 100] [--reads 15]

Not part of ``python -m bench`` (target 5 reads 30 days, from the hourly tier): this checks
what the minute tier's layout (``store/pg_m1.py``: one row per series and hour) costs a
chart of a few days, the range the query router sends to it. The history is imported the way
a restore does (``PgWarm.import_partition``) into a fresh database on the machine's server
(or a throwaway one), then each range is read ``--reads`` times through ``PgWarm.read`` for
series spread over the source; the median and the slowest read are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np
import pyarrow as pa

from bench.pg import fresh_database, pg_server
from sysmonstm.store.archive_schema import schema_for
from sysmonstm.store.model import Retention, Tier
from sysmonstm.store.partitions import partition_name
from sysmonstm.store.warm_pg import PgWarm

T0_MS = 1_796_083_200_000  # 2026-12-01 00:00 UTC: 20 days stay in one month partition
MIN_MS, DAY_MS = 60_000, 86_400_000
_KEEP = Retention(raw_ms=10**13, m1_ms=10**13, h1_ms=10**13)


def history(days: int, series: int, seed: int = 0) -> pa.Table:
    """``days`` of minute buckets of ``series`` series of one source (long format)."""
    n = days * 1440
    t = np.tile(T0_MS + np.arange(n, dtype=np.int64) * MIN_MS, series)
    keys = np.repeat(np.arange(series), n)
    v = np.random.default_rng(seed).normal(50, 10, n * series)
    columns: list[pa.Array[Any]] = [
        pa.array(["metrics"] * len(t)),
        pa.array(["host"] * len(t)),
        pa.array([f"s{i:03d}" for i in keys.tolist()]),
        pa.array(t),
        pa.array(v - 1),
        pa.array(v + 1),
        pa.array(v * 60),
        pa.array(np.full(len(t), 60, dtype=np.int64)),
        pa.array(v),
    ]
    return pa.Table.from_arrays(columns, schema=schema_for(Tier.M1))


async def measure(dsn: str, days: int, series: int, reads: int) -> list[tuple[int, float, float]]:
    """(days read, median ms, slowest ms) for 1, 7 and ``days`` days."""
    warm = PgWarm(dsn, clock=lambda: T0_MS + days * DAY_MS, retention=_KEEP)
    await warm.open()
    try:
        await warm.import_partition(partition_name(Tier.M1, T0_MS), history(days, series))
        out = []
        for span in sorted({1, min(7, days), days}):
            times = []
            for i in range(reads):
                key = f"s{i * 7 % series:03d}"
                began = time.perf_counter()
                got = await warm.read("metrics", "host", key, T0_MS, T0_MS + span * DAY_MS, Tier.M1)
                times.append((time.perf_counter() - began) * 1000)
                if len(got) != span * 1440:
                    raise RuntimeError(f"{key}: {len(got)} minutes read, {span * 1440} stored")
            times.sort()
            out.append((span, times[len(times) // 2], times[-1]))
        return out
    finally:
        await warm.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.m1_reads", description=__doc__)
    parser.add_argument("--days", type=int, default=20, choices=range(1, 29))
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--reads", type=int, default=15)
    args = parser.parse_args(argv)

    async def run(server_dsn: str) -> list[tuple[int, float, float]]:
        async with fresh_database(server_dsn) as dsn:
            return await measure(dsn, args.days, args.series, args.reads)

    with pg_server() as server:
        found = asyncio.run(run(server.dsn))
    for span, median, slowest in found:
        print(f"{span:>2} d of 1 of {args.series} series: median {median:.1f} ms, "
              f"slowest {slowest:.1f} ms ({args.reads} reads)")  # fmt: skip


if __name__ == "__main__":
    main()
