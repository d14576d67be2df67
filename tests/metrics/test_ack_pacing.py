"""Metrics streams are acked at a pace (``aggregator.metrics_ack_every_s``): the first ack of
a stream and a half-close at once, a backlog every few batches, a trickle by time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from sysmonstm.runtime import Core
from sysmonstm.transport.stream_server import AckPacing
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.aggregator_fixtures import aggregator_settings, metric_batch, running_aggregator

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"
Call = grpc.aio.StreamStreamCall[bytes, Ack]


@asynccontextmanager
async def aggregator(data_dir: Path, every: str) -> AsyncIterator[Core]:
    async with running_aggregator(aggregator_settings(data_dir, metrics_ack_every_s=every)) as c:
        yield c


@asynccontextmanager
async def stream(core: Core) -> AsyncIterator[Call]:
    async with grpc.aio.insecure_channel(core.settings.aggregator.listen) as channel:
        yield channel.stream_stream(
            METHOD, request_serializer=lambda b: b, response_deserializer=Ack.FromString
        )()


def batch(seq: int) -> bytes:
    t0 = time.time_ns() // 1_000_000 - 600_000
    out: MetricBatch = metric_batch("pace-1", seq, t_ms=t0 + seq * 1000)
    return out.SerializeToString()


async def next_ack(call: Call) -> int:
    ack = await call.read()
    assert isinstance(ack, Ack)
    return ack.stored_through


async def test_a_backlog_is_acked_every_few_batches_and_a_half_close_at_once(
    data_dir: Path,
) -> None:
    async with aggregator(data_dir, "1h") as core, stream(core) as call:
        await call.write(batch(1))
        assert await next_ack(call) == 1  # a stream's first ack goes at once
        for seq in range(2, 9):  # seven waiting: under the pace's eight, an hour away
            await call.write(batch(seq))
        await call.write(batch(9))  # the eighth
        assert await next_ack(call) == 9
        await call.write(batch(10))
        await call.done_writing()
        assert await next_ack(call) == 10  # the half-close is answered at once
        assert await call.read() is grpc.aio.EOF
        assert await call.code() is grpc.StatusCode.OK
        assert await core.warm.stored_through("metrics", "pace-1") == 10


async def test_a_trickle_is_acked_once_the_pace_has_passed(data_dir: Path) -> None:
    async with aggregator(data_dir, "200ms") as core, stream(core) as call:
        await call.write(batch(1))
        assert await next_ack(call) == 1
        await call.write(batch(2))
        await call.write(batch(3))
        assert await next_ack(call) == 3  # one ack for both, without a half-close
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF


async def test_zero_acks_every_stored_batch(data_dir: Path) -> None:
    async with aggregator(data_dir, "0") as core, stream(core) as call:
        for seq in (1, 2, 3):
            await call.write(batch(seq))
            assert await next_ack(call) == seq
        await call.done_writing()


@pytest.mark.parametrize(("every_s", "batches"), [(-1.0, 8), (float("nan"), 8), (1.0, 0)])
def test_a_pace_must_make_sense(every_s: float, batches: int) -> None:
    with pytest.raises(ValueError, match=r"every_s|batches"):
        AckPacing(every_s=every_s, batches=batches)
