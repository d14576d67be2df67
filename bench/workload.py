"""The simulated fleet every benchmark feeds on: hosts, their series, message shapes.

A host reports the same 100 series a real 8-core collector does (see
``sysmonstm.domains.metrics.sampler``): CPU totals and per core, load, memory, swap, process
count, disk I/O rates per disk, disk usage per mount, network rates per NIC, temperatures.
Values are mean-reverting random walks around host-specific levels; frames are one second
apart and end shortly before the batches are built, so every time is within the last hour
(the aggregator refuses times older than 7 days or more than 5 minutes ahead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sysmonstm.store.series import format_series
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.metrics_pb2 import MetricBatch

INTERVAL_MS = 1000
SERIES_PER_HOST = 100

_CPU = ("used", "user", "system", "iowait", "idle")
_CORES = 8
_DISK_IO = ("read_bps", "write_bps", "read_iops", "write_iops")
_DISKS = ("nvme0n1", "sda", "sdb")
_DISK_USE = ("used_pct", "used_bytes", "total_bytes")
_MOUNTS = ("/", "/home", "/var")
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
_NICS = ("eth0", "eth1")
_TEMPS = ("Package id 0", *(f"Core {i}" for i in range(6)))


@dataclass(frozen=True, slots=True)
class Shape:
    """How many frames of ``SERIES_PER_HOST`` values one ``MetricBatch`` carries.

    ``live`` is what a collector sends every second; ``replay`` is what a sender ships
    after an outage, when its spool holds many seconds per host.
    """

    name: str
    frames: int

    @property
    def samples(self) -> int:
        """Samples per message."""
        return self.frames * SERIES_PER_HOST


SHAPES: dict[str, Shape] = {"live": Shape("live", 1), "replay": Shape("replay", 10)}


def host_series() -> tuple[str, ...]:
    """The canonical keys of one host's 100 series, in a collector's order."""
    keys = [format_series(f"cpu.{f}") for f in _CPU]
    keys += [format_series(f"load.{n}") for n in ("1", "5", "15")]
    keys += [
        format_series(f"mem.{f}")
        for f in ("used_pct", "used_bytes", "available_bytes", "total_bytes")
    ]
    keys += [format_series(f"swap.{f}") for f in ("used_pct", "used_bytes", "total_bytes")]
    keys.append(format_series("proc.count"))
    keys += [format_series(f"cpu.core.{f}", {"cpu": str(c)}) for c in range(_CORES) for f in _CPU]
    keys += [format_series(f"disk.{f}", {"disk": d}) for d in _DISKS for f in _DISK_IO]
    keys += [format_series(f"disk.{f}", {"mount": m}) for m in _MOUNTS for f in _DISK_USE]
    keys += [format_series(f"net.{f}", {"nic": n}) for n in _NICS for f in _NET]
    keys += [format_series("temp.celsius", {"label": t, "sensor": "coretemp"}) for t in _TEMPS]
    assert len(set(keys)) == len(keys) == SERIES_PER_HOST
    return tuple(keys)


def machine_id(index: int) -> str:
    return f"bench-{index:03d}"


def random_walk(rng: np.random.Generator, frames: int, series: int) -> np.ndarray:
    """``frames`` x ``series`` finite float64 values: mean-reverting walks around levels."""
    level = rng.uniform(1.0, 1e6, series)
    steps = rng.normal(0.0, 0.01, (frames, series))
    walk = np.cumsum(steps, axis=0) * 0.9
    return np.abs(level * (1.0 + walk))


@dataclass(frozen=True, slots=True)
class HostPlan:
    """What one simulated collector sends: ``batches`` messages of ``shape``.

    Sequence ``k`` (1-based) carries frames ``(k-1)*frames .. k*frames-1``; frame ``i`` is at
    ``first_ms + i * INTERVAL_MS``.
    """

    index: int
    shape: Shape
    batches: int
    first_ms: int

    @property
    def machine_id(self) -> str:
        return machine_id(self.index)

    def frame_time(self, frame: int) -> int:
        return self.first_ms + frame * INTERVAL_MS


def plan_host(index: int, shape: Shape, batches: int, now_ms: int) -> HostPlan:
    """A host whose last frame is ~2 s before ``now_ms`` (hosts offset by 7 ms each)."""
    frames = batches * shape.frames
    last_ms = now_ms - 2_000 - index * 7
    return HostPlan(index, shape, batches, last_ms - (frames - 1) * INTERVAL_MS)


def build_batches(plan: HostPlan, seed: int = 0) -> list[bytes]:
    """The serialized ``MetricBatch`` messages of ``plan``, sequence 1 first."""
    rng = np.random.default_rng(seed * 1_000_003 + plan.index)
    series = list(host_series())
    source = SourceIdentity(
        machine_id=plan.machine_id,
        hostname=f"{plan.machine_id}.bench",
        labels={"env": "bench", "rack": f"r{plan.index % 8}"},
    )
    values = random_walk(rng, plan.batches * plan.shape.frames, SERIES_PER_HOST).tolist()
    out: list[bytes] = []
    for k in range(plan.batches):
        batch = MetricBatch(source=source, sequence=k + 1, series=series, interval_ms=INTERVAL_MS)
        for f in range(k * plan.shape.frames, (k + 1) * plan.shape.frames):
            batch.frames.add(time_unix_ms=plan.frame_time(f), values=values[f])
        out.append(batch.SerializeToString())
    return out
