"""Time partitions of the warm tier: raw by day, 1-minute rollups by month, 1-hour by year.

Retention drops whole partitions (instant, no vacuum churn) and the cold archive (a later
issue) moves whole partitions, so every backend names them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sysmonstm.store.model import Tier

_PREFIX = {Tier.RAW: "raw", Tier.M1: "m1", Tier.H1: "h1"}


def _dt(t_ms: int) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def period_start(tier: Tier, t_ms: int) -> int:
    """Start (Unix ms) of the partition holding ``t_ms``."""
    d = _dt(t_ms)
    if tier is Tier.RAW:
        d = d.replace(hour=0, minute=0, second=0, microsecond=0)
    elif tier is Tier.M1:
        d = d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        d = d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return _ms(d)


def next_period(tier: Tier, start_ms: int) -> int:
    """Start of the partition after the one starting at ``start_ms``."""
    d = _dt(start_ms)
    if tier is Tier.RAW:
        return start_ms + 86_400_000
    if tier is Tier.M1:
        d = d.replace(year=d.year + 1, month=1) if d.month == 12 else d.replace(month=d.month + 1)
        return _ms(d)
    return _ms(d.replace(year=d.year + 1))


def partition_name(tier: Tier, t_ms: int) -> str:
    """Table name of the partition holding ``t_ms``, e.g. ``raw_20261204``, ``m1_202612``."""
    fmt = {Tier.RAW: "%Y%m%d", Tier.M1: "%Y%m", Tier.H1: "%Y"}[tier]
    return f"{_PREFIX[tier]}_{_dt(t_ms).strftime(fmt)}"


def partitions_between(tier: Tier, start_ms: int, end_ms: int) -> list[tuple[str, int, int]]:
    """``(name, period_start, period_end)`` of every partition overlapping
    ``[start_ms, end_ms)``, oldest first."""
    out: list[tuple[str, int, int]] = []
    p = period_start(tier, max(start_ms, 0))
    while p < end_ms:
        nxt = next_period(tier, p)
        out.append((partition_name(tier, p), p, nxt))
        p = nxt
    return out


def parse_partition(name: str) -> tuple[Tier, int, int] | None:
    """``(tier, start, end)`` for a partition table name, or None for other tables."""
    prefix, _, stamp = name.partition("_")
    tiers = {v: k for k, v in _PREFIX.items()}
    tier = tiers.get(prefix)
    if tier is None or not stamp.isdigit() or len(stamp) != {Tier.RAW: 8, Tier.M1: 6}.get(tier, 4):
        return None
    fmt = {Tier.RAW: "%Y%m%d", Tier.M1: "%Y%m", Tier.H1: "%Y"}[tier]
    try:
        start = _ms(datetime.strptime(stamp, fmt).replace(tzinfo=UTC))
    except ValueError:
        return None
    return tier, start, next_period(tier, start)


def overlapping(
    tables: Iterable[str], tier: Tier, start_ms: int, end_ms: int
) -> list[tuple[str, int, int]]:
    """The existing partitions of ``tier`` among ``tables`` that overlap ``[start_ms, end_ms)``,
    oldest first (cheap for any range, however wide)."""
    found = []
    for name in tables:
        parsed = parse_partition(name)
        if parsed is not None and parsed[0] is tier and parsed[1] < end_ms and parsed[2] > start_ms:
            found.append((name, parsed[1], parsed[2]))
    return sorted(found, key=lambda p: p[1])
