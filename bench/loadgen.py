"""The load generator: many simulated collectors, one bidi stream each, as fast as acks allow.

Each host gets its own channel (its own TCP connection, as separate machines have) and one
``MetricsIngest/Stream`` call. Its batches are built and serialized before anything is
timed. Then every stream sends its first batch and waits for its ack (the server learns the
source: watermark and series lookups, first rows), and only when all hosts are through that
does the clock start. From then on each stream writes batches back to back while fewer than
``window`` are un-acked (the real sender does the same with its ``window``) until all its
batches are sent (a fixed amount of work: ``--batches`` per host), or, with
``--cycle-seconds``, until that long has passed; then it half-closes and waits for the final
ack. The rate is the samples sent after the start divided by the time from the start to the
last ack, the one that covers everything: batches still in flight when sending ends count
only once they are acknowledged.

Run: ``python -m bench.loadgen --target 127.0.0.1:PORT --shape live`` (see ``--help``). The
last output line is a JSON object with ``"event": "loadgen done"``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import psutil

from bench.workload import SHAPES, HostPlan, build_batches, plan_host
from sysmonstm.v1.common_pb2 import Ack

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"
CONNECT_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 120.0


@dataclass
class HostStream:
    """One simulated collector's stream and its send/ack counters (batches)."""

    plan: HostPlan
    batches: list[bytes]
    call: grpc.aio.StreamStreamCall[bytes, Ack] | None = None
    sent: int = 0
    acked: int = 0
    last_ack_at: float = 0.0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_acks(self) -> None:
        assert self.call is not None
        async for ack in self.call:
            if ack.stored_through > self.acked:
                self.acked = ack.stored_through
                self.last_ack_at = time.perf_counter()
                self.progress.set()
        self.progress.set()

    async def wait_acked(self, through: int) -> None:
        while self.acked < through:
            if self.call is not None and self.call.done():
                raise RuntimeError(f"{self.plan.machine_id}: stream ended at ack {self.acked}")
            self.progress.clear()
            await self.progress.wait()

    async def write(self, data: bytes, window: int) -> None:
        while self.sent - self.acked >= window:
            self.progress.clear()
            await self.progress.wait()
            if self.call is not None and self.call.done():
                raise RuntimeError(f"{self.plan.machine_id}: stream ended at ack {self.acked}")
        assert self.call is not None
        await self.call.write(data)
        self.sent += 1

    async def send_all(self, window: int, deadline: float | None) -> None:
        """Send every batch, or cycle through them until ``deadline``; then half-close."""
        assert self.call is not None
        n = len(self.batches)
        if deadline is None:
            while self.sent < n:
                await self.write(self.batches[self.sent], window)
        else:
            while time.perf_counter() < deadline:
                await self.write(self.batches[self.sent % n], window)
        await self.call.done_writing()


def cpu_seconds(proc: psutil.Process | None) -> float:
    """CPU time a process has used so far (0 without one)."""
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return float(times.user + times.system)


