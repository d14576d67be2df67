"""Deskmeter ingest through a real gRPC aggregator: intervals in the store, hot state, exact
bus payloads, replays that change nothing, refusals that store nothing, silence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sysmonstm.config import Settings, load_settings
from sysmonstm.domains.deskmeter.hot import machines_now, recent_switches
from sysmonstm.domains.deskmeter.model import Interval, Machine, MachineInfo, SummaryBy
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.events.testing import Capture
from sysmonstm.runtime import Core
from sysmonstm.transport.status import REJECTED_SEQ
from sysmonstm.v1.deskmeter_pb2 import DeskBatch
from tests.aggregator_fixtures import running_aggregator
from tests.conftest import free_port
from tests.deskmeter.wire import HEARTBEAT, SWITCH, desk_batch, event
from tests.ingest_stream import Outcome
from tests.ingest_stream import exchange as exchange_on

METHOD = "/sysmonstm.v1.DeskmeterIngest/Stream"
BERLIN = "Europe/Berlin"
HOST = "laptop"


def now_s() -> int:
    """A whole second a few minutes ago: events are recent, and silence is seconds away."""
    return (time.time_ns() // 1_000_000_000 - 180) * 1000


def desk_settings(data_dir: Path, **sections: Any) -> Settings:
    listen = f"127.0.0.1:{free_port()}"
    return load_settings({"data_dir": str(data_dir), "aggregator": {"listen": listen}, **sections})


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    async with running_aggregator(desk_settings(data_dir)) as c:
        yield c


async def exchange(core: Core, batches: Iterable[DeskBatch | bytes]) -> Outcome:
    """Send ``batches`` on one stream, half-close, collect the acks and the final status."""
    return await exchange_on(core.settings.aggregator.listen, METHOD, batches)


def interval(
    start: int, end: int, workspace: str, task: str = "", index: int = 0, *, open: bool = False
) -> Interval:
    return Interval("m-1", start, end, index, workspace, task, False, open, BERLIN)


async def all_intervals(core: Core, machine: str = "m-1") -> list[Interval]:
    store = await interval_store(core)
    return await store.intervals(0, 2**62, machine)


async def test_a_stream_becomes_intervals_hot_state_and_exact_bus_events(core: Core) -> None:
    capture = await Capture.start(core.bus, "workspace.>")
    t = now_s()
    out = await exchange(
        core,
        [
            desk_batch("m-1", 1, [event(t, workspace="Code", task="Project X")], host=HOST),
            desk_batch(
                "m-1", 2, [event(t + 10_000, HEARTBEAT, "Code", task="Project X")], host=HOST
            ),
            desk_batch(
                "m-1", 3, [event(t + 15_000, workspace="Mail", index=1, idle_ms=1200)], host=HOST
            ),
            desk_batch(
                "m-1", 4, [event(t + 25_000, HEARTBEAT, "Mail", 1, idle_ms=11_200)], host=HOST
            ),
        ],
    )
    assert out.code is grpc.StatusCode.OK
    assert out.acks[-1] == 4
    assert await all_intervals(core) == [
        interval(t, t + 15_000, "Code", "Project X"),
        interval(t + 15_000, t + 25_000, "Mail", index=1, open=True),
    ]
    last = await capture.wait_for(lambda e: e.payload["time_ms"] == t + 25_000)
    got = [(e.topic, e.payload, e.source, e.time_ms) for e in capture.events]
    base = {"machine": "m-1", "host": HOST, "idle": False, "time_zone": BERLIN}
    assert got == [
        (
            "workspace.switch.m-1",
            {
                **base,
                "time_ms": t,
                "kind": "switch",
                "workspace_index": 0,
                "workspace": "Code",
                "task": "Project X",
                "idle_ms": 0,
                "current": {"start_ms": t, "duration_s": 0.0},
                "closed": None,
            },
            "m-1",
            t,
        ),
        (
            "workspace.heartbeat.m-1",
            {
                **base,
                "time_ms": t + 10_000,
                "kind": "heartbeat",
                "workspace_index": 0,
                "workspace": "Code",
                "task": "Project X",
                "idle_ms": 0,
                "current": {"start_ms": t, "duration_s": 10.0},
                "closed": None,
            },
            "m-1",
            t + 10_000,
        ),
        (
            "workspace.switch.m-1",
            {
                **base,
                "time_ms": t + 15_000,
                "kind": "switch",
                "workspace_index": 1,
                "workspace": "Mail",
                "task": "",
                "idle_ms": 1200,
                "current": {"start_ms": t + 15_000, "duration_s": 0.0},
                "closed": {
                    "start_ms": t,
                    "end_ms": t + 15_000,
                    "workspace": "Code",
                    "task": "Project X",
                    "idle": False,
                },
            },
            "m-1",
            t + 15_000,
        ),
        (
            "workspace.heartbeat.m-1",
            {
                **base,
                "time_ms": t + 25_000,
                "kind": "heartbeat",
                "workspace_index": 1,
                "workspace": "Mail",
                "task": "",
                "idle_ms": 11_200,
                "current": {"start_ms": t + 15_000, "duration_s": 10.0},
                "closed": None,
            },
            "m-1",
            t + 25_000,
        ),
    ]
    assert last.id == "deskmeter.m-1.4.0"
    # the hot tier: the machine's state now, and the switches of the last minutes
    assert await machines_now(core) == [
        MachineInfo(
            Machine("m-1", HOST, BERLIN),
            t + 25_000,
            4,
            interval(t + 15_000, t + 25_000, "Mail", index=1, open=True),
        )
    ]
    assert await recent_switches(core, 0) == [got[0][1], got[2][1]]
    await capture.close()


async def test_task_rules_name_the_task_of_events_without_one(data_dir: Path) -> None:
    rules = [{"workspace": "Mail*", "task": "Email"}, {"workspace": "*", "task": "Other"}]
    settings = desk_settings(data_dir, deskmeter={"task_rules": rules})
    async with running_aggregator(settings) as core:
        capture = await Capture.start(core.bus, "workspace.switch.*")
        t = now_s()
        await exchange(
            core,
            [
                desk_batch(
                    "m-1",
                    1,
                    [
                        event(t, workspace="Mailbox"),
                        event(t + 1000, workspace="Web", index=2),
                        event(t + 2000, workspace="Mailbox", task="Support"),
                    ],
                )
            ],
        )
        assert [(i.workspace, i.task) for i in await all_intervals(core)] == [
            ("Mailbox", "Email"),
            ("Web", "Other"),
            ("Mailbox", "Support"),
        ]
        await capture.wait_for(lambda e: e.payload["time_ms"] == t + 2000)
        assert [e.payload["task"] for e in capture.events] == ["Email", "Other", "Support"]
        await capture.close()


async def test_replays_on_a_new_stream_change_nothing(core: Core) -> None:
    """Intervals, daily totals, watermark and the bus stay as they were; acks still come."""
    t = now_s()
    batches = [
        desk_batch("m-2", i, [event(t + i * 5000, HEARTBEAT if i % 2 else SWITCH, f"W{i // 2}")])
        for i in range(1, 9)
    ]
    await exchange(core, batches[:6])
    store = await interval_store(core)
    intervals_before = await all_intervals(core, "m-2")
    totals_before = await store.summary(0, 2**62, SummaryBy.TASK, "m-2")
    capture = await Capture.start(core.bus, "workspace.>")
    out = await exchange(core, batches[:6])  # all old: acked at once, nothing applied
    assert out.code is grpc.StatusCode.OK
    assert out.acks == [6]
    assert await all_intervals(core, "m-2") == intervals_before
    assert await store.summary(0, 2**62, SummaryBy.TASK, "m-2") == totals_before
    out = await exchange(core, batches)  # old and new: only the new ones count
    assert out.acks[-1] == 8
    await capture.wait_for(lambda e: e.payload["time_ms"] == t + 40_000)
    assert [e.payload["time_ms"] for e in capture.events] == [t + 35_000, t + 40_000]
    assert await store.stored_through("m-2") == 8
    assert [(i.start_ms, i.end_ms) for i in await all_intervals(core, "m-2")] == [
        (t + 5000, t + 10_000),
        (t + 10_000, t + 20_000),
        (t + 20_000, t + 30_000),
        (t + 30_000, t + 40_000),
        (t + 40_000, t + 40_000),
    ]
    await capture.close()


async def test_a_refused_batch_names_its_sequence_stores_nothing_and_the_stream_goes_on(
    core: Core,
) -> None:
    """A batch with a bad time zone ends the call with INVALID_ARGUMENT naming it; the
    batches before it are stored, none of it is, and a new stream carries on after it."""
    t = now_s()
    good = [desk_batch("m-3", i, [event(t + i * 1000, workspace=f"W{i}")]) for i in (1, 2)]
    bad = desk_batch("m-3", 3, [event(t + 3000, workspace="W3", time_zone="Mars/Olympus")])
    # the bad batch goes last: a client writing on after the server ended the call may
    # see INTERNAL instead of the server's status (grpc/grpc#36066, grpcio's aio client)
    out = await exchange(core, [*good, bad])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "DeskBatch batch 3 rejected" in out.details
    assert "'Mars/Olympus' is not an IANA time zone" in out.details
    assert (REJECTED_SEQ, "3") in out.trailing
    await asyncio.sleep(0.2)  # give a wrongly queued batch the time to show up
    store = await interval_store(core)
    assert await store.stored_through("m-3") == 2
    assert [i.workspace for i in await all_intervals(core, "m-3")] == ["W1", "W2"]
    out = await exchange(core, [desk_batch("m-3", 4, [event(t + 4000, workspace="W4")])])
    assert out.code is grpc.StatusCode.OK
    assert out.acks[-1] == 4
    assert [i.workspace for i in await all_intervals(core, "m-3")] == ["W1", "W2", "W4"]


async def test_a_batch_older_than_the_machines_last_event_is_refused_but_replays_pass(
    core: Core,
) -> None:
    t = now_s()
    first = desk_batch("m-4", 1, [event(t), event(t + 10_000, HEARTBEAT)])
    await exchange(core, [first])
    out = await exchange(core, [desk_batch("m-4", 2, [event(t + 5000, workspace="Web")])])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert f"before the machine's last applied event at {t + 10_000} ms" in out.details
    assert (REJECTED_SEQ, "2") in out.trailing
    out = await exchange(core, [first])  # the same batch again: a duplicate, not an error
    assert out.code is grpc.StatusCode.OK
    assert out.acks == [1]
    assert await all_intervals(core, "m-4") == [
        Interval("m-4", t, t + 10_000, 0, "Code", "", False, True, BERLIN)
    ]


async def test_the_order_check_knows_machines_from_before_a_restart(data_dir: Path) -> None:
    """A new aggregator on the same store refuses what the old one would have."""
    t = now_s()
    settings = desk_settings(data_dir)
    async with running_aggregator(settings) as core:
        await exchange(core, [desk_batch("m-5", 1, [event(t + 10_000)])])
    async with running_aggregator(settings) as core:
        out = await exchange(core, [desk_batch("m-5", 2, [event(t)])])
        assert out.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "before the machine's last applied event" in out.details
        assert len(await all_intervals(core, "m-5")) == 1


async def test_one_stream_carries_one_machine(core: Core) -> None:
    t = now_s()
    out = await exchange(core, [desk_batch("a-1", 1, [event(t)]), desk_batch("b-1", 1, [event(t)])])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "one stream carries one source" in out.details
    assert await all_intervals(core, "b-1") == []


async def test_garbage_bytes_get_a_clear_error(core: Core) -> None:
    out = await exchange(core, [b"\xff\xff\xff not protobuf"])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid DeskBatch message" in out.details


async def wait_for(probe: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


async def test_silence_closes_the_open_interval_at_its_last_event(core: Core) -> None:
    """A machine that stops sending has its interval closed at its last heartbeat by the
    aggregator's periodic check, in the store and in the hot state."""
    t = now_s()  # three minutes ago: far past the 25 s silence limit already
    await exchange(core, [desk_batch("m-6", 1, [event(t), event(t + 10_000, HEARTBEAT)])])
    store = await interval_store(core)

    async def closed() -> bool:
        info = [i for i in await store.machines() if i.machine.id == "m-6"]
        return bool(info) and info[0].current is None

    await wait_for(closed, 10.0, "the silent interval closed")
    assert await all_intervals(core, "m-6") == [
        Interval("m-6", t, t + 10_000, 0, "Code", "", False, False, BERLIN)
    ]

    async def hot_closed() -> bool:
        return any(
            s.body["machine"] == "m-6" and s.body["current"] is None
            for s in await core.hot.states("deskmeter")
        )

    await wait_for(hot_closed, 5.0, "the hot state without an open interval")
    # the next event after the silence opens a new interval: a switch on the bus
    capture = await Capture.start(core.bus, "workspace.>")
    await exchange(core, [desk_batch("m-6", 2, [event(t + 60_000, HEARTBEAT)])])
    env = await capture.wait_for(lambda e: e.payload["time_ms"] == t + 60_000)
    assert env.topic == "workspace.switch.m-6"
    assert env.payload["closed"] == {
        "start_ms": t,
        "end_ms": t + 10_000,
        "workspace": "Code",
        "task": "",
        "idle": False,
    }
    assert [(i.start_ms, i.end_ms, i.open) for i in await all_intervals(core, "m-6")] == [
        (t, t + 10_000, False),
        (t + 60_000, t + 60_000, True),
    ]
    await capture.close()


