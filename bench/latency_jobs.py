"""The ``latency`` suite: sample taken -> visible to a WebSocket client (issue 6, target 2)."""

from __future__ import annotations

from pathlib import Path

from bench import latency
from bench.latency import Deployments, LatencyOptions
from bench.model import Measurement, Run
from bench.suite import RunFn, SuiteContext, SuiteJobs

COMMAND = "python -m bench --only latency"
TARGET = "issue 6 target: p99 <= 50 ms with 100 hosts at 1 Hz"
FACTS = (
    ("p50, ms", "p50_ms", ".1f"),
    ("slowest frame, ms", "max_ms", ".1f"),
    ("frames timed (after the warm-up)", "frames", ".0f"),
    ("frames checked: every one sent arrived once", "frames_checked", ".0f"),
    ("sample → published by the aggregator, p50, ms", "published_p50_ms", ".0f"),
    ("sample → published by the aggregator, p99, ms", "published_p99_ms", ".0f"),
    ("published → WebSocket client, p50, ms", "pushed_p50_ms", ".1f"),
    ("published → WebSocket client, p99, ms", "pushed_p99_ms", ".1f"),
    ("server processes' CPU, cores", "server_cpu_cores", ".2f"),
    ("latest send behind its slot, ms", "send_late_max_ms", ".1f"),
)

_SHAPE_TEXT = {
    "embedded": "one `sysmonstm up --no-collect` process (aggregator, rules and gateway; "
    "in-process bus, memory hot tier, SQLite warm tier; default settings)",
    "nats": "the split deployment of docs/deploy.md on one machine: `sysmonstm aggregator`, "
    "`sysmonstm alerts` and `sysmonstm gateway` as three processes, the bus on NATS JetStream "
    "({server}; a stream prefix of the suite's own, its streams deleted afterwards), the "
    "SQLite warm tier shared by the three",
}


def _measurement(shape: str, opts: LatencyOptions, server: str) -> Measurement:
    where = _SHAPE_TEXT[shape].format(server=server)
    return Measurement(
        key=f"latency.{shape}",
        title=f"Sample taken → visible on a WebSocket, {'NATS' if shape == 'nats' else 'embedded'}",
        short=f"sample→WebSocket p99, {shape}",
        meaning=(
            f"Through {where}, started on a fresh data directory at the first run and kept "
            f"up for its other runs. Each run, `bench.latency_load` (its own process) plays "
            f"{opts.hosts} new collectors, one gRPC stream each, each sending one frame of "
            f"the 100 default series every {opts.interval_s:g} s, the hosts spread evenly over "
            "the second; a frame's time is the wall clock (ms) when it is built and sent. A "
            "WebSocket client on the gateway's `/ws`, subscribed as the dashboard's hosts page "
            "is (`metrics.*`, `alerts.>`), takes the wall clock when each message arrives, "
            "before parsing it. Timed: arrival minus frame time, same machine, one clock, for "
            f"every frame stamped after the first {opts.warm_up_s:g} s ({opts.steady_s:g} s "
            "per run). Every frame sent must arrive exactly once, else the run fails. The "
            "figure is the p99 of a run; the envelope's own time splits it into sample → "
            "published and published → client."
        ),
        command=f"{COMMAND}, which runs the servers & {latency.load_command(opts)}",
        unit="ms p99",
        reference=TARGET,
        facts=FACTS,
    )


def _run(servers: Deployments, shape: str) -> RunFn:
    def run(directory: Path, seed: int) -> Run:
        return latency.run(servers, shape, directory, seed)

    return run


def latency_jobs(ctx: SuiteContext) -> SuiteJobs:
    opts = LatencyOptions().quick() if ctx.quick else LatencyOptions()
    nats = ctx.stack.enter_context(latency.nats_server())
    servers = ctx.stack.enter_context(Deployments(ctx.workdir / "latency-servers", opts, nats))
    kind = "the machine's server" if nats.endswith(":4222") else "a throwaway server"
    return SuiteJobs(
        [(_measurement(shape, opts, kind), _run(servers, shape)) for shape in latency.SHAPES]
    )
