"""Builders for gateway tests: metrics batches and events, alert transitions, a served app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sysmonstm.config import Settings, load_settings
from sysmonstm.domains.metrics.ingest import bus_payload, metrics_topic
from sysmonstm.gateway.server import serve_gateway
from sysmonstm.runtime import Core
from sysmonstm.store.model import Record, SeriesBatch, SourceInfo

SERIES = ("cpu.used", "mem.used_pct", 'disk.used_pct{mount="/"}', 'net.rx_bps{iface="eth0"}')


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def gateway_settings(data_dir: Path) -> Settings:
    """Embedded backends under ``data_dir``; the gateway on an ephemeral port."""
    return load_settings({"data_dir": str(data_dir), "gateway": {"listen": "127.0.0.1:0"}})


def batch(
    host: str,
    seq: int,
    times: Sequence[int],
    values: Sequence[Sequence[float]],
    *,
    series: Sequence[str] = SERIES,
    hostname: str | None = None,
    labels: dict[str, str] | None = None,
    interval_ms: int = 1000,
) -> SeriesBatch:
    """One metrics batch: ``values[i][j]`` is ``series[j]`` at ``times[i]``."""
    info = SourceInfo(
        "metrics",
        host,
        hostname or f"{host}.example",
        tuple(sorted((labels or {"env": "test"}).items())),
    )
    return SeriesBatch(
        info,
        seq,
        tuple(series),
        np.asarray(times, dtype=np.int64),
        np.asarray(values, dtype=np.float64),
        interval_ms,
    )


def ramp(
    host: str, start_ms: int, n: int, step_ms: int = 1000, first_seq: int = 1, **kw: Any
) -> SeriesBatch:
    """``n`` frames in one batch: cpu.used = i % 100, mem = 50, disk = 70, net = 1000 * i."""
    times = [start_ms + i * step_ms for i in range(n)]
    values = [[float(i % 100), 50.0, 70.0, 1000.0 * i] for i in range(n)]
    return batch(host, first_seq, times, values, interval_ms=step_ms, **kw)


async def seed(core: Core, batches: Sequence[SeriesBatch], *, hot: bool = True) -> None:
    """Store ``batches`` in the warm tier, and in the hot tier unless ``hot`` is False."""
    await core.warm.write(batches)
    if hot:
        await core.hot.write(batches)


def metrics_payload(
    host: str, t_ms: int, values: Sequence[float], series: Sequence[str] = SERIES, seq: int = 1
) -> dict[str, Any]:
    """A ``metrics.<host>`` event payload with one frame, made by the aggregator's own
    encoder so these tests follow the contract in docs/api.md."""
    return bus_payload(batch(host, seq, [t_ms], [list(values)], series=series))


async def publish_metrics(
    core: Core, host: str, t_ms: int, values: Sequence[float], seq: int = 1
) -> None:
    await core.bus.publish(
        metrics_topic(host), metrics_payload(host, t_ms, values, seq=seq), source="test"
    )


def alert(
    aid: str, state: str, time_ms: int, *, severity: str = "warning", host: str = "m-1"
) -> dict[str, Any]:
    """An ``alerts.*`` payload for instance ``aid`` of rule ``cpu_high`` on ``host`` (keyed by
    the observation key, as the rules engine does without ``group_by``)."""
    return {
        "id": aid,
        "rule": "cpu_high",
        "state": state,
        "severity": severity,
        "key": host,
        "group": {},
        "value": 97.5,
        "threshold": 90.0,
        "message": f"CPU high on {host}",
        "labels": {},
        "started_ms": time_ms,
        "fired_ms": time_ms if state == "firing" else None,
        "resolved_ms": time_ms if state == "resolved" else None,
        "time_ms": time_ms,
    }


def alert_record(body: dict[str, Any]) -> Record:
    """The warm-tier record the rules service keeps for one transition."""
    return Record(
        kind="alert",
        id=f"{body['id']}:{body['state']}",
        key=body["id"],
        time_ms=body["time_ms"],
        body=body,
    )


@asynccontextmanager
async def served(core: Core) -> AsyncIterator[str]:
    """``serve_gateway`` on an ephemeral port in this loop; yields its base URL."""
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_gateway(core, stop, on_ready=ready.set_result))
    try:
        waiters: set[asyncio.Future[Any]] = {ready, task}
        done, _ = await asyncio.wait(waiters, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        if ready not in done:
            raise TimeoutError("the gateway did not start within 30 s")
        yield ready.result()
    finally:
        stop.set()
        await task
