"""Hypothesis sends malformed batches to a real aggregator while a valid stream runs.

Every malformed batch gets a clear gRPC status (naming its sequence), nothing of it is
stored, and the valid stream beside it loses nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.model import Tier
from sysmonstm.store.series import parse_series
from sysmonstm.transport.status import REJECTED_SEQ
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.aggregator_fixtures import (
    ThreadedAggregator,
    aggregator_settings,
    metric_batch,
    threaded_aggregator,
)

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"
Mutation = Callable[[MetricBatch], None]


def _now() -> int:
    return time.time_ns() // 1_000_000


def _set(attr: str, value: object) -> Mutation:
    def apply(b: MetricBatch) -> None:
        setattr(b, attr, value)

    return apply


def _frame_value(value: float) -> Mutation:
    def apply(b: MetricBatch) -> None:
        b.frames[0].values[0] = value

    return apply


def _frame_time(offset_ms: int) -> Mutation:
    def apply(b: MetricBatch) -> None:
        b.frames[0].time_unix_ms = _now() + offset_ms

    return apply


def _series(keys: list[str]) -> Mutation:
    def apply(b: MetricBatch) -> None:
        del b.series[:]
        b.series.extend(keys)
        del b.frames[0].values[:]
        b.frames[0].values.extend([1.0] * len(keys))

    return apply


def _machine(machine_id: str) -> Mutation:
    def apply(b: MetricBatch) -> None:
        b.source.machine_id = machine_id

    return apply


def _extra_value(b: MetricBatch) -> None:
    b.frames[0].values.append(3.0)


def _no_frames(b: MetricBatch) -> None:
    del b.frames[:]


def _duplicate_frame(b: MetricBatch) -> None:
    b.frames.add(time_unix_ms=b.frames[0].time_unix_ms, values=list(b.frames[0].values))


def _labels(n: int) -> Mutation:
    def apply(b: MetricBatch) -> None:
        for i in range(n):
            b.source.labels[f"k{i}"] = "v"

    return apply


def _bad_label(b: MetricBatch) -> None:
    b.source.labels["not a key"] = "v"


def _parses(key: str) -> bool:
    try:
        parse_series(key)
    except InvalidInputError:
        return False
    return True


bad_keys = st.one_of(
    st.sampled_from(
        [
            "",
            "9x",
            "a b",
            "cpu{}",
            'cpu{b="1",a="1"}',
            'cpu{a="1",a="2"}',
            "x{a=1}",
            "cpu{",
            'cpu{a="1"}}',
        ]
    ),
    st.text(min_size=1, max_size=40).filter(lambda s: not _parses(s)),
)

mutations = st.one_of(
    st.just(_machine("")),
    st.sampled_from(["bad id!", "-start", "x" * 129, "a/b"]).map(_machine),
    st.just(_set("sequence", 0)),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]).map(_frame_value),
    st.integers(10 * 60_000, 10**12).map(_frame_time),
    st.integers(8 * 86_400_000, 10**12).map(lambda d: _frame_time(-d)),
    st.just(_series([])),
    st.just(_series(["cpu.used", "cpu.used"])),
    st.lists(bad_keys, min_size=1, max_size=3).map(_series),
    st.just(_extra_value),
    st.just(_no_frames),
    st.just(_duplicate_frame),
    st.integers(33, 60).map(_labels),
    st.just(_bad_label),
    st.integers(86_400_001, 2**32 - 1).map(lambda v: _set("interval_ms", v)),
)


class Neighbour:
    """A valid collector streaming beside the fuzzing, on its own connection."""

    def __init__(self, address: str) -> None:
        self.sent = 0
        self.acked = 0
        self._stop = threading.Event()
        self._channel = grpc.insecure_channel(address)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start_ms = _now() - 3_600_000

    def _requests(self) -> Iterator[bytes]:
        while not self._stop.is_set():
            self.sent += 1
            yield metric_batch(
                "neighbour", self.sent, t_ms=self.start_ms + self.sent
            ).SerializeToString()
            time.sleep(0.01)

    def _run(self) -> None:
        call = self._channel.stream_stream(
            METHOD, request_serializer=lambda b: b, response_deserializer=Ack.FromString
        )
        for ack in call(self._requests()):
            self.acked = ack.stored_through

    def __enter__(self) -> Neighbour:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._channel.close()


@pytest.fixture(scope="module")
def aggregator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedAggregator]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    with threaded_aggregator(aggregator_settings(data)) as agg:
        yield agg


@pytest.fixture(scope="module")
def channel(aggregator: ThreadedAggregator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(aggregator.address) as ch:
        yield ch


counter = iter(range(1, 10**9))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=mutations)
def test_malformed_batches_get_a_clear_status_and_store_nothing(
    aggregator: ThreadedAggregator, channel: grpc.Channel, mutation: Mutation
) -> None:
    machine = f"fuzz-{next(counter)}"
    batch = metric_batch(machine, 7)
    mutation(batch)
    call = channel.stream_stream(
        METHOD, request_serializer=lambda b: b, response_deserializer=Ack.FromString
    )
    with pytest.raises(grpc.RpcError) as info:
        list(call(iter([batch.SerializeToString()]), timeout=10))
    err = info.value
    assert isinstance(err, grpc.Call)
    assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "rejected" in (err.details() or "")
    assert (REJECTED_SEQ, str(batch.sequence)) in tuple(err.trailing_metadata() or ())
    core = aggregator.core
    assert core is not None
    assert aggregator.call(core.warm.stored_through("metrics", machine)) == 0
    assert aggregator.call(core.warm.series("metrics", machine)) == []


def test_a_valid_stream_beside_malformed_ones_loses_nothing(
    aggregator: ThreadedAggregator, channel: grpc.Channel
) -> None:
    with Neighbour(aggregator.address) as neighbour:
        call = channel.stream_stream(
            METHOD, request_serializer=lambda b: b, response_deserializer=Ack.FromString
        )
        for i in range(50):
            bad = metric_batch(f"noise-{i}", 1, values=[float("nan"), 1.0])
            with pytest.raises(grpc.RpcError):
                list(call(iter([bad.SerializeToString()]), timeout=10))
        deadline = time.monotonic() + 20
        while neighbour.acked < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    sent = neighbour.sent
    core = aggregator.core
    assert core is not None
    deadline = time.monotonic() + 20
    while aggregator.call(core.warm.stored_through("metrics", "neighbour")) < sent - 1:
        assert time.monotonic() < deadline, "the valid stream's batches were not all stored"
        time.sleep(0.05)
    pts = aggregator.call(core.warm.read("metrics", "neighbour", "cpu.used", 0, _now(), Tier.RAW))
    stored = aggregator.call(core.warm.stored_through("metrics", "neighbour"))
    assert pts.times_ms.tolist() == [neighbour.start_ms + i for i in range(1, stored + 1)]
