"""Deskmeter watchers on the native path: ``DeskBatch`` streams into a real aggregator.

``--sources`` simulated watchers, each on its own channel and ``DeskmeterIngest/Stream``
call, send the heartbeats of ``bench.heartbeat_workload`` (a SWITCH where the app changes, a
HEARTBEAT otherwise). ``--path`` says how:

- ``watcher``: the watcher's own code. Each source spools every event as the watcher does
  (``Outbox.send``: one ``DeskBatch`` per event, in a ``Spool`` under ``--spool-dir``) and a
  ``StreamSender`` with the watcher's options ships the spool, merging what piled up. The
  events come as a burst: one after another, yielding to the event loop after each, as the
  watcher's loop does between observations.
- ``replay``: the same code after an outage: the events are spooled first, with the stream
  not yet open, then the sender ships the backlog (up to ``watcher.MERGE`` per message).
- ``batches``: hand-built ``DeskBatch``es of ``--per-batch`` events, sequences 1, 2, ...,
  written back to back with at most ``--window`` un-acked (``bench.loadgen``'s
  ``HostStream``); ``--per-batch 1`` is every event a message of its own.

Each source sends its first event (batch) and waits for its ack before the clock starts (the
aggregator learns the machine); the rate counts the events after it over the time from the
start to the last ack.

Run: ``python -m bench.desk_loadgen --target 127.0.0.1:PORT --count 20000 --start-ms MS``.
The last output line is a JSON object with ``"event": "desk loadgen done"``.
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
import psutil

from bench.heartbeat_workload import STEP_MS, desk_batches, desk_events, desk_machine, machine_id
from bench.loadgen import (
    CONNECT_TIMEOUT_S,
    DRAIN_TIMEOUT_S,
    SEND_TIMEOUT_S,
    HostStream,
    check_streams,
    cpu_seconds,
    opened_streams,
)
from sysmonstm.domains.deskmeter.model import DeskEvent
from sysmonstm.domains.deskmeter.watcher import METHOD, Outbox, sender_options
from sysmonstm.logs import configure_logging
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.spool import Spool

PATHS = ("watcher", "replay", "batches")
_POLL_S = 0.001  # how often a source looks whether its last event is acked


@dataclass(frozen=True, slots=True)
class _Watcher:
    """What ``HostStream`` names its stream by."""

    machine_id: str


class _Source:
    """One simulated watcher on the watcher's own code: outbox, spool and sender."""

    def __init__(self, source: int, events: list[DeskEvent], target: str, spool_dir: Path) -> None:
        self.events = events
        self.target = target
        self.spool = Spool(spool_dir / f"source-{source}")
        self.outbox = Outbox(desk_machine(source), self.spool, STEP_MS)
        self.sender: StreamSender | None = None
        self.running: asyncio.Task[None] | None = None
        self.last_ack_at = 0.0

    def new_sender(self) -> StreamSender:
        """A sender as the watcher makes it; it merges only what is spooled after this."""
        self.sender = StreamSender(
            self.spool, [self.target], METHOD, options=sender_options(stop_grace_s=5.0)
        )
        return self.sender

    def start_sender(self) -> None:
        assert self.sender is not None
        self.running = asyncio.create_task(self.sender.run())

    async def stop_sender(self) -> None:
        assert self.sender is not None
        assert self.running is not None
        self.sender.stop()
        await self.running
        self.running = None

    async def acked(self, through: int) -> None:
        while self.spool.acked < through:
            if self.running is not None and self.running.done():
                self.running.result()
                raise RuntimeError(f"the sender stopped at ack {self.spool.acked}")
            await asyncio.sleep(_POLL_S)
        self.last_ack_at = time.perf_counter()

    async def warm_up(self) -> None:
        """The first event sent and acked (the aggregator knows the machine)."""
        self.new_sender()
        self.start_sender()
        await asyncio.wait_for(self.acked(self.outbox.send(self.events[0])), CONNECT_TIMEOUT_S)

    async def burst(self) -> None:
        """The other events, one at a time, the sender shipping them as they come."""
        last = 0
        for event in self.events[1:]:
            last = self.outbox.send(event)
            await asyncio.sleep(0)
        await self.acked(last)

    def spool_rest(self) -> int:
        return max(self.outbox.send(event) for event in self.events[1:])


