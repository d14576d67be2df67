"""Simulated hosts for ``sysmonstm up --demo-hosts N`` and for benchmarks.

Each ``DemoHost`` reports the same series a real collector does (see ``sampler``) as
mean-reverting random walks: 2 to 16 cores, one or two disks, mounts and NICs. Now and then
(about every 20 minutes per host) its CPU spikes above 85 % for one to four minutes, long
enough for the default ``cpu_high`` rule to fire and clear. The demo goes through the real
path: one spool and one ``StreamSender`` per host, as if each were its own machine.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from sysmonstm.domains.metrics.collector import BatchBuilder, make_sender, ticks
from sysmonstm.store.series import format_series
from sysmonstm.transport.source import ClientTls
from sysmonstm.transport.spool import MB, Spool
from sysmonstm.v1.common_pb2 import SourceIdentity

log = structlog.get_logger(__name__)

GIB = 1024**3
_SPIKE_EVERY_S = 1200.0
_CPU = ("used", "user", "system", "iowait", "idle")
_NET = (
    "rx_bps",
    "tx_bps",
    "rx_pps",
    "tx_pps",
    "rx_errors_ps",
    "tx_errors_ps",
    "rx_drops_ps",
    "tx_drops_ps",
)
_DISK_IO = ("read_bps", "write_bps", "read_iops", "write_iops")


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class DemoHost:
    """One simulated machine; ``sample(dt_s)`` advances it by ``dt_s`` seconds."""

    def __init__(self, index: int, seed: int = 0) -> None:
        self.rng = random.Random(seed * 1_000_003 + index)
        r = self.rng
        self.machine_id = f"demo-{index}"
        self.hostname = f"demo-host-{index:03d}"
        self.cores = r.choice((2, 4, 4, 8, 8, 12, 16))
        self.disks = ("nvme0n1",) if r.random() < 0.5 else ("sda", "sdb")
        self.mounts = {"/": r.uniform(50, 500) * GIB}
        if r.random() < 0.5:
            self.mounts["/data"] = r.uniform(1000, 4000) * GIB
        self.nics = ("eth0",) if r.random() < 0.7 else ("eth0", "eth1")
        self.mem_total = r.choice((4, 8, 16, 32, 64)) * GIB
        self.swap_total = r.choice((0, 2 * GIB))
        self._base = [r.uniform(3, 45) for _ in range(self.cores)]
        self._cpu = list(self._base)
        self._iowait = [r.uniform(0, 2) for _ in range(self.cores)]
        self._spike_left = 0.0
        self._load = [0.0, 0.0, 0.0]
        self._mem = r.uniform(30, 75)
        self._swap = r.uniform(0, 5)
        self._used = {m: r.uniform(20, 75) for m in self.mounts}
        self._io = {d: [r.uniform(1e5, 2e7), r.uniform(1e5, 2e7)] for d in self.disks}
        self._net = {n: [r.uniform(1e4, 5e6), r.uniform(1e4, 5e6)] for n in self.nics}
        self._procs = float(r.randint(150, 400))
        self.series = self._series()

    def source(self, labels: dict[str, str] | None = None) -> SourceIdentity:
        """This host's identity, labelled ``demo="true"`` plus ``labels``."""
        return SourceIdentity(
            machine_id=self.machine_id,
            hostname=self.hostname,
            labels={"demo": "true", **(labels or {})},
        )

    def _series(self) -> tuple[str, ...]:
        keys = [f"cpu.{f}" for f in _CPU]
        keys += [
            format_series(f"cpu.core.{f}", {"cpu": str(c)}) for c in range(self.cores) for f in _CPU
        ]
        keys += [
            "load.1",
            "load.5",
            "load.15",
            "mem.used_pct",
            "mem.used_bytes",
            "mem.available_bytes",
            "mem.total_bytes",
            "swap.used_pct",
            "swap.used_bytes",
            "swap.total_bytes",
        ]
        keys += [format_series(f"disk.{f}", {"disk": d}) for d in self.disks for f in _DISK_IO]
        keys += [
            format_series(f"disk.{f}", {"mount": m})
            for m in self.mounts
            for f in ("used_pct", "used_bytes", "total_bytes")
        ]
        keys += [format_series(f"net.{f}", {"iface": n}) for n in self.nics for f in _NET]
        keys += [
            "proc.count",
            format_series("temp.celsius", {"label": "Package id 0", "sensor": "coretemp"}),
        ]
        return tuple(keys)

    def _walk(self, x: float, base: float, step: float, lo: float, hi: float) -> float:
        return _clamp(x + (base - x) * 0.05 + self.rng.gauss(0, step), lo, hi)

    def sample(self, dt_s: float = 1.0) -> tuple[tuple[str, ...], list[float]]:
        """Series keys (always the same for this host) and their values after ``dt_s``."""
        r = self.rng
        if self._spike_left > 0:
            self._spike_left -= dt_s
        elif r.random() < dt_s / _SPIKE_EVERY_S:
            self._spike_left = r.uniform(70, 240)
        spiking = self._spike_left > 0
        cores: list[float] = []
        for c in range(self.cores):
            base = r.uniform(88, 99) if spiking else self._base[c]
            self._cpu[c] = self._walk(self._cpu[c], base, 3.0, 0.5, 99.0)
            self._iowait[c] = self._walk(self._iowait[c], 1.0, 0.3, 0.0, 100 - self._cpu[c])
            used, iowait = self._cpu[c], self._iowait[c]
            cores += [used, used * 0.72, used * 0.28, iowait, 100.0 - used - iowait]
        totals = [sum(cores[i :: len(_CPU)]) / self.cores for i in range(len(_CPU))]
        running = totals[0] / 100 * self.cores * r.uniform(0.8, 1.2)
        for i, horizon in enumerate((60.0, 300.0, 900.0)):
            self._load[i] += (running - self._load[i]) * min(1.0, dt_s / horizon)
        self._mem = self._walk(self._mem, 55, 0.5, 5, 97)
        self._swap = self._walk(self._swap, 3, 0.3, 0, 100) if self.swap_total else 0.0
        values = [*totals, *cores, *self._load]
        values += [
            self._mem,
            self.mem_total * self._mem / 100,
            self.mem_total * (1 - self._mem / 100),
            float(self.mem_total),
            self._swap,
            self.swap_total * self._swap / 100,
            float(self.swap_total),
        ]
        for io in self._io.values():
            io[0] = self._walk(io[0], 5e6, 1e6, 0, 5e8)
            io[1] = self._walk(io[1], 8e6, 1e6, 0, 5e8)
            values += [io[0], io[1], io[0] / 16384, io[1] / 32768]
        for mount, total in self.mounts.items():
            self._used[mount] = _clamp(self._used[mount] + r.gauss(0.0002, 0.001) * dt_s, 1, 99)
            values += [self._used[mount], total * self._used[mount] / 100, total]
        for rx_tx in self._net.values():
            rx_tx[0] = self._walk(rx_tx[0], 2e6, 2e5, 0, 1.25e9)
            rx_tx[1] = self._walk(rx_tx[1], 1e6, 2e5, 0, 1.25e9)
            errors = 1.0 if r.random() < 0.001 else 0.0
            values += [
                rx_tx[0],
                rx_tx[1],
                rx_tx[0] / 900,
                rx_tx[1] / 700,
                errors,
                0.0,
                errors * 3,
                0.0,
            ]
        self._procs = _clamp(self._procs + r.gauss(0, 2), 80, 2000)
        values += [float(round(self._procs)), 38.0 + totals[0] * 0.45 + r.gauss(0, 0.5)]
        return self.series, values


