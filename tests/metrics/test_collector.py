"""The collector and the demo hosts: options, identity, schedule, spool and stream."""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.config import load_settings
from sysmonstm.domains.metrics import collector
from sysmonstm.domains.metrics.collector import CollectorOptions, run_collector, ticks
from sysmonstm.domains.metrics.demo import DemoHost, run_demo_hosts
from sysmonstm.domains.metrics.sampler import HostSampler
from sysmonstm.errors import ConfigError
from sysmonstm.store.model import Tier
from sysmonstm.transport import source
from sysmonstm.transport.source import resolve_machine_id
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.aggregator_fixtures import aggregator_settings, running_aggregator
from tests.transport.ingest_peer import IngestPeer, eventually


@pytest.fixture
async def peer() -> AsyncIterator[IngestPeer]:
    p = await IngestPeer().start()
    yield p
    await p.stop()


@asynccontextmanager
async def running(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> AsyncIterator[None]:
    """Run ``work`` in the background; set ``stop`` and await it on exit."""
    task = asyncio.create_task(work)
    try:
        yield
        assert not task.done(), task
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


def options(tmp_path: Path, address: str, **kw: Any) -> CollectorOptions:
    return CollectorOptions(
        aggregators=(address,),
        spool_dir=tmp_path / "spool",
        interval_s=0.1,
        machine_id="m-test",
        hostname="host-test",
        labels={"env": "ci"},
        stop_grace_s=2.0,
        **kw,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interval_s": 0.05}, "at least 0.1"),
        ({"interval_s": math.nan}, "at least 0.1"),
        ({"aggregators": ()}, "aggregator"),
        ({"batch_frames": 0}, "batch_frames"),
        ({"spool_max_bytes": 0}, "spool_max_bytes"),
    ],
    ids=["interval-too-short", "interval-nan", "no-aggregator", "no-frames", "no-spool"],
)
def test_options_that_cannot_work_are_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {"aggregators": ("127.0.0.1:1",), "spool_dir": tmp_path}
    with pytest.raises(ConfigError, match=message):
        CollectorOptions(**{**base, **change})


def test_machine_id_comes_from_the_os_else_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os_file = tmp_path / "machine-id"
    os_file.write_text("abc123\n")
    monkeypatch.setattr(source, "MACHINE_ID_FILE", os_file)
    assert resolve_machine_id("explicit", tmp_path / "spool") == "explicit"
    assert resolve_machine_id(None, tmp_path / "spool") == "abc123"
    os_file.unlink()
    made = resolve_machine_id(None, tmp_path / "spool")
    assert len(made) == 32
    assert resolve_machine_id(None, tmp_path / "spool") == made


async def test_the_collector_streams_batches_of_this_host(tmp_path: Path, peer: IngestPeer) -> None:
    stop = asyncio.Event()
    async with running(run_collector(options(tmp_path, peer.address), stop), stop):
        await eventually(lambda: len(peer.stored) >= 4)
    batches = list(peer.stored.values())
    seqs = [b.sequence for b in batches]
    assert seqs == sorted(set(seqs))
    first = batches[0]
    assert first.source.machine_id == "m-test"
    assert first.source.hostname == "host-test"
    assert dict(first.source.labels) == {"env": "ci"}
    assert first.interval_ms == 100
    for batch in batches:
        assert len(batch.frames) == 1
        assert len(batch.frames[0].values) == len(batch.series)
        assert abs(batch.frames[0].time_unix_ms - time.time() * 1000) < 60_000
    assert "mem.used_pct" in first.series
    assert "cpu.used" in batches[-1].series
    times = [b.frames[0].time_unix_ms for b in batches]
    assert times == sorted(times)


async def test_ticks_end_when_stop_is_set_mid_wait_and_leave_no_task_behind() -> None:
    before = asyncio.all_tasks()
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    async with asyncio.timeout(10):
        seen = [n async for n in ticks(3600.0, stop)]  # the first tick: up to an hour away
    assert seen == []
    gen = ticks(0.1, asyncio.Event())
    async with contextlib.aclosing(gen):
        async for n in gen:  # a consumer that leaves early
            seen.append(n)
            break
    await asyncio.sleep(0)  # let the cancelled waiters finish
    assert asyncio.all_tasks() <= before | {asyncio.current_task()}
    assert seen == [0]


