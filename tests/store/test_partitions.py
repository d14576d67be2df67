"""Partition names and boundaries for each tier."""

from __future__ import annotations

from datetime import UTC, datetime

from sysmonstm.store.model import Tier
from sysmonstm.store.partitions import parse_partition, partition_name, partitions_between


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def test_names_follow_day_month_and_year() -> None:
    t = ms(2026, 12, 31, 23, 59)
    assert partition_name(Tier.RAW, t) == "raw_20261231"
    assert partition_name(Tier.M1, t) == "m1_202612"
    assert partition_name(Tier.H1, t) == "h1_2026"


def test_ranges_cover_every_partition_they_touch() -> None:
    parts = partitions_between(Tier.M1, ms(2026, 11, 20), ms(2027, 1, 2))
    assert [p[0] for p in parts] == ["m1_202611", "m1_202612", "m1_202701"]
    assert parts[1][1:] == (ms(2026, 12, 1), ms(2027, 1, 1))
    assert [p[0] for p in partitions_between(Tier.RAW, ms(2026, 12, 4, 23), ms(2026, 12, 5))] == [
        "raw_20261204"
    ]


def test_parse_partition_inverts_names_and_ignores_other_tables() -> None:
    assert parse_partition("raw_20261204") == (Tier.RAW, ms(2026, 12, 4), ms(2026, 12, 5))
    assert parse_partition("h1_2026") == (Tier.H1, ms(2026, 1, 1), ms(2027, 1, 1))
    assert parse_partition("sources") is None
    assert parse_partition("raw_2026130") is None
