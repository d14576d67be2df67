"""Interval store conformance: every backend in ``INTERVALS`` must pass all of these."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sysmonstm.domains.deskmeter.localdays import split_days
from sysmonstm.domains.deskmeter.model import (
    DeskBatch,
    DeskEvent,
    EventKind,
    Interval,
    Machine,
    MachineInfo,
    SummaryBy,
    Total,
)
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.summary import Totals, workspace_key
from tests.conformance.intervals_backends import INTERVALS
from tests.deskmeter.sessions import (
    BERLIN,
    HB,
    LIMIT,
    MIN,
    STATES,
    H,
    Ledger,
    S,
    batch,
    ev,
    hb,
    heartbeats,
    local_ms,
    machine,
)

ALL = (0, 2**62)
T0 = local_ms("2026-06-01 09:00")
M1, M2 = machine("m1"), machine("m2", "Asia/Kolkata")


@pytest.fixture(params=sorted(INTERVALS), ids=lambda name: f"intervals={name}")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[IntervalStore]:
    async with INTERVALS[backend](request, tmp_path) as s:
        yield s


def span(
    start: int, end: int, workspace: str = "Code", task: str = "", *, m: Machine = M1, **kw: object
) -> Interval:
    return Interval(m.id, start, end, 0, workspace, task, False, time_zone=m.time_zone, **kw)  # type: ignore[arg-type]


# -- building intervals ----------------------------------------------------------------------


async def test_apply_builds_intervals_and_returns_each_event_step(store: IntervalStore) -> None:
    events = [ev(T0), hb(T0 + 10 * S), ev(T0 + 15 * S, "Mail")]
    (applied,) = await store.apply([batch(1, events)])
    assert applied.batch.sequence == 1
    assert [s.event for s in applied.steps] == events
    assert [(s.current, s.closed) for s in applied.steps] == [
        (span(T0, T0, open=True), None),
        (span(T0, T0 + 10 * S, open=True), None),
        (span(T0 + 15 * S, T0 + 15 * S, "Mail", open=True), span(T0, T0 + 15 * S)),
    ]
    assert await store.intervals(*ALL) == [
        span(T0, T0 + 15 * S),
        span(T0 + 15 * S, T0 + 15 * S, "Mail", open=True),
    ]


async def test_heartbeats_extend_and_a_heartbeat_in_another_state_switches(
    store: IntervalStore,
) -> None:
    await store.apply([batch(1, [ev(T0), *heartbeats(T0, T0 + MIN)])])
    await store.apply([batch(2, [hb(T0 + MIN + 10 * S, "Code", "Project X")])])
    assert await store.intervals(*ALL) == [
        span(T0, T0 + MIN + 10 * S),
        span(T0 + MIN + 10 * S, T0 + MIN + 10 * S, "Code", "Project X", open=True),
    ]


async def test_an_event_after_a_silence_closes_the_interval_at_its_last_event(
    store: IntervalStore,
) -> None:
    later = T0 + 10 * S + LIMIT + 1
    await store.apply([batch(1, [ev(T0), hb(T0 + 10 * S)]), batch(2, [hb(later)])])
    assert await store.intervals(*ALL) == [span(T0, T0 + 10 * S), span(later, later, open=True)]


async def test_close_silent_closes_only_machines_past_their_limit(store: IntervalStore) -> None:
    slow = DeskBatch(M2, 1, (ev(T0, tz=M2.time_zone),), heartbeat_ms=60_000)
    await store.apply([batch(1, [ev(T0)]), slow])
    now = T0 + LIMIT + 1  # past m1's limit (25 s), within m2's (125 s)
    assert await store.close_silent(now) == [span(T0, T0)]
    assert await store.close_silent(now) == []
    infos = {i.machine.id: i for i in await store.machines()}
    assert infos["m1"].current is None
    assert infos["m2"].current == span(T0, T0, m=M2, open=True)
    assert await store.close_silent(T0 + 2 * 60_000 + 5_000 + 1) == [span(T0, T0, m=M2)]
    assert await store.intervals(*ALL) == [span(T0, T0), span(T0, T0, m=M2)]


async def test_a_late_event_within_the_limit_continues_an_interval_closed_by_close_silent(
    store: IntervalStore,
) -> None:
    await store.apply([batch(1, [ev(T0), hb(T0 + 10 * S)])])
    await store.close_silent(T0 + H)
    (applied,) = await store.apply([batch(2, [hb(T0 + 20 * S)])])
    assert applied.steps[0].current == span(T0, T0 + 20 * S, open=True)
    assert await store.intervals(*ALL) == [span(T0, T0 + 20 * S, open=True)]


async def test_replayed_batches_are_left_out_and_change_nothing(store: IntervalStore) -> None:
    first = [batch(1, [ev(T0), hb(T0 + 10 * S)]), batch(2, [ev(T0 + 15 * S, "Mail")])]
    await store.apply(first)
    before = await _snapshot(store)
    assert await store.apply(first) == []
    assert await _snapshot(store) == before
    third = batch(3, [hb(T0 + 25 * S, "Mail")])
    again = await store.apply([*first, third])
    assert [a.batch.sequence for a in again] == [3]
    after = await _snapshot(store)
    assert await store.apply([*first, third]) == []
    assert await _snapshot(store) == after
    assert await store.stored_through("m1") == 3
    assert await store.intervals(*ALL) == [
        span(T0, T0 + 15 * S),
        span(T0 + 15 * S, T0 + 25 * S, "Mail", open=True),
    ]


async def test_an_event_older_than_the_last_one_raises_and_writes_nothing(
    store: IntervalStore,
) -> None:
    await store.apply([batch(1, [ev(T0), hb(T0 + 10 * S)])])
    before = await _snapshot(store)
    bad = [batch(2, [hb(T0 + 20 * S)]), batch(3, [hb(T0 + 30 * S), hb(T0 + 25 * S)])]
    with pytest.raises(ValueError, match="older than the last applied event"):
        await store.apply(bad)
    assert await _snapshot(store) == before
    assert await store.stored_through("m1") == 1
    (applied,) = await store.apply([batch(2, [hb(T0 + 20 * S)])])  # still serving
    assert applied.steps[0].current == span(T0, T0 + 20 * S, open=True)


async def test_the_open_interval_and_watermark_survive_a_restart(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with INTERVALS[backend](request, tmp_path) as first:
        await first.apply([batch(1, [ev(T0, "Code", "X"), hb(T0 + 10 * S, "Code", "X")])])
    async with INTERVALS[backend](request, tmp_path) as second:
        assert await second.stored_through("m1") == 1
        assert await second.apply([batch(1, [ev(T0, "Code", "X")])]) == []
        (applied,) = await second.apply([batch(2, [hb(T0 + 20 * S, "Code", "X")])])
        assert applied.steps[0].current == span(T0, T0 + 20 * S, "Code", "X", open=True)
        assert await second.intervals(*ALL) == [span(T0, T0 + 20 * S, "Code", "X", open=True)]
        assert await second.summary(T0 - H, T0 + H, SummaryBy.TASK) == [Total("X", 20.0, 0.0, 1)]


async def test_concurrent_applies_store_each_batch_exactly_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two store instances on one database apply the same batches at once (two aggregators
    after a failover): every batch counts once."""
    events = [ev(T0), *heartbeats(T0, T0 + 10 * MIN)]
    cut = [batch(i // 3 + 1, events[i : i + 3]) for i in range(0, len(events), 3)]

    async def feed(s: IntervalStore) -> list[int]:
        return [a.batch.sequence for c in cut for a in await s.apply([c])]

    async with (
        INTERVALS[backend](request, tmp_path) as a,
        INTERVALS[backend](request, tmp_path) as b,
    ):
        done = await asyncio.gather(feed(a), feed(b))
        assert sorted(done[0] + done[1]) == [c.sequence for c in cut]
        assert await a.intervals(*ALL) == [span(T0, T0 + 10 * MIN, open=True)]
        assert await b.summary(T0 - H, T0 + H, SummaryBy.MACHINE) == [Total("m1", 600.0, 0.0, 1)]


# -- queries ---------------------------------------------------------------------------------


async def test_machines_list_identity_watermark_last_event_and_current(
    store: IntervalStore,
) -> None:
    assert await store.machines() == []
    assert await store.stored_through("m1") == 0
    await store.apply(
        [batch(4, [ev(T0), hb(T0 + 10 * S)]), batch(7, [ev(T0 + S, tz=M2.time_zone)], M2)]
    )
    assert await store.machines() == [
        MachineInfo(M1, T0 + 10 * S, 4, span(T0, T0 + 10 * S, open=True)),
        MachineInfo(M2, T0 + S, 7, span(T0 + S, T0 + S, m=M2, open=True)),
    ]
    renamed = Machine("m1", "new-host", BERLIN)
    await store.apply([batch(5, [hb(T0 + 20 * S)], renamed)])
    assert (await store.machines())[0].machine == renamed


async def test_at_finds_the_interval_covering_an_instant_on_each_machine(
    store: IntervalStore,
) -> None:
    await store.apply(
        [
            batch(1, [ev(T0), ev(T0 + 10 * S, "Mail"), hb(T0 + 20 * S, "Mail")]),
            batch(1, [ev(T0 + 5 * S, tz=M2.time_zone)], M2),
        ]
    )
    code, mail = span(T0, T0 + 10 * S), span(T0 + 10 * S, T0 + 20 * S, "Mail", open=True)
    m2 = span(T0 + 5 * S, T0 + 5 * S, m=M2, open=True)
    assert await store.at(T0 - 1) == []
    assert await store.at(T0) == [code]
    assert await store.at(T0 + 5 * S) == [code, m2]
    assert await store.at(T0 + 10 * S - 1) == [code]
    assert await store.at(T0 + 10 * S) == [mail]  # a switch instant belongs to the new one
    assert await store.at(T0 + 20 * S) == [mail]  # an open interval covers its last event
    assert await store.at(T0 + 20 * S + 1) == []
    assert await store.at(T0 + 5 * S, "m2") == [m2]
    assert await store.at(T0 + 5 * S, "nobody") == []


async def test_intervals_overlapping_a_range_are_clipped_and_ordered(
    store: IntervalStore,
) -> None:
    await store.apply(
        [
            batch(1, [ev(T0), ev(T0 + 10 * S, "Mail"), ev(T0 + 20 * S, "Web")]),
            batch(1, [ev(T0 + 10 * S, tz=M2.time_zone), hb(T0 + 30 * S, tz=M2.time_zone)], M2),
        ]
    )
    got = await store.intervals(T0 + 5 * S, T0 + 25 * S)
    assert got == [
        span(T0 + 5 * S, T0 + 10 * S),
        span(T0 + 10 * S, T0 + 20 * S, "Mail"),
        span(T0 + 10 * S, T0 + 25 * S, m=M2, open=True),
        span(T0 + 20 * S, T0 + 20 * S, "Web", open=True),
    ]
    assert await store.intervals(T0 + 5 * S, T0 + 25 * S, limit=2) == got[:2]
    assert await store.intervals(T0 + 5 * S, T0 + 25 * S, "m2") == [got[2]]
    assert await store.intervals(T0 + 10 * S, T0 + 10 * S) == []
    assert await store.intervals(T0 + 30 * S + 1, T0 + H) == []


async def test_summary_across_midnight_by_task_workspace_machine_and_day(
    store: IntervalStore,
) -> None:
    """An evening and a night over midnight on m1, a morning on m2; a range starting
    mid-evening and ending after two whole days mixes rollups and partial days."""
    eve = local_ms("2026-06-01 22:00")
    m1 = [ev(eve, "Code", "X")]
    m1 += heartbeats(eve, eve + 90 * MIN, "Code", "X")  # 22:00-23:30 X
    m1 += [ev(eve + 90 * MIN, "Mail", idle=True)]
    m1 += heartbeats(eve + 90 * MIN, eve + 3 * H, "Mail", idle=True)  # 23:30-01:00 idle
    morning = local_ms("2026-06-03 09:00")
    m1 += [ev(morning, "Code", "X"), *heartbeats(morning, morning + H, "Code", "X")]
    m2_start = local_ms("2026-06-02 06:00", M2.time_zone)
    m2 = [ev(m2_start, "Web", "Y", tz=M2.time_zone)]
    m2 += heartbeats(m2_start, m2_start + H, "Web", "Y", tz=M2.time_zone)
    await store.apply([batch(1, m1), DeskBatch(M2, 1, tuple(m2), HB)])
    start, end = local_ms("2026-06-01 23:00"), local_ms("2026-06-03 09:30")
    assert await store.summary(start, end, SummaryBy.TASK) == [
        Total("X", 3600.0, 0.0, 2),
        Total("Y", 3600.0, 0.0, 1),
        Total("", 0.0, 5400.0, 2),
    ]
    assert await store.summary(start, end, SummaryBy.WORKSPACE) == [
        Total("Code", 3600.0, 0.0, 2),
        Total("Web", 3600.0, 0.0, 1),
        Total("Mail", 0.0, 5400.0, 2),
    ]
    assert await store.summary(start, end, SummaryBy.MACHINE) == [
        Total("m1", 3600.0, 5400.0, 4),
        Total("m2", 3600.0, 0.0, 1),
    ]
    assert await store.summary(start, end, SummaryBy.DAY) == [
        Total("2026-06-02", 3600.0, 3600.0, 2),
        Total("2026-06-01", 1800.0, 1800.0, 2),
        Total("2026-06-03", 1800.0, 0.0, 1),
    ]
    assert await store.summary(start, end, SummaryBy.TASK, "m2") == [Total("Y", 3600.0, 0.0, 1)]
    assert await store.summary(end, start, SummaryBy.TASK) == []


async def test_summary_of_the_dst_days_counts_23_and_25_hours(store: IntervalStore) -> None:
    start, end = local_ms("2026-03-29 00:00"), local_ms("2026-03-30 00:00")
    spring = [ev(start), *heartbeats(start, end)]
    autumn_start, autumn_end = local_ms("2026-10-25 00:00"), local_ms("2026-10-26 00:00")
    autumn = [ev(autumn_start), *heartbeats(autumn_start, autumn_end)]
    await store.apply([batch(1, spring), batch(2, autumn)])
    by_day = await store.summary(start - H, autumn_end + H, SummaryBy.DAY)
    assert by_day == [
        Total("2026-10-25", 25 * 3600.0, 0.0, 1),
        Total("2026-03-29", 23 * 3600.0, 0.0, 1),
    ]


# -- against the in-memory contract ------------------------------------------------------------


def _random_session(rnd: random.Random, m: Machine, start: int, n: int) -> list[DeskEvent]:
    t, out = start, []
    for _ in range(n):
        t += rnd.choice([0, 3 * S, HB, HB, HB, LIMIT, LIMIT + 1, 40 * MIN, 3 * H])
        workspace, task, index, idle = rnd.choice(STATES)
        kind = rnd.choice(list(EventKind))
        out.append(ev(t, workspace, task, kind=kind, index=index, idle=idle, tz=m.time_zone))
    return out


def _brute_summary(
    intervals: list[Interval], from_ms: int, to_ms: int, by: SummaryBy, machine: str | None
) -> list[Total]:
    totals = Totals()
    for iv in intervals:
        if machine not in (None, iv.machine):
            continue
        for piece in split_days(max(iv.start_ms, from_ms), min(iv.end_ms, to_ms), iv.time_zone):
            key = {
                SummaryBy.TASK: iv.task,
                SummaryBy.WORKSPACE: workspace_key(iv.workspace, iv.workspace_index),
                SummaryBy.MACHINE: iv.machine,
                SummaryBy.DAY: piece.day.isoformat(),
            }[by]
            totals.add(key, iv.idle, piece.ms, 1)
    return totals.result()


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_store_holds_what_the_builder_planned_over_a_random_session(
    store: IntervalStore, seed: int
) -> None:
    """Random sessions on two machines in two zones over the spring DST change, applied in
    random batches with replays and silence checks: the store's intervals, machines, answers
    of ``at`` and summaries over any range equal the in-memory contract's."""
    rnd = random.Random(seed)
    start = local_ms("2026-03-27 20:00")
    cuts: list[DeskBatch] = []
    for m in (M1, M2):
        events = _random_session(rnd, m, start + rnd.randint(0, H), 250)
        seq, i = 0, 0
        while i < len(events):
            size = rnd.randint(1, 20)
            seq += 1
            cuts.append(DeskBatch(m, seq, tuple(events[i : i + size]), HB))
            i += size
    cuts.sort(key=lambda b: b.events[0].time_ms)
    ledger = Ledger()
    for i, b in enumerate(cuts):
        group = cuts[max(0, i - rnd.randint(0, 2)) : i + 1]
        assert await store.apply(group) == ledger.apply(group)
        if rnd.random() < 0.2:
            now = b.events[-1].time_ms + rnd.randint(0, 2 * LIMIT)
            assert await store.close_silent(now) == ledger.close_silent(now)
    every = sorted(ledger.intervals.values(), key=lambda iv: (iv.start_ms, iv.machine))
    assert await store.intervals(*ALL) == every
    assert await store.machines() == [s.info() for _, s in sorted(ledger.states.items())]
    end = max(iv.end_ms for iv in every)
    for _ in range(30):
        t = rnd.randint(start, end)
        covering = [
            iv for iv in every if iv.start_ms <= t < iv.end_ms or (iv.open and t == iv.end_ms)
        ]
        assert await store.at(t) == sorted(covering, key=lambda iv: iv.machine)
    ranges = [(start, end + 1), (local_ms("2026-03-28 00:00"), local_ms("2026-03-30 00:00"))]
    ranges += [tuple(sorted((rnd.randint(start, end), rnd.randint(start, end)))) for _ in range(8)]
    for from_ms, to_ms in ranges:
        for by in SummaryBy:
            for m in (None, "m2"):
                got = await store.summary(from_ms, to_ms, by, m)
                assert got == _brute_summary(every, from_ms, to_ms, by, m), (from_ms, to_ms, by)


async def test_summaries_over_months_equal_the_intervals_split_by_day(
    store: IntervalStore,
) -> None:
    """Three months of daily sessions (one across a month's last midnight, one over the DST
    change): summaries over ranges made of whole months, whole days and partial days give
    what the intervals themselves add up to."""
    hourly = 3_600_000  # a watcher whose heartbeat is an hour: 20-minute switches stay open
    events: list[DeskEvent] = []
    for i in range(95):
        day = local_ms("2026-01-15 09:00") + i * 24 * H
        tasks = ("X", "Y", "") if i % 2 else ("Y", "", "X")
        events += [ev(day + k * 20 * MIN, "Code", task) for k, task in enumerate(tasks)]
        events.append(hb(day + H, "Code", tasks[-1]))
        if local_ms("2026-02-28 09:00") <= day < local_ms("2026-03-01 00:00"):
            late = local_ms("2026-02-28 23:30")
            events += [ev(late, "Mail", idle=True), hb(late + H, "Mail", idle=True)]
    cut = [
        DeskBatch(M1, n + 1, tuple(events[i : i + 25]), hourly)
        for n, i in enumerate(range(0, len(events), 25))
    ]
    await store.apply(cut)
    every = await store.intervals(*ALL)
    ranges = [
        (local_ms("2026-02-01 00:00"), local_ms("2026-04-01 00:00")),  # two whole months
        (local_ms("2026-01-20 12:00"), local_ms("2026-04-10 09:30")),  # months, days, edges
        (local_ms("2026-02-28 23:45"), local_ms("2026-03-01 00:15")),  # across a month's end
        (local_ms("2026-03-29 01:00"), local_ms("2026-05-01 00:00")),  # from inside DST day
        ALL,
    ]
    for from_ms, to_ms in ranges:
        for by in SummaryBy:
            got = await store.summary(from_ms, to_ms, by)
            assert got == _brute_summary(every, from_ms, to_ms, by, None), (from_ms, to_ms, by)
    assert await store.summary(*ranges[0], SummaryBy.MACHINE) == [
        Total("m1", 59 * 3600.0, 3600.0, 59 * 3 + 2)
    ]


async def _snapshot(
    store: IntervalStore,
) -> tuple[list[Interval], list[MachineInfo], list[list[Total]]]:
    """Everything a store answers about all time: intervals, machines, every summary."""
    summaries = [await store.summary(*ALL, by) for by in SummaryBy]
    return await store.intervals(*ALL), await store.machines(), summaries
