"""The latency suite's load: simulated collectors at a steady 1 Hz, stamped as they send.

Each host has its own channel and ``MetricsIngest/Stream`` call (``bench.loadgen``'s
``opened_streams``), reports the 100 series of ``bench.workload`` and sends one
single-frame ``MetricBatch`` per interval, as the real collector does (``batch_frames=1``).
Unlike the real collector, whose ticks fall on the same wall-clock instant on every host,
host ``i`` sends at ``i / hosts`` of the way through each interval, so the load is spread
over the second. A frame's time is the wall clock (ms) when its batch is built, just
before it is written: the moment the sample is taken.

With ``--go PATH`` instead of ``--target`` it builds what it can, then waits for that file
to hold the target's ``HOST:PORT`` (so it can start beside the servers, and send nothing
before the WebSocket client listens). Sequence 1 of every host is sent and acknowledged
before the schedule starts (connection set-up); then each host sends sequences 2.. for
``--seconds``. The last output line is a JSON object with ``"event": "latency load
done"``: the sequences each host sent, and how late the sends were against their slots (a
loaded machine shows here).

Run: ``python -m bench.latency_load --target 127.0.0.1:PORT`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench.loadgen import METHOD, HostStream, check_streams, opened_streams
from bench.workload import (
    SERIES_PER_HOST,
    SHAPES,
    HostPlan,
    host_series,
    random_walk,
)
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.metrics_pb2 import MetricBatch

WINDOW = 64  # un-acked batches per stream (never reached at 1 Hz)
DRAIN_TIMEOUT_S = 60.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Collector:
    """One simulated host: its identity, its values, and the batch it sends next."""

    index: int
    interval_ms: int
    values: np.ndarray  # frames x series
    series: tuple[str, ...]
    prefix: str = "bench"

    @property
    def source(self) -> SourceIdentity:
        mid = f"{self.prefix}-{self.index:03d}"
        return SourceIdentity(
            machine_id=mid, hostname=f"{mid}.bench", labels={"env": "bench", "rack": "r0"}
        )

    def batch(self, sequence: int) -> bytes:
        """Sequence ``sequence``'s batch, its one frame stamped now."""
        msg = MetricBatch(
            source=self.source,
            sequence=sequence,
            series=self.series,
            interval_ms=self.interval_ms,
        )
        row = self.values[(sequence - 1) % len(self.values)].tolist()
        msg.frames.add(time_unix_ms=wall_ms(), values=row)
        return msg.SerializeToString()


async def _paced(
    st: HostStream, host: Collector, start: float, offset: float, interval: float, n: int
) -> list[float]:
    """Send sequences 2..n+1 at ``start + offset + k * interval``; each send's lateness (s)."""
    late: list[float] = []
    loop = asyncio.get_running_loop()
    for k in range(n):
        slot = start + offset + k * interval
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(loop.time() - slot)
        await st.write(host.batch(k + 2), WINDOW)
    assert st.call is not None
    await st.call.done_writing()
    return late


def wait_for(go: Path, within_s: float = 120.0) -> str:
    """The target written into ``go``, once it is there."""
    deadline = time.monotonic() + within_s
    while not (go.exists() and go.read_text().endswith("\n")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no target in {go} after {within_s} s")
        time.sleep(0.01)
    return go.read_text().strip()


def simulated(
    hosts: int, seconds: float, interval: float, seed: int, prefix: str = "bench"
) -> list[Collector]:
    """``hosts`` collectors (machine ids ``<prefix>-000`` ...) with values for ``seconds``."""
    series = host_series()
    rng = np.random.default_rng(seed)
    frames = max(2, round(seconds / interval) + 1)
    return [
        Collector(
            i, round(interval * 1000), random_walk(rng, frames, SERIES_PER_HOST), series, prefix
        )
        for i in range(hosts)
    ]


async def generate(
    target: str, collectors: list[Collector], seconds: float, interval: float
) -> Any:
    hosts = len(collectors)
    # opened_streams sends ``batches[0]`` of each stream and waits for its ack
    streams = [
        HostStream(HostPlan(c.index, SHAPES["live"], 1, wall_ms()), [c.batch(1)])
        for c in collectors
    ]
    n = round(seconds / interval)
    async with opened_streams(streams, target, METHOD, WINDOW) as readers:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2
        start_ms = wall_ms() + 200
        print(json.dumps({"event": "latency load sending", "start_ms": start_ms}), flush=True)
        lateness = await asyncio.gather(
            *(
                _paced(st, c, start, interval * c.index / hosts, interval, n)
                for st, c in zip(streams, collectors, strict=True)
            )
        )
        await asyncio.wait_for(asyncio.gather(*readers), DRAIN_TIMEOUT_S)
        await check_streams(streams)
    late = sorted(x for per in lateness for x in per)
    return {
        "event": "latency load done",
        "start_ms": start_ms,
        "hosts": {c.source.machine_id: st.sent for c, st in zip(collectors, streams, strict=True)},
        "frames": sum(st.sent for st in streams),
        "late_p99_ms": late[int(0.99 * (len(late) - 1))] * 1000 if late else 0.0,
        "late_max_ms": late[-1] * 1000 if late else 0.0,
        "message_bytes": len(collectors[0].batch(1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", help="HOST:PORT of the aggregator")
    where.add_argument("--go", type=Path, help="wait for this file to name HOST:PORT")
    parser.add_argument("--hosts", type=int, default=100, help="simulated collectors")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", default="bench", help="machine ids are PREFIX-000 ...")
    a = parser.parse_args()
    collectors = simulated(a.hosts, a.seconds, a.interval, a.seed, a.prefix)
    try:
        target = a.target if a.go is None else wait_for(a.go)
        result = asyncio.run(generate(target, collectors, a.seconds, a.interval))
    except (RuntimeError, TimeoutError, grpc.aio.AioRpcError) as exc:
        failure = {"event": "latency load failed", "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(failure), flush=True)
        raise SystemExit(1) from exc
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
