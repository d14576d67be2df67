"""One side-by-side session: our collector, Glances and node-exporter sampling this host at 1 s
through the same minute, each one's CPU read from ``/proc`` (``bench.cpu_meter``).

Started together: a real ``sysmonstm aggregator`` (SQLite warm tier, empty data directory)
and a real ``sysmonstm collector --interval 1`` streaming to it over gRPC; Glances and
node-exporter as ``bench.monitors`` starts them, each polled once a second by its own
``bench.scraper`` process. After a warm-up, every process tree's CPU is read each second
for ``seconds``; the figure is CPU seconds over wall seconds, in % of one core. The
aggregator's and the scrapers' CPU are facts beside the figures, not part of them.
Afterwards: the collector stopped with nothing un-acked (all it sampled was stored) and
without skipping a tick, and every scrape was answered 200.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from bench.cpu_meter import TreeClock, rss_bytes
from bench.ingest import aggregator_env
from bench.model import Run
from bench.monitors import Monitor, start_glances, start_node_exporter, wait_ready
from bench.procs import PYTHON, SYSMONSTM, BenchError, Child, Children, child_env, free_port

START_TIMEOUT_S = 60.0  # the CLI imports for seconds on a busy 2-core machine
NAMES = ("sysmonstm", "glances", "node_exporter")
COLLECTOR_COMMAND = "sysmonstm aggregator & sysmonstm collector --aggregator $AGG --interval 1"


@dataclass(frozen=True, slots=True)
class CostOptions:
    seconds: float = 60.0  # measured, all side by side
    warmup_s: float = 5.0
    window_s: float = 10.0  # per-window figures show the noise

    def quick(self) -> CostOptions:
        return replace(self, seconds=10.0, warmup_s=2.0, window_s=5.0)


@dataclass
class _Meter:
    clock: TreeClock
    windows: list[float]
    at_window: float = 0.0  # CPU seconds when the last window closed: all of them at the end
    ticks: float = 0.0  # the coarse utime + stime over the same time, as a cross-check


def _pct(cpu_s: float, wall_s: float) -> float:
    return 100.0 * cpu_s / wall_s


def _host_busy() -> tuple[float, float]:
    t = psutil.cpu_times()
    return t.idle + getattr(t, "iowait", 0.0), sum(t)


def _collector(kids: Children, workdir: Path, aggregator: str) -> Child:
    env = child_env(
        SYSMONSTM_DATA_DIR=str(workdir / "collector"),
        SYSMONSTM_CONFIG=str(workdir / "absent.toml"),
        SYSMONSTM_LOG__FORMAT="json",
    )
    argv = [SYSMONSTM, "collector", "--aggregator", aggregator, "--interval", "1"]
    return kids.start("collector", argv, env)


def _measure(roots: dict[str, int], o: CostOptions) -> tuple[float, dict[str, _Meter]]:
    """Each root's tree read every second for ``o.seconds``; returns the wall seconds."""
    meters = {name: _Meter(TreeClock(pid), []) for name, pid in roots.items()}
    start = window_start = time.monotonic()
    steps, per_window = round(o.seconds), max(1, round(o.window_s))
    for n in range(1, steps + 1):
        time.sleep(max(0.0, start + n - time.monotonic()))
        cpu = {name: m.clock.sample() for name, m in meters.items()}
        if n % per_window == 0 or n == steps:
            now = time.monotonic()
            for name, m in meters.items():
                m.windows.append(_pct(cpu[name] - m.at_window, now - window_start))
                m.at_window = cpu[name]
            window_start = now
    wall = time.monotonic() - start
    for m in meters.values():
        m.ticks = m.clock.tick_seconds()
    return wall, meters


def _summary(meter: _Meter, wall: float, rss: int) -> dict[str, Any]:
    return {
        "windows": ", ".join(f"{w:.3f}" for w in meter.windows),
        "window_median": statistics.median(meter.windows),
        "ticks_pct": _pct(meter.ticks, wall),
        "rss_mb": rss / 1e6,
    }


def _scraped(child: Child, seconds: float) -> dict[str, Any]:
    child.stop()
    done = [line for line in child.json_lines() if line.get("event") == "scraper done"]
    if not done:
        raise BenchError(f"{child.name} left no summary:\n{child.text()[-3000:]}")
    polls, errors = int(done[0]["polls"]), int(done[0]["errors"])
    if errors or polls < seconds:
        raise BenchError(f"{child.name}: {errors} failed of {polls} polls:\n{child.text()[-2000:]}")
    return {"polls": polls, "bytes_per_poll": done[0]["bytes"] / polls}


