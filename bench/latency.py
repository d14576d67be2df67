"""The ``latency`` suite's runs: sample taken -> visible to a WebSocket client.

Two shapes, each started on a fresh data directory at its first run and kept up for the
suite's other runs of it (each run brings new hosts), stopped when the suite ends:

- ``embedded``: one ``sysmonstm up --no-collect`` process (aggregator, rules, gateway; memory
  bus and hot tier, SQLite warm tier).
- ``nats``: the split deployment of docs/deploy.md on one machine: ``sysmonstm aggregator``,
  ``sysmonstm alerts`` and ``sysmonstm gateway`` as three processes, the bus on NATS
  JetStream (the machine's server on 4222 if it answers, else a throwaway one) under a
  stream prefix of the suite's own, whose streams are deleted afterwards; the warm tier is
  the same SQLite file for all three.

``bench.latency_load`` (its own process) plays ``hosts`` collectors at one frame per
interval, spread over the interval, each frame stamped with the wall clock as it is sent.
Here, a WebSocket client subscribed to what the hosts page of the dashboard subscribes to
(``metrics.*`` and ``alerts.>``) takes the wall clock as each message arrives, before
parsing it. Same machine, one clock: latency = arrival - frame time. Frames stamped in the
first ``warm_up_s`` are left out of the figures; every frame sent must arrive, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from bench.ingest import aggregator_env
from bench.loadgen import cpu_seconds
from bench.model import Run
from bench.payments import percentile
from bench.procs import PYTHON, SYSMONSTM, BenchError, Child, Children, child_env, free_port

PATTERNS = ["metrics.*", "alerts.>"]  # the dashboard's hosts page (web/src/main.js)
SHAPES = ("embedded", "nats")


@dataclass(frozen=True, slots=True)
class LatencyOptions:
    hosts: int = 100
    interval_s: float = 1.0
    warm_up_s: float = 1.0
    steady_s: float = 7.0
    drain_s: float = 10.0  # after the load's last ack, how long the last frames may take
    settings: tuple[tuple[str, str], ...] = ()  # extra SYSMONSTM_* settings, to try a knob

    def quick(self) -> LatencyOptions:
        return replace(self, warm_up_s=1.0, steady_s=2.0)


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    """The machine's NATS on 4222 if it answers, else a throwaway one; its URL."""
    from tests import servers

    own = os.environ.get("SYSMONSTM_TEST_OWN_SERVERS") == "1"
    local = None if own else servers.local_nats_url()
    if local is not None:
        yield local
        return
    root = Path(tempfile.mkdtemp(prefix="sysmonstm-bench-nats-"))
    server = servers.nats_server(root)
    server.start()
    try:
        yield f"nats://{servers.LOCAL_HOST}:{server.port}"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _delete_streams(url: str, prefix: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(f"{prefix}_"):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()


@dataclass
class Deployment:
    """The started processes: where collectors and browsers connect, whose CPU to count."""

    grpc: str
    ws: str
    servers: list[Child]

    def cpu(self) -> float:
        return sum(cpu_seconds(psutil.Process(c.pid)) for c in self.servers)

    def logs(self) -> str:
        return "\n".join(f"{c.name}: {c.text()[-1500:]}" for c in self.servers)


def _embedded(kids: Children, data: Path, port: int, opts: LatencyOptions) -> Deployment:
    env = aggregator_env(data, port, opts.settings)
    argv = [SYSMONSTM, "up", "--no-collect", "--http", "127.0.0.1:0", "--grpc", f"127.0.0.1:{port}"]
    up = kids.start("up", argv, env)
    url = str(up.wait_json("sysmonstm is up", timeout=60.0)["dashboard"]).rstrip("/")
    return Deployment(f"127.0.0.1:{port}", url.replace("http://", "ws://") + "/ws", [up])


def _split(kids: Children, data: Path, port: int, opts: LatencyOptions, bus: str) -> Deployment:
    env = aggregator_env(data, port, (*opts.settings, ("bus__url", bus)))
    agg = kids.start("aggregator", [SYSMONSTM, "aggregator"], env)
    alerts = kids.start("alerts", [SYSMONSTM, "alerts"], env)
    gw = kids.start("gateway", [SYSMONSTM, "gateway", "--listen", "127.0.0.1:0"], env)
    agg.wait_json("aggregator listening", timeout=60.0)
    alerts.wait_json("rules loaded", timeout=60.0)
    url = str(gw.wait_json("gateway listening", timeout=60.0)["url"]).rstrip("/")
    ws = url.replace("http://", "ws://") + "/ws"
    return Deployment(f"127.0.0.1:{port}", ws, [agg, alerts, gw])


class Deployments:
    """The suite's servers: a shape's deployment starts at its first run and serves its
    other runs too; leaving the block stops them all (SIGTERM, graceful), deletes the NATS
    streams and the data directories."""

    def __init__(self, root: Path, opts: LatencyOptions, nats: str) -> None:
        self.root = root
        self.opts = opts
        self.nats = nats
        self.prefix = f"LAT_{uuid.uuid4().hex[:10].upper()}"
        self.started: dict[str, Deployment] = {}
        self._kids = Children(root)

    def get(self, shape: str, port: int) -> Deployment:
        """The running deployment of ``shape``; started on ``port`` if it is not yet."""
        dep = self.started.get(shape)
        if dep is None:
            data = self.root / shape
            data.mkdir()
            if shape == "embedded":
                dep = _embedded(self._kids, data, port, self.opts)
            else:
                bus = f"{self.nats}?stream_prefix={self.prefix}"
                dep = _split(self._kids, data, port, self.opts, bus)
            self.started[shape] = dep
        for child in dep.servers:
            if child.popen.poll() is not None:
                raise BenchError(f"{child.name} ended ({child.popen.returncode}):\n{dep.logs()}")
        return dep

    def __enter__(self) -> Deployments:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for dep in self.started.values():  # all at once; then each is waited for
                for child in dep.servers:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGTERM)
            self._kids.__exit__(None, None, None)
        finally:
            if "nats" in self.started:
                asyncio.run(_delete_streams(self.nats, self.prefix))
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Watch:
    """What the WebSocket client saw: per (source, seq), the frame time, the envelope's time
    (when the aggregator published it) and the arrival, in ms."""

    frames: dict[tuple[str, int], list[tuple[int, int, float]]] = field(default_factory=dict)
    dropped: int = 0
    other: int = 0  # alerts and anything else that is not a metrics frame
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, frames: int, within_s: float) -> None:
        """Wait until ``frames`` distinct frames arrived, for at most ``within_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while len(self.frames) < frames:
                    self.arrived.clear()
                    await self.arrived.wait()

    async def follow(self, url: str, ready: asyncio.Event) -> None:
        import websockets

        async with websockets.connect(url, max_queue=None, max_size=None) as ws:
            await ws.send(json.dumps({"subscribe": PATTERNS}))
            while True:
                text = await ws.recv()
                now_ms = time.time_ns() / 1e6
                message = json.loads(text)
                if "ok" in message:
                    ready.set()
                elif "dropped" in message:
                    self.dropped = int(message["dropped"])
                elif str(message.get("topic", "")).startswith("metrics."):
                    p = message["payload"]
                    seen = (p["times_ms"][0], message["time_ms"], now_ms)
                    self.frames.setdefault((p["source"], p["seq"]), []).append(seen)
                    self.arrived.set()
                else:
                    self.other += 1


def _load_argv(opts: LatencyOptions, seed: int, go: Path | str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "bench.latency_load",
        "--go",
        str(go),
        "--hosts",
        str(opts.hosts),
        "--seconds",
        f"{opts.warm_up_s + opts.steady_s:g}",
        "--interval",
        f"{opts.interval_s:g}",
        "--seed",
        str(seed),
        "--prefix",
        f"run{seed}",
    ]


def load_command(opts: LatencyOptions) -> str:
    return " ".join(["python", *_load_argv(opts, 0, "$GO")[1:]])


async def _printed(child: Child, event: str, within_s: float) -> None:
    """``Child.wait_json`` without blocking the event loop (the WebSocket keeps reading)."""
    deadline = time.monotonic() + within_s
    while not any(x.get("event") == event for x in child.json_lines()):
        if child.popen.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{child.name}: no {event!r}:\n{child.text()[-2000:]}")
        await asyncio.sleep(0.05)


async def _drive(
    gen: Child, go: Path, dep: Deployment, opts: LatencyOptions
) -> tuple[Watch, dict[str, Any], float]:
    """Subscribe, let the load go, wait for it to end and for its frames to arrive."""
    watch, ready = Watch(), asyncio.Event()
    follower = asyncio.create_task(watch.follow(dep.ws, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.to_thread(go.write_text, f"{dep.grpc}\n")
        await _printed(gen, "latency load sending", 60.0)
        cpu0 = dep.cpu()
        limit = time.monotonic() + opts.warm_up_s + opts.steady_s + 60.0
        while gen.popen.poll() is None:
            if follower.done():
                follower.result()
                raise BenchError("the WebSocket closed during the run")
            if time.monotonic() > limit:
                raise BenchError(f"the load did not finish:\n{gen.text()[-2000:]}")
            await asyncio.sleep(0.1)
        cpu = dep.cpu() - cpu0
        gen.wait(1.0)
        result = next(
            (x for x in reversed(gen.json_lines()) if x.get("event") == "latency load done"), None
        )
        if result is None:
            raise BenchError(f"the load printed no result:\n{gen.text()[-2000:]}")
        await watch.until(sum(result["hosts"].values()), opts.drain_s)
        await asyncio.sleep(0.2)  # a repeat delivered late would show now
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
    return watch, result, cpu


def _figures(watch: Watch, result: dict[str, Any], opts: LatencyOptions) -> dict[str, Any]:
    sent = {(host, seq) for host, n in result["hosts"].items() for seq in range(1, n + 1)}
    lost = sent - watch.frames.keys()
    repeats = sum(len(v) - 1 for v in watch.frames.values())
    if lost or watch.dropped or repeats or watch.frames.keys() - sent:
        raise BenchError(
            f"{len(lost)} of {len(sent)} frames never reached the WebSocket client "
            f"(e.g. {sorted(lost)[:3]}), {repeats} arrived twice, the gateway reported "
            f"{watch.dropped} dropped"
        )
    since = result["start_ms"] + opts.warm_up_s * 1000
    steady = [v[0] for v in watch.frames.values() if v[0][0] >= since]
    if not steady:
        raise BenchError("no frame after the warm-up")
    lat = [a - t for t, _, a in steady]
    stored = [float(p - t) for t, p, _ in steady]
    pushed = [a - p for _, p, a in steady]
    return {
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
        "max_ms": max(lat),
        "published_p50_ms": percentile(stored, 0.5),
        "published_p99_ms": percentile(stored, 0.99),
        "pushed_p50_ms": percentile(pushed, 0.5),
        "pushed_p99_ms": percentile(pushed, 0.99),
        "frames": len(lat),
        "frames_checked": len(sent),
        "send_late_max_ms": result["late_max_ms"],
        "message_bytes": result["message_bytes"],
    }


def run(servers: Deployments, shape: str, directory: Path, seed: int) -> Run:
    """One run on ``shape``'s deployment (started now if it is not up yet: the load
    generator starts beside it and waits for the WebSocket client to listen), with hosts of
    the run's own (``run<seed>-000`` ...)."""
    opts, go = servers.opts, directory / "go"
    with Children(directory) as kids:
        gen = kids.start("latency-load", _load_argv(opts, seed, go), child_env())
        dep = servers.get(shape, free_port())
        try:
            watch, result, cpu = asyncio.run(_drive(gen, go, dep, opts))
        except BenchError as exc:
            raise BenchError(f"{exc}\n{dep.logs()}") from exc
    figures = _figures(watch, result, opts)
    figures["server_cpu_cores"] = cpu / (opts.warm_up_s + opts.steady_s)
    return Run(figures["p99_ms"], figures["frames"], opts.steady_s, figures)
