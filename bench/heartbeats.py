"""Heartbeat ingestion beside ActivityWatch's own server: same machine, same heartbeats, one run.

Servers fresh per run (an empty database), each fed by a client in its own process and
checked afterwards, so a fast wrong answer cannot pass:

- ``aw``: aw-server 0.12 (PyPI, in its own venv), ``POST /api/0/buckets/<id>/heartbeat
  ?pulsetime=2`` from ``bench.hb_client``; checked by reading every bucket's events back: one
  merged event per run of an app, its start and duration exact;
- ``api0``: sysmonstm's ``/api/0`` on a real ``sysmonstm gateway`` (SQLite warm tier, the
  embedded default), the same client and heartbeats, checked the same way;
- the native path, a real ``sysmonstm aggregator`` fed by ``bench.desk_loadgen``: ``watcher``
  (the watcher's own outbox, spool and sender, the events coming as a burst), ``replay`` (the
  same code shipping a spooled backlog after an outage) and ``single`` (hand-built streams,
  every event a ``DeskBatch`` of its own: the cost per message); after a graceful stop the
  interval store in its SQLite file is read: one interval per run of an app with exact
  bounds, and each machine's watermark is the last sequence sent;
- ``sink-single``, the ceiling of ``single``: the same streams into ``bench.grpc_sink
  --domain deskmeter``, which parses each ``DeskBatch`` and acks every 100th, keeping nothing
  (gRPC's own cost per message).

``sources`` watchers post concurrently, each to its own bucket (or machine) over its own
connection. Every path gets the same heartbeat sequence (``bench.heartbeat_workload``), but
not the same number of them: each gets enough for a few seconds of work (aw-server takes a
few hundred a second), the first ``count`` of the same sequence.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench import aw_server
from bench.gateway import AGGREGATOR_COMMAND, start_aggregator, start_gateway
from bench.heartbeat_workload import (
    STEP_MS,
    aw_events,
    bucket_id,
    desk_intervals,
    machine_id,
)
from bench.model import Run
from bench.procs import PYTHON, BenchError, Children, child_env
from sysmonstm.domains.deskmeter.store_sqlite import SqliteIntervals

CLIENT_TIMEOUT_S = 300.0
SINK_ACK_EVERY = 100  # messages: about what one aggregator flush acks at these rates
SINK_COMMAND = "python -m bench.grpc_sink --domain deskmeter --listen 127.0.0.1:$PORT"
SINGLE_SOURCES = 4  # the one-event-per-message case saturates the aggregator with four


@dataclass(frozen=True, slots=True)
class HeartbeatOptions:
    """Heartbeats per run (over all sources) for each path, and the source counts."""

    sources: tuple[int, ...] = (1, 4)
    aw: int = 600
    api0: int = 1_500
    watcher: int = 60_000
    replay: int = 100_000
    single: int = 30_000

    def scaled(self, factor: float) -> HeartbeatOptions:
        return replace(
            self,
            aw=round(self.aw * factor),
            api0=round(self.api0 * factor),
            watcher=round(self.watcher * factor),
            replay=round(self.replay * factor),
            single=round(self.single * factor),
        )


@dataclass(frozen=True, slots=True)
class Case:
    """One measurement: a path, how many sources, heartbeats per source."""

    path: str  # "aw", "api0", "watcher", "replay", "single" or "sink-single"
    sources: int
    count: int  # per source

    @property
    def key(self) -> str:
        return f"heartbeats.{self.path}.{self.sources}"


def cases(o: HeartbeatOptions) -> list[Case]:
    out = []
    for n in o.sources:
        out += [Case("aw", n, o.aw // n), Case("api0", n, o.api0 // n)]
        out += [Case("watcher", n, o.watcher // n)]
    n = SINGLE_SOURCES
    out += [Case("replay", 1, o.replay)]
    out += [Case("sink-single", n, o.single // n), Case("single", n, o.single // n)]
    return out


def _start_ms(count: int) -> int:
    """The first heartbeat's time: the sequence ends about now (the aggregator refuses
    events older than 7 days)."""
    now = int(datetime.now().timestamp()) * 1000
    return now - (count + 60) * STEP_MS


def _loadgen_args(case: Case) -> list[str]:
    if case.path in ("watcher", "replay"):
        return ["--path", case.path, "--spool-dir", "$SPOOL"]
    return ["--path", "batches", "--per-batch", "1"]


def client_command(case: Case) -> str:
    if case.path in ("aw", "api0"):
        return (
            f"python -m bench.hb_client --url http://127.0.0.1:$PORT --sources {case.sources} "
            f"--count {case.count} --start-ms $START --server-pid $SERVER_PID"
        )
    return (
        f"python -m bench.desk_loadgen --target 127.0.0.1:$PORT {' '.join(_loadgen_args(case))} "
        f"--sources {case.sources} --count {case.count} --start-ms $START "
        "--server-pid $SERVER_PID"
    )


def server_command(case: Case) -> str:
    if case.path == "aw":
        return aw_server.COMMAND + " (ActivityWatch's venv)"
    if case.path == "api0":
        return "SYSMONSTM_DATA_DIR=$DATA sysmonstm gateway --listen 127.0.0.1:$PORT"
    if case.path.startswith("sink"):
        return f"{SINK_COMMAND} --ack-every {SINK_ACK_EVERY}"
    return AGGREGATOR_COMMAND


# -- checks ------------------------------------------------------------------------------------


def _aw_stored(url: str, source: int) -> list[tuple[int, float, str]]:
    resp = httpx.get(
        f"{url}/api/0/buckets/{bucket_id(source)}/events", params={"limit": -1}, timeout=60
    )
    resp.raise_for_status()
    events = [
        (
            round(datetime.fromisoformat(e["timestamp"]).timestamp() * 1000),
            float(e["duration"]),
            str(e["data"]["app"]),
        )
        for e in resp.json()
    ]
    return sorted(events)


def check_aw(url: str, case: Case, start_ms: int) -> tuple[int, float]:
    """Every bucket holds exactly the merged events; (events, seconds covered) in all."""
    events, seconds = 0, 0.0
    for s in range(case.sources):
        want = aw_events(s, case.count, start_ms)
        got = _aw_stored(url, s)
        if got != want:
            diff = next(
                (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None
            )
            raise BenchError(
                f"{case.key}: bucket {bucket_id(s)} holds {len(got)} events, expected "
                f"{len(want)}; first difference at {diff}"
            )
        events += len(got)
        seconds += sum(d for _, d, _ in got)
    return events, seconds


async def _desk_stored(
    path: Path, case: Case, start_ms: int, last_sequences: dict[str, int]
) -> tuple[int, float]:
    store = SqliteIntervals(f"sqlite:///{path}")
    await store.open()
    try:
        machines = {m.machine.id: m for m in await store.machines()}
        intervals, seconds = 0, 0.0
        for s in range(case.sources):
            want = desk_intervals(s, case.count, start_ms)
            found = await store.intervals(start_ms, want[-1][1] + 1, machine_id(s))
            got = [(iv.start_ms, iv.end_ms, iv.workspace) for iv in found]
            if got != want:
                raise BenchError(
                    f"{case.key}: machine {machine_id(s)} has {len(got)} intervals, expected "
                    f"{len(want)}"
                )
            sent = last_sequences[machine_id(s)]
            stored = machines[machine_id(s)].stored_through
            if stored != sent:
                raise BenchError(f"{case.key}: watermark {stored}, expected {sent}")
            intervals += len(got)
            seconds += sum(b - a for a, b, _ in got) / 1000
    finally:
        await store.close()
    return intervals, seconds


# -- runs --------------------------------------------------------------------------------------


def _client(
    kids: Children, case: Case, target: str, start_ms: int, pid: int, spool: Path
) -> dict[str, Any]:
    if case.path in ("aw", "api0"):
        args = ["-m", "bench.hb_client", "--url", target]
        done = "hb client done"
    else:
        loadgen = [a.replace("$SPOOL", str(spool)) for a in _loadgen_args(case)]
        args = ["-m", "bench.desk_loadgen", "--target", target, *loadgen]
        done = "desk loadgen done"
    args += ["--sources", str(case.sources), "--count", str(case.count)]
    args += ["--start-ms", str(start_ms), "--server-pid", str(pid)]
    client = kids.start("client", [PYTHON, *args], child_env())
    client.wait(CLIENT_TIMEOUT_S)
    for line in reversed(client.json_lines()):
        if line.get("event") == done:
            return dict(line)
    raise BenchError(f"the client printed no result:\n{client.text()[-3000:]}")


def run_case(case: Case, workdir: Path) -> Run:
    """One run of ``case`` against a fresh server, checked afterwards."""
    start_ms = _start_ms(case.count)
    data = workdir / "data"
    data.mkdir()
    spool = workdir / "spool"
    with Children(workdir) as kids:
        if case.path == "aw":
            server, url = aw_server.start(kids, workdir / "aw-home")
            result = _client(kids, case, url, start_ms, server.pid, spool)
            stored, seconds = check_aw(url, case, start_ms)
        elif case.path == "api0":
            server, url = start_gateway(kids, data)
            result = _client(kids, case, url, start_ms, server.pid, spool)
            stored, seconds = check_aw(url, case, start_ms)
        elif case.path.startswith("sink"):
            argv = [PYTHON, "-m", "bench.grpc_sink", "--domain", "deskmeter"]
            argv += ["--ack-every", str(SINK_ACK_EVERY)]
            server = kids.start("grpc-sink", argv, child_env())
            port = int(server.wait_json("sink listening")["port"])
            result = _client(kids, case, f"127.0.0.1:{port}", start_ms, server.pid, spool)
            stored, seconds = 0, 0.0  # a ceiling keeps nothing; every batch was acked
        else:
            server, target = start_aggregator(kids, data)
            result = _client(kids, case, target, start_ms, server.pid, spool)
            code = server.stop(signal.SIGTERM, grace=60.0)
            if code != 0:
                raise BenchError(f"the aggregator exited with {code}:\n{server.text()[-3000:]}")
            sent = result["last_sequences"]
            stored, seconds = asyncio.run(_desk_stored(data / "warm.db", case, start_ms, sent))
    messages = int(result.get("messages", result["heartbeats"]))  # aw: a request each
    extra = {
        "sources": case.sources,
        "stored": stored,
        "stored_seconds": seconds,
        "server_cpu_cores": result["server_cpu_cores"],
        "loadgen_cpu_cores": result["client_cpu_cores"],
        "messages": messages,
        "events_per_message": result["heartbeats"] / max(1, messages),
        "server_cpu_us_per_event": 1e6
        * (result["server_cpu_cores"] or 0.0)
        * result["seconds"]
        / result["heartbeats"],
    }
    return Run(result["rate"], result["heartbeats"], result["seconds"], extra)