def _messages(watchers: list[_Source]) -> int:
    """Messages the sources' current senders wrote so far."""
    return sum(w.sender.status.messages for w in watchers if w.sender is not None)


def _result(path: str, sources: int, per_source: int, wall: float) -> dict[str, Any]:
    timed = sources * per_source
    return {
        "event": "desk loadgen done",
        "path": path,
        "sources": sources,
        "heartbeats": timed,
        "seconds": wall,
        "rate": timed / wall,
    }


async def run_watchers(
    path: str,
    target: str,
    sources: int,
    count: int,
    start_ms: int,
    spool_dir: Path,
    pid: int | None,
) -> dict[str, Any]:
    watchers = [
        _Source(s, desk_events(s, count, start_ms), target, spool_dir) for s in range(sources)
    ]
    try:
        await asyncio.gather(*(w.warm_up() for w in watchers))
        if path == "replay":  # the stream is gone while the rest is spooled, then comes back
            await asyncio.gather(*(w.stop_sender() for w in watchers))
            for w in watchers:
                w.new_sender()
            lasts = [w.spool_rest() for w in watchers]
        server = psutil.Process(pid) if pid else None
        messages0 = _messages(watchers)  # the warm-up's
        server0, own0 = cpu_seconds(server), time.process_time()
        print(json.dumps({"event": "desk loadgen timing"}), flush=True)  # a profiler may attach
        start = time.perf_counter()
        if path == "replay":
            for w in watchers:
                w.start_sender()
            work = asyncio.gather(*(w.acked(last) for w, last in zip(watchers, lasts, strict=True)))
        else:
            work = asyncio.gather(*(w.burst() for w in watchers))
        await asyncio.wait_for(work, SEND_TIMEOUT_S)
        wall = max(w.last_ack_at for w in watchers) - start
        server_cpu, own_cpu = cpu_seconds(server) - server0, time.process_time() - own0
        messages = _messages(watchers) - messages0
        await asyncio.gather(*(w.stop_sender() for w in watchers))
    finally:
        for w in watchers:
            w.spool.close()
    out = _result(path, sources, count - 1, wall)
    out["server_cpu_cores"] = server_cpu / wall if server else None
    out["client_cpu_cores"] = own_cpu / wall
    out["messages"] = messages
    out["last_sequences"] = {machine_id(s): w.spool.last_sequence for s, w in enumerate(watchers)}
    return out


async def run_batches(
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
    out = _result("batches", sources, count - min(per_batch, count), wall)
    out["server_cpu_cores"] = server_cpu / wall if server else None
    out["client_cpu_cores"] = own_cpu / wall
    out["messages"] = sum(st.sent for st in streams)
    out["last_sequences"] = {st.plan.machine_id: st.sent for st in streams}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the aggregator")
    parser.add_argument("--path", choices=PATHS, default="watcher", help="how events are sent")
    parser.add_argument("--sources", type=int, default=1, help="concurrent watchers")
    parser.add_argument("--count", type=int, default=20_000, help="heartbeats per watcher")
    parser.add_argument("--per-batch", type=int, default=1, help="events per DeskBatch (batches)")
    parser.add_argument("--start-ms", type=int, required=True, help="time of the first")
    parser.add_argument("--window", type=int, default=SenderOptions().window, help="(batches)")
    parser.add_argument("--spool-dir", type=Path, default=None, help="(watcher, replay)")
    parser.add_argument("--server-pid", type=int, default=None, help="measure its CPU")
    a = parser.parse_args()
    configure_logging("info", "json")  # as the watcher logs its switches, run as a service
    if a.path == "batches":
        work = run_batches(
            a.target, a.sources, a.count, a.per_batch, a.start_ms, a.window, a.server_pid
        )
    else:
        if a.spool_dir is None:
            parser.error(f"--path {a.path} needs --spool-dir")
        work = run_watchers(
            a.path, a.target, a.sources, a.count, a.start_ms, a.spool_dir, a.server_pid
        )
    try:
        result = asyncio.run(work)
    except (RuntimeError, TimeoutError, grpc.aio.AioRpcError) as exc:
        print(json.dumps({"event": "desk loadgen failed", "error": f"{type(exc).__name__}: {exc}"}))
        raise SystemExit(1) from exc
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
