"""Deskmeter watchers on the native path: ``DeskBatch`` streams into a real aggregator.

``--sources`` simulated watchers, each on its own channel and ``DeskmeterIngest/Stream``
call, send the heartbeats of ``bench.heartbeat_workload`` (a SWITCH where the app changes, a
HEARTBEAT otherwise) in batches of ``--per-batch`` events: 1 is what the watcher sends (each
event its own batch, straight from its spool), larger is what a replay or an import sends.
At most ``--window`` batches are un-acked per stream, the real sender's default. The
streams use ``bench.loadgen``'s ``HostStream``: each sends its first batch and waits for its
ack before the clock starts (the aggregator learns the machine), then the rest back to
back; the rate counts the events sent after the start over the time to the last ack.

Run: ``python -m bench.desk_loadgen --target 127.0.0.1:PORT --count 20000 --start-ms MS``.
The last output line is a JSON object with ``"event": "desk loadgen done"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import grpc
import psutil

from bench.heartbeat_workload import desk_batches, machine_id
from bench.loadgen import (
    DRAIN_TIMEOUT_S,
    SEND_TIMEOUT_S,
    HostStream,
    check_streams,
    cpu_seconds,
    opened_streams,
)
from sysmonstm.transport.sender import SenderOptions

METHOD = "/sysmonstm.v1.DeskmeterIngest/Stream"


@dataclass(frozen=True, slots=True)
class _Watcher:
    """What ``HostStream`` names its stream by."""

    machine_id: str


async def run(
    target: str,
    sources: int,
    count: int,
    per_batch: int,
    start_ms: int,
    window: int,
    server_pid: int | None,
) -> dict[str, Any]:
    streams = [
        HostStream(_Watcher(machine_id(s)), desk_batches(s, count, start_ms, per_batch))  # type: ignore[arg-type]
        for s in range(sources)
    ]
    async with opened_streams(streams, target, METHOD, window) as readers:
        server = psutil.Process(server_pid) if server_pid else None
        server0, own0 = cpu_seconds(server), time.process_time()
        start = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(st.send_all(window, None) for st in streams)), SEND_TIMEOUT_S
        )
        await asyncio.wait_for(asyncio.gather(*readers), DRAIN_TIMEOUT_S)
        await check_streams(streams)
        wall = max(st.last_ack_at for st in streams) - start
        server_cpu, own_cpu = cpu_seconds(server) - server0, time.process_time() - own0
    timed = sources * (count - min(per_batch, count))  # the first batch of each is not timed
    return {
        "event": "desk loadgen done",
        "sources": sources,
        "per_batch": per_batch,
        "heartbeats": timed,
        "batches": sum(st.sent for st in streams),
        "seconds": wall,
        "rate": timed / wall,
        "server_cpu_cores": server_cpu / wall if server else None,
        "client_cpu_cores": own_cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the aggregator")
    parser.add_argument("--sources", type=int, default=1, help="concurrent watchers")
    parser.add_argument("--count", type=int, default=20_000, help="heartbeats per watcher")
    parser.add_argument("--per-batch", type=int, default=1, help="events per DeskBatch")
    parser.add_argument("--start-ms", type=int, required=True, help="time of the first")
    parser.add_argument("--window", type=int, default=SenderOptions().window)
    parser.add_argument("--server-pid", type=int, default=None, help="measure its CPU")
    a = parser.parse_args()
    try:
        result = asyncio.run(
            run(a.target, a.sources, a.count, a.per_batch, a.start_ms, a.window, a.server_pid)
        )
    except (RuntimeError, TimeoutError, grpc.aio.AioRpcError) as exc:
        print(json.dumps({"event": "desk loadgen failed", "error": f"{type(exc).__name__}: {exc}"}))
        raise SystemExit(1) from exc
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