async def test_with_the_hot_tier_down_ingest_goes_on_and_readers_use_the_store(
    data_dir: Path,
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = desk_settings(data_dir, hot={"url": dead_redis})
    async with running_aggregator(settings) as core:
        assert core.hot.degraded
        t = now_s()
        out = await exchange(
            core,
            [desk_batch("m-7", 1, [event(t), event(t + 5000, workspace="Web", index=2)])],
        )
        assert out.acks == [1]
        assert await machines_now(core) == [
            MachineInfo(
                Machine("m-7", "host-m-7", BERLIN),
                t + 5000,
                1,
                Interval("m-7", t + 5000, t + 5000, 2, "Web", "", False, True, BERLIN),
            )
        ]
        switches = await recent_switches(core, 0)
        assert [(s["workspace"], s["closed"]) for s in switches] == [
            ("Code", None),
            (
                "Web",
                {"start_ms": t, "end_ms": t + 5000, "workspace": "Code", "task": "", "idle": False},
            ),
        ]


async def test_on_redis_the_hot_state_is_shared_by_every_process(
    data_dir: Path, redis_server_url: str, redis_prefix: str
) -> None:
    """The aggregator writes the machine's state to Redis; another core reads it there."""
    settings = desk_settings(data_dir, hot={"url": f"{redis_server_url}?prefix={redis_prefix}"})
    t = now_s()
    async with running_aggregator(settings) as core:
        await exchange(core, [desk_batch("m-8", 1, [event(t, workspace="Chat", index=3)])])
    reader = await Core.open(settings)
    try:
        states = await reader.hot.states("deskmeter")
        assert [(s.key, s.time_ms, s.body["current"]) for s in states] == [
            (
                "m-8",
                t,
                {
                    "start_ms": t,
                    "end_ms": t,
                    "workspace_index": 3,
                    "workspace": "Chat",
                    "task": "",
                    "idle": False,
                    "time_zone": BERLIN,
                },
            )
        ]
        assert [s["workspace"] for s in await recent_switches(reader, t)] == ["Chat"]
    finally:
        await reader.close()
