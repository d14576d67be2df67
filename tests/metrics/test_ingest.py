"""Metrics ingest through a real gRPC aggregator: acks, dedupe, refusals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import grpc
import pytest

from sysmonstm.events.testing import Capture
from sysmonstm.runtime import Core
from sysmonstm.store.model import SeriesBatch, Tier
from sysmonstm.transport.status import REJECTED_SEQ
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.aggregator_fixtures import aggregator_settings, metric_batch, running_aggregator
from tests.ingest_stream import Outcome
from tests.ingest_stream import exchange as exchange_on

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    settings = aggregator_settings(data_dir, max_series_per_source=50, max_message_bytes=256 * 1024)
    async with running_aggregator(settings) as c:
        yield c


async def exchange(core: Core, batches: Iterable[MetricBatch | bytes]) -> Outcome:
    """Send ``batches`` on one stream, half-close, collect the acks and the final status."""
    return await exchange_on(core.settings.aggregator.listen, METHOD, batches)


async def raw_times(core: Core, machine: str) -> list[int]:
    pts = await core.warm.read("metrics", machine, "cpu.used", 0, 2**62, Tier.RAW)
    return pts.times_ms.tolist()


async def test_a_stream_is_stored_published_and_acknowledged(core: Core) -> None:
    capture = await Capture.start(core.bus, "metrics.*")
    t0 = time.time_ns() // 1_000_000 - 60_000
    out = await exchange(core, [metric_batch("web-1", i, t_ms=t0 + i * 1000) for i in range(1, 21)])
    assert out.code is grpc.StatusCode.OK
    assert out.acks[-1] == 20
    assert out.acks == sorted(out.acks)
    assert await raw_times(core, "web-1") == [t0 + i * 1000 for i in range(1, 21)]
    event = await capture.wait_for(lambda e: e.payload["seq"] == 20)
    assert event.topic == "metrics.web-1"
    assert event.id == "metrics:web-1:20"  # the same id whenever batch 20 is published
    assert event.payload["host"] == "host-web-1"
    assert event.payload["series"] == ["cpu.used", 'disk.used_pct{mount="/"}']
    assert event.payload["values"] == [[1.0, 2.0]]
    await capture.close()


async def test_a_batch_reaches_the_bus_before_the_warm_tier_has_written_it(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = await Capture.start(core.bus, "metrics.*")
    gate = asyncio.Event()
    write = core.warm.write

    async def held(batches: Sequence[SeriesBatch]) -> Sequence[SeriesBatch]:
        await gate.wait()
        return await write(batches)

    monkeypatch.setattr(core.warm, "write", held)
    t0 = time.time_ns() // 1_000_000 - 60_000
    sending = asyncio.create_task(exchange(core, [metric_batch("web-5", 1, t_ms=t0)]))
    event = await capture.wait_for(lambda e: e.payload["source"] == "web-5")
    assert event.payload["times_ms"] == [t0]
    assert await core.warm.stored_through("metrics", "web-5") == 0
    gate.set()
    out = await sending
    assert out.code is grpc.StatusCode.OK
    assert out.acks == [1]
    assert await raw_times(core, "web-5") == [t0]
    await capture.close()


async def test_a_replay_is_acknowledged_and_stored_once(core: Core) -> None:
    t0 = time.time_ns() // 1_000_000 - 60_000
    batches = [metric_batch("web-2", i, t_ms=t0 + i * 1000) for i in range(1, 31)]
    await exchange(core, batches[:20])
    out = await exchange(core, batches)
    assert out.code is grpc.StatusCode.OK
    assert out.acks[-1] == 30
    assert await raw_times(core, "web-2") == [t0 + i * 1000 for i in range(1, 31)]
    out = await exchange(core, batches[:5])  # all old: acked at once, nothing stored
    assert out.acks == [30]


async def test_a_refused_batch_names_its_sequence_and_keeps_the_earlier_ones(core: Core) -> None:
    t0 = time.time_ns() // 1_000_000 - 60_000
    good = [metric_batch("web-3", i, t_ms=t0 + i * 1000) for i in range(1, 6)]
    bad = metric_batch("web-3", 6, t_ms=t0 + 6000, values=[float("inf"), 1.0])
    out = await exchange(core, [*good, bad, metric_batch("web-3", 7, t_ms=t0 + 7000)])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "batch 6" in out.details
    assert "not a finite number" in out.details
    assert (REJECTED_SEQ, "6") in out.trailing
    await asyncio.sleep(0.2)
    assert await raw_times(core, "web-3") == [t0 + i * 1000 for i in range(1, 6)]


async def test_one_stream_cannot_carry_two_sources(core: Core) -> None:
    out = await exchange(core, [metric_batch("a-1", 1), metric_batch("b-1", 1)])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "one stream carries one source" in out.details


async def test_unbounded_tag_values_hit_the_series_limit(core: Core) -> None:
    batches = [metric_batch("card-1", i, series=(f'req.ms{{id="{i}"}}',)) for i in range(1, 60)]
    out = await exchange(core, batches)
    assert out.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the limit is 50" in out.details
    assert len(await core.warm.series("metrics", "card-1")) <= 50


async def test_an_oversized_message_is_refused_by_size(core: Core) -> None:
    huge = metric_batch(
        "big-1", 1, series=tuple(f"m{i}" for i in range(40_000)), values=[1.0] * 40_000
    )
    out = await exchange(core, [huge])
    assert out.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await core.warm.stored_through("metrics", "big-1") == 0


async def test_garbage_bytes_get_a_clear_error(core: Core) -> None:
    out = await exchange(core, [b"\xff\xff\xff not protobuf"])
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "MetricBatch" in out.details