async def run_demo_hosts(
    n: int,
    aggregators: Sequence[str],
    interval_s: float,
    spool_root: Path,
    stop: asyncio.Event,
    *,
    seed: int = 0,
    tls: ClientTls | None = None,
    spool_max_bytes: int = 8 * MB,
    stop_grace_s: float = 5.0,
) -> None:
    """Stream ``n`` simulated hosts (``demo-1`` .. ``demo-<n>``) until ``stop`` is set.

    Each host has its own spool under ``spool_root/<machine id>`` and its own sender.
    """
    hosts = [DemoHost(i, seed) for i in range(1, n + 1)]
    # many spools share this process: their acked marks are fsynced every 10 s, not every 1 s
    spools = [
        Spool(spool_root / h.machine_id, max_bytes=spool_max_bytes, mark_every_s=10.0)
        for h in hosts
    ]
    senders = [make_sender(s, aggregators, tls, stop_grace_s) for s in spools]
    builders = [BatchBuilder(h.source(), s, interval_s) for h, s in zip(hosts, spools, strict=True)]
    tasks = [asyncio.create_task(s.run()) for s in senders]
    log.info("demo hosts started", hosts=n, aggregators=list(aggregators), interval_s=interval_s)
    try:
        async for _ in ticks(interval_s, stop):
            now_ms = time.time_ns() // 1_000_000
            for host, builder in zip(hosts, builders, strict=True):
                series, values = host.sample(interval_s)
                builder.add(series, values, now_ms)
    finally:
        for sender in senders:
            sender.stop()
        await asyncio.gather(*tasks)
        for spool in spools:
            spool.close()
        log.info("demo hosts stopped", hosts=n, pending=sum(s.pending_count for s in spools))
