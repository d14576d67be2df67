"""ActivityWatch window and AFK buckets become Deskmeter intervals (``aw_desk``) through a
real interval store (SQLite): overlaps, gaps, long spans, repeated and growing imports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.config import TaskRule
from sysmonstm.domains.deskmeter.aw_desk import HEARTBEAT_MS, machine_id
from sysmonstm.domains.deskmeter.aw_import import ImportReport, feed_intervals
from sysmonstm.domains.deskmeter.aw_store import AwBucket, AwBucketExport, AwEvent
from sysmonstm.domains.deskmeter.builder import silence_limit_ms
from sysmonstm.domains.deskmeter.model import Interval
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.stores import open_interval_store
from sysmonstm.domains.deskmeter.tasks import TaskRules

T0 = 1_714_989_600_000  # 2024-05-06 10:00 UTC
MIN = 60_000
RULES = TaskRules([TaskRule(workspace="Code*", task="Project X")])


def bucket(
    kind: str, spans: list[tuple[int, int, str]], bid: str = "", host: str = "d"
) -> AwBucketExport:
    """A bucket of ``kind`` with events (start minute, length in minutes, app or status),
    newest first as exports hold them."""
    key = "app" if kind == "currentwindow" else "status"
    events = tuple(
        AwEvent(T0 + start * MIN, length * MIN * 1000, {key: value, "title": "t"})
        for start, length, value in sorted(spans, reverse=True)
    )
    return AwBucketExport(AwBucket(bid or f"{kind}_{host}", kind, "c", host, 0), events)


def rows(intervals: list[Interval]) -> list[tuple[int, int, str, str, bool]]:
    """(start minute, end minute, workspace, task, idle) of each interval."""
    return [
        ((i.start_ms - T0) // MIN, (i.end_ms - T0) // MIN, i.workspace, i.task, i.idle)
        for i in intervals
    ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IntervalStore]:
    opened = open_interval_store(f"sqlite:///{tmp_path / 'warm.db'}")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def feed(store: IntervalStore, *exports: AwBucketExport) -> ImportReport:
    report = ImportReport()
    await feed_intervals(store, exports, RULES, "Europe/Berlin", report)
    return report


async def intervals_of(store: IntervalStore, host: str = "d") -> list[Interval]:
    return await store.intervals(T0 - 600 * MIN, T0 + 6000 * MIN, machine_id(host))


async def test_window_and_afk_cut_time_into_states(store: IntervalStore) -> None:
    """App changes and AFK changes each start an interval; task rules name the task."""
    await feed(
        store,
        bucket("currentwindow", [(0, 30, "Code - OSS"), (30, 30, "Mail")]),
        bucket("afkstatus", [(0, 45, "not-afk"), (45, 15, "afk")]),
    )
    assert rows(await intervals_of(store)) == [
        (0, 30, "Code - OSS", "Project X", False),
        (30, 45, "Mail", "", False),
        (45, 60, "Mail", "", True),
    ]


async def test_long_spans_stay_one_interval_and_gaps_end_them(store: IntervalStore) -> None:
    """A five-hour span is one interval of five hours; a gap shorter than the silence limit
    is bridged, a longer one ends the interval at the last event."""
    assert silence_limit_ms(HEARTBEAT_MS) < 3 * MIN
    await feed(
        store,
        bucket(
            "currentwindow",
            [(0, 300, "Code"), (301, 9, "Code"), (400, 10, "Term")],
        ),
    )
    assert rows(await intervals_of(store)) == [
        (0, 310, "Code", "Project X", False),  # the 1-minute gap at 300 is bridged
        (400, 410, "Term", "", False),  # 90 minutes of nothing: closed at 310
    ]


async def test_overlapping_window_watchers_latest_start_wins(store: IntervalStore) -> None:
    """Where two window buckets of one host overlap, the span that began last counts."""
    await feed(
        store,
        bucket("currentwindow", [(0, 60, "Code")], bid="w1"),
        bucket("currentwindow", [(20, 10, "Browser")], bid="w2"),
    )
    assert rows(await intervals_of(store)) == [
        (0, 20, "Code", "Project X", False),
        (20, 30, "Browser", "", False),
        (30, 60, "Code", "Project X", False),
    ]


async def test_a_longer_export_adds_only_what_is_new(store: IntervalStore, tmp_path: Path) -> None:
    """Importing the first hour, then the same hour again, then two hours, gives exactly the
    intervals of importing the two hours once; the repeat applies nothing."""
    hour = [bucket("currentwindow", [(0, 40, "Code"), (40, 20, "Mail")])]
    two = [bucket("currentwindow", [(0, 40, "Code"), (40, 50, "Mail"), (90, 30, "Code")])]
    await feed(store, *hour)
    again = await feed(store, *hour)
    assert [m.events for m in again.machines] == [0]
    await feed(store, *two)
    once = open_interval_store(f"sqlite:///{tmp_path / 'once.db'}")
    await once.open()
    try:
        await feed(once, *two)
        assert rows(await intervals_of(store)) == rows(await intervals_of(once))
    finally:
        await once.close()
    assert rows(await intervals_of(store)) == [
        (0, 40, "Code", "Project X", False),
        (40, 90, "Mail", "", False),
        (90, 120, "Code", "Project X", False),
    ]


async def test_other_buckets_and_empty_events_are_ignored(store: IntervalStore) -> None:
    """Buckets of other types give no machine; events of no length give no time."""
    report = await feed(
        store,
        bucket("web.tab.current", [(0, 10, "x")], host="web"),
        bucket("currentwindow", [(0, 0, "Code"), (5, 10, "Mail")]),
    )
    assert [m.machine for m in report.machines] == ["aw:d"]
    assert rows(await intervals_of(store)) == [(5, 15, "Mail", "", False)]


def test_machine_ids_hold_only_what_an_id_may() -> None:
    assert machine_id("desk-1") == "aw:desk-1"
    assert machine_id("My Laptop (work)") == "aw:My-Laptop--work-"
    assert machine_id("") == "aw:unknown"
    assert len(machine_id("x" * 300)) == 128