@contextlib.asynccontextmanager
async def opened_streams(
    streams: list[HostStream], target: str, method: str, window: int
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Each stream on its own connection to ``target``, its ack reader running, its first
    batch sent and acked (so the server knows the source before any clock starts); yields
    the readers; on exit stops them and closes the channels."""
    # one connection per host: without a local subchannel pool, channels to one target share
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in streams]
    readers: list[asyncio.Task[None]] = []
    try:
        await asyncio.wait_for(
            asyncio.gather(*(c.channel_ready() for c in channels)), CONNECT_TIMEOUT_S
        )
        for st, channel in zip(streams, channels, strict=True):
            st.call = channel.stream_stream(
                method, request_serializer=lambda b: b, response_deserializer=Ack.FromString
            )()
            readers.append(asyncio.create_task(st.read_acks()))

        async def warm_up(st: HostStream) -> None:
            await st.write(st.batches[0], window)
            await st.wait_acked(1)

        await asyncio.wait_for(asyncio.gather(*(warm_up(st) for st in streams)), CONNECT_TIMEOUT_S)
        yield readers
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)


async def check_streams(streams: list[HostStream]) -> None:
    """Raise unless every stream ended OK with every batch it sent acked."""
    for st in streams:
        assert st.call is not None
        code = await st.call.code()
        if code is not grpc.StatusCode.OK:
            details = await st.call.details()
            raise RuntimeError(f"{st.plan.machine_id}: stream ended {code.name}: {details}")
        if st.acked != st.sent:
            raise RuntimeError(f"{st.plan.machine_id}: {st.sent} sent, {st.acked} acked")


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to send where; ``argv`` is the command line that runs exactly this load."""

    target: str
    shape: str = "live"
    hosts: int = 100
    batches: int = 150  # per host
    window: int = 64  # un-acked batches per stream
    cycle_seconds: float | None = None  # resend the built batches in a loop for this long
    server_pid: int | None = None  # measure this process's CPU over the timed phase
    seed: int = 0

    def argv(self) -> list[str]:
        args = [
            "-m",
            "bench.loadgen",
            "--target",
            self.target,
            "--shape",
            self.shape,
            "--hosts",
            str(self.hosts),
            "--batches",
            str(self.batches),
            "--window",
            str(self.window),
            "--seed",
            str(self.seed),
        ]
        if self.cycle_seconds is not None:
            args += ["--cycle-seconds", f"{self.cycle_seconds:g}"]
        if self.server_pid is not None:
            args += ["--server-pid", str(self.server_pid)]
        return args


async def generate(spec: LoadSpec) -> dict[str, Any]:
    """Run the load and return what it measured (see the module docstring).

    With ``cycle_seconds`` each host resends its built batches in a loop for that long (only
    for a server that keeps nothing); otherwise each host sends its ``batches`` once.
    """
    shape, window, cycle_seconds = SHAPES[spec.shape], spec.window, spec.cycle_seconds
    now_ms = time.time_ns() // 1_000_000
    built = time.perf_counter()
    streams = [
        HostStream(plan, build_batches(plan, spec.seed))
        for plan in (plan_host(i, shape, spec.batches, now_ms) for i in range(spec.hosts))
    ]
    build_s = time.perf_counter() - built
    async with opened_streams(streams, spec.target, METHOD, window) as readers:
        server = psutil.Process(spec.server_pid) if spec.server_pid else None
        server_cpu0, own_cpu0 = cpu_seconds(server), time.process_time()
        print(json.dumps({"event": "loadgen timing"}), flush=True)  # a profiler may attach
        start = time.perf_counter()
        deadline = None if cycle_seconds is None else start + cycle_seconds
        await asyncio.wait_for(
            asyncio.gather(*(st.send_all(window, deadline) for st in streams)),
            (cycle_seconds or 0.0) + SEND_TIMEOUT_S,
        )
        sent_by = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*readers), DRAIN_TIMEOUT_S)
        await check_streams(streams)
        done = max(st.last_ack_at for st in streams)
        wall = done - start
        server_cpu, own_cpu = cpu_seconds(server) - server_cpu0, time.process_time() - own_cpu0
    timed_batches = sum(st.sent - 1 for st in streams)
    samples = timed_batches * shape.samples
    return {
        "event": "loadgen done",
        "shape": shape.name,
        "hosts": spec.hosts,
        "window": window,
        "cycle": cycle_seconds is not None,
        "samples": samples,
        "batches": timed_batches,
        "seconds": wall,
        "rate": samples / wall,
        "batches_per_s": timed_batches / wall,
        "send_seconds": sent_by - start,
        "build_seconds": build_s,
        "server_cpu_cores": server_cpu / wall if server else None,
        "loadgen_cpu_cores": own_cpu / wall,
        "message_bytes": sum(len(b) for b in streams[0].batches) / len(streams[0].batches),
        "per_host": [
            {
                "machine_id": st.plan.machine_id,
                "batches": st.sent,
                "frames": st.sent * shape.frames,
                "first_ms": st.plan.first_ms,
                "last_ms": st.plan.frame_time(st.sent * shape.frames - 1),
            }
            for st in streams
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the ingest server")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="live")
    parser.add_argument("--hosts", type=int, default=100, help="simulated collectors")
    parser.add_argument("--batches", type=int, default=150, help="batches sent per host")
    parser.add_argument("--window", type=int, default=64, help="un-acked batches per stream")
    parser.add_argument(
        "--cycle-seconds",
        type=float,
        default=None,
        help="instead, resend the --batches built per host in a loop for this "
        "long (only for servers that keep nothing, such as bench.grpc_sink)",
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        default=None,
        help="measure this process's CPU time over the timed phase",
    )
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    spec = LoadSpec(
        a.target, a.shape, a.hosts, a.batches, a.window, a.cycle_seconds, a.server_pid, a.seed
    )
    try:
        result = asyncio.run(generate(spec))
    except (RuntimeError, TimeoutError, grpc.aio.AioRpcError) as exc:
        failure = {"event": "loadgen failed", "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(failure), flush=True)
        raise SystemExit(1) from exc
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