async def test_samples_that_may_block_run_in_a_thread_the_others_on_the_loop(
    tmp_path: Path, peer: IngestPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    where: list[tuple[bool, bool]] = []  # (may block, sampled on the loop's thread)
    loop_thread = threading.get_ident()

    class Recording(HostSampler):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def may_block(self) -> bool:
            return self.calls % 2 == 0

        def sample(self) -> tuple[tuple[str, ...], list[float]]:
            where.append((self.may_block(), threading.get_ident() == loop_thread))
            self.calls += 1
            return super().sample()

    monkeypatch.setattr(collector, "HostSampler", Recording)
    stop = asyncio.Event()
    async with running(run_collector(options(tmp_path, peer.address), stop), stop):
        await eventually(lambda: len(where) >= 6)
    ticked = where[1:]  # the first, priming sample always goes to a thread
    assert ticked
    assert all(on_loop != blocking for blocking, on_loop in ticked)


async def test_batches_are_spooled_while_the_aggregator_is_away_then_delivered(
    tmp_path: Path,
) -> None:
    peer = IngestPeer()
    stop = asyncio.Event()
    started_at_ms = 0
    async with running(run_collector(options(tmp_path, peer.address), stop), stop):
        await eventually(lambda: any((tmp_path / "spool").glob("*.seg")))
        await asyncio.sleep(0.3)  # a few more ticks with nobody listening
        started_at_ms = time.time_ns() // 1_000_000
        await peer.start()
        await eventually(
            lambda: any(b.frames[0].time_unix_ms > started_at_ms for b in peer.stored.values())
        )
    await peer.stop()
    times = sorted(b.frames[0].time_unix_ms for b in peer.stored.values())
    assert times[0] < started_at_ms  # sampled before anyone listened, yet delivered
    assert len(times) >= 3


async def test_batch_frames_groups_several_samples_per_batch(
    tmp_path: Path, peer: IngestPeer
) -> None:
    stop = asyncio.Event()
    opts = options(tmp_path, peer.address, batch_frames=3)
    async with running(run_collector(opts, stop), stop):
        await eventually(lambda: sum(len(b.frames) == 3 for b in peer.stored.values()) >= 2)
    for batch in peer.stored.values():
        assert 1 <= len(batch.frames) <= 3
        assert all(len(f.values) == len(batch.series) for f in batch.frames)


async def test_the_collector_feeds_a_real_aggregator(tmp_path: Path, data_dir: Path) -> None:
    settings = aggregator_settings(data_dir)
    async with running_aggregator(settings) as core:
        stop = asyncio.Event()
        opts = options(tmp_path, settings.aggregator.listen)
        async with running(run_collector(opts, stop), stop):
            async with asyncio.timeout(15):
                while await core.warm.stored_through("metrics", "m-test") == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        assert await core.warm.stored_through("metrics", "m-test") > 0
        points = await core.warm.read("metrics", "m-test", "mem.used_pct", 0, 2**62, Tier.RAW)
        assert len(points.times_ms) >= 1


def test_a_demo_host_reports_finite_plausible_values_and_spikes_now_and_then() -> None:
    host = DemoHost(7, seed=1)
    assert host.machine_id == "demo-7"
    assert 2 <= host.cores <= 16
    used: list[float] = []
    for _ in range(3000):
        series, values = host.sample(1.0)
        assert len(series) == len(values) == len(set(series))
        assert all(math.isfinite(v) for v in values)
        row = dict(zip(series, values, strict=True))
        assert 0 <= row["cpu.used"] <= 100
        assert 0 <= row["mem.used_pct"] <= 100
        used.append(row["cpu.used"])
    assert min(used) < 60
    assert max(used) > 85  # a spike within ~an hour of simulated time
    again = DemoHost(7, seed=1)
    assert again.sample(1.0) == DemoHost(7, seed=1).sample(1.0)  # a seed replays the same


async def test_demo_hosts_stream_each_as_its_own_source(tmp_path: Path, peer: IngestPeer) -> None:
    stop = asyncio.Event()
    work = run_demo_hosts(3, [peer.address], 0.1, tmp_path / "demo", stop, stop_grace_s=2.0)
    async with running(work, stop):
        await eventually(
            lambda: {b.source.machine_id for b in peer.received} == {"demo-1", "demo-2", "demo-3"}
        )
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"demo-1", "demo-2", "demo-3"}
    for batch in peer.received:
        assert len(batch.frames[0].values) == len(batch.series)
        assert batch.source.labels["demo"] == "true"
    assert isinstance(peer.received[0], MetricBatch)


def test_backlog_is_logged_once_when_it_builds_and_once_when_cleared(tmp_path: Path) -> None:
    """Unacknowledged batches past the threshold log one warning, not one per batch."""
    from structlog.testing import capture_logs

    from sysmonstm.transport.source import BacklogWatch
    from sysmonstm.transport.spool import Spool

    spool = Spool(tmp_path / "spool")
    watch = BacklogWatch(spool, interval_s=1.0, behind_s=5.0)
    with capture_logs() as logs:
        for _ in range(12):
            seq = spool.next_sequence()
            spool.append(seq, b"x")
            watch.check()
        spool.ack(seq)
        watch.check()
        watch.check()
    spool.close()
    events = [entry["event"] for entry in logs]
    assert events == ["aggregator is not acknowledging; spooling to disk", "backlog delivered"]


def test_the_collector_command_loads_none_of_the_server_side_libraries() -> None:
    """``sysmonstm collector`` runs all day on every machine: the web stack, numpy, pyarrow
    and the database drivers stay out of it (81 MB resident instead of 166)."""
    script = (
        "import sys\n"
        "from sysmonstm import cli\n"
        "from sysmonstm.domains.metrics.collector import collector_options, run_collector\n"
        "from sysmonstm.services import runner\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'numpy', 'pyarrow', 'asyncpg', 'redis',"
        " 'nats', 'msgspec')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == []


def test_batch_frames_goes_from_the_command_line_to_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--batch-frames`` (``collector.batch_frames``) reaches the collector's options; out
    of range it is refused before anything runs."""
    from typer.testing import CliRunner

    from sysmonstm import cli

    seen: list[CollectorOptions] = []

    async def fake_collector(opts: CollectorOptions, stop: asyncio.Event) -> None:
        seen.append(opts)

    monkeypatch.setattr(collector, "run_collector", fake_collector)
    monkeypatch.setattr(cli, "_run", lambda service: asyncio.run(service(asyncio.Event())))
    args = ["--data-dir", str(tmp_path), "collector", "--aggregator", "127.0.0.1:1"]
    ok = CliRunner().invoke(cli.app, [*args, "--batch-frames", "5"])
    assert ok.exit_code == 0, ok.output
    assert [o.batch_frames for o in seen] == [5]
    refused = CliRunner().invoke(cli.app, [*args, "--batch-frames", "0"])
    assert refused.exit_code == 2
    assert len(seen) == 1
    with pytest.raises(ConfigError, match="batch_frames"):
        load_settings({"collector": {"batch_frames": 4000}})