def _check_collector(col: Child) -> None:
    col.stop()
    lines = col.json_lines()
    stopped = [line for line in lines if line.get("event") == "collector stopped"]
    if not stopped or stopped[0].get("pending") != 0:
        raise BenchError(f"the collector did not deliver everything:\n{col.text()[-3000:]}")
    if any("fell behind" in str(line.get("event")) for line in lines):
        raise BenchError(f"the collector skipped ticks:\n{col.text()[-3000:]}")


def side_by_side(workdir: Path, o: CostOptions) -> dict[str, Run]:
    """One session; a ``Run`` for each of ``NAMES``, rate in % of one core."""
    with Children(workdir) as kids:
        agg = kids.start(
            "aggregator", [SYSMONSTM, "aggregator"], aggregator_env(workdir / "data", free_port())
        )
        monitors: dict[str, Monitor] = {
            "glances": start_glances(kids, workdir / "glances"),
            "node_exporter": start_node_exporter(kids),
        }
        listen = str(agg.wait_json("aggregator listening", START_TIMEOUT_S)["listen"])
        col = _collector(kids, workdir, f"127.0.0.1:{listen.rsplit(':', 1)[1]}")
        deadline = time.monotonic() + START_TIMEOUT_S
        for monitor in monitors.values():
            wait_ready(monitor, deadline)
        col.wait_json("streaming to aggregator", START_TIMEOUT_S)
        lasting = o.warmup_s + o.seconds + 30.0  # stopped once measured
        scrapers = {
            name: kids.start(
                f"scraper-{name}",
                [PYTHON, "-m", "bench.scraper", "--url", m.url, "--seconds", f"{lasting:g}"],
                child_env(),
            )
            for name, m in monitors.items()
        }
        for s in scrapers.values():
            s.wait_json("scraper started", START_TIMEOUT_S)
        time.sleep(o.warmup_s)
        roots = {
            "sysmonstm": col.pid,
            "aggregator": agg.pid,
            **{name: m.child.pid for name, m in monitors.items()},
            **{f"scraper_{name}": s.pid for name, s in scrapers.items()},
        }
        idle0, total0 = _host_busy()
        wall, meters = _measure(roots, o)
        idle1, total1 = _host_busy()
        rss = {name: rss_bytes(pid) for name, pid in roots.items()}
        threads = meters["sysmonstm"].clock.by_thread()
        polled = {name: _scraped(s, o.seconds) for name, s in scrapers.items()}
        _check_collector(col)
    pct = {name: _pct(m.at_window, wall) for name, m in meters.items()}
    return _runs(o, wall, pct, meters, rss, threads, polled, busy=(idle1 - idle0, total1 - total0))


def _runs(
    o: CostOptions,
    wall: float,
    pct: dict[str, float],
    meters: dict[str, _Meter],
    rss: dict[str, int],
    threads: dict[str, float],
    polled: dict[str, dict[str, Any]],
    busy: tuple[float, float],
) -> dict[str, Run]:
    ours = pct["sysmonstm"]
    idle, total = busy
    top = sorted(threads.items(), key=lambda kv: -kv[1])
    extra: dict[str, dict[str, Any]] = {
        "sysmonstm": {
            "aggregator_pct": pct["aggregator"],
            "aggregator_rss_mb": rss["aggregator"] / 1e6,
            "threads": ", ".join(f"{name} {_pct(s, wall):.3f}" for name, s in top if s > 0),
            "vs_glances": ours / pct["glances"],
            "vs_node_exporter": ours / pct["node_exporter"],
            "host_busy_pct": 100.0 * (1 - idle / total) * (os.cpu_count() or 1),
        }
    }
    for name in ("glances", "node_exporter"):
        extra[name] = {
            "scraper_pct": pct[f"scraper_{name}"],
            **polled[name],
            "ours_share": ours / pct[name],
        }
    return {
        name: Run(
            pct[name],
            round(wall),
            wall,
            _summary(meters[name], wall, rss[name]) | {"warmup_s": o.warmup_s} | extra[name],
        )
        for name in NAMES
    }
