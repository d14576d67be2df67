"""The stream the ``rules`` suite feeds the rule service: plausible values for the fleet.

The same 100 hosts x 100 series as every other suite (``bench.workload``), but values a rule
writer would recognise, since rules must fire as rarely or as often as on a real fleet:
percentages that wander around a host's own level (a few hosts run hot), load, bytes that
only grow (disk usage, for ``rate`` rules), network and disk rates on a log scale, error and
drop counts that are zero except for bursts, temperatures. Each series is an AR(1) walk
around its host's level, drawn a chunk of frames at a time for all hosts at once (numpy).

``payload`` builds exactly what the aggregator publishes on ``metrics.<machine>``
(``sysmonstm.domains.metrics.ingest.bus_payload``) for a live-shape batch: one frame of 100
values. Frames of a host are ``INTERVAL_MS`` apart in sample time however fast they are sent,
so ``for`` and window durations cover as many samples as they would on a real fleet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.workload import INTERVAL_MS, SERIES_PER_HOST, host_series, machine_id
from sysmonstm.domains.metrics.ingest import metrics_topic
from sysmonstm.store.series import parse_series

CHUNK = 64  # frames drawn at once per host
RACKS = 8
LINEAR, LOG10, GROWING, CONSTANT, BURSTY = range(5)


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one metric behaves: ``mode``, the host level range, walk noise, memory, bounds."""

    mode: int
    level: tuple[float, float]
    sigma: float = 0.0
    phi: float = 0.95
    bounds: tuple[float, float] = (0.0, 100.0)
    hot: tuple[float, float] | None = None  # the level range of the hosts that run hot


_GIB = 2**30
_KINDS: dict[str, _Kind] = {
    "cpu.used": _Kind(LINEAR, (5, 70), 5.0, 0.9, hot=(75, 95)),
    "cpu.user": _Kind(LINEAR, (3, 55), 4.0, 0.9, hot=(60, 85)),
    "cpu.system": _Kind(LINEAR, (1, 15), 2.0, 0.9),
    "cpu.iowait": _Kind(LINEAR, (0, 6), 2.0, 0.8, hot=(15, 40)),
    "cpu.idle": _Kind(LINEAR, (30, 95), 5.0, 0.9, hot=(5, 25)),
    "load.1": _Kind(LINEAR, (0.2, 6), 0.8, 0.9, (0, 64), hot=(8, 20)),
    "load.5": _Kind(LINEAR, (0.2, 6), 0.3, 0.97, (0, 64), hot=(8, 20)),
    "load.15": _Kind(LINEAR, (0.2, 6), 0.1, 0.99, (0, 64), hot=(8, 20)),
    "mem.used_pct": _Kind(LINEAR, (30, 88), 1.0, 0.98, hot=(88, 97)),
    "mem.used_bytes": _Kind(LINEAR, (8 * _GIB, 56 * _GIB), 0.2 * _GIB, 0.98, (0, 64 * _GIB)),
    "mem.available_bytes": _Kind(LINEAR, (8 * _GIB, 56 * _GIB), 0.2 * _GIB, 0.98, (0, 64 * _GIB)),
    "mem.total_bytes": _Kind(CONSTANT, (64 * _GIB, 64 * _GIB)),
    "swap.used_pct": _Kind(LINEAR, (0, 8), 1.0, 0.98, hot=(35, 75)),
    "swap.used_bytes": _Kind(LINEAR, (0, _GIB), 0.02 * _GIB, 0.98, (0, 8 * _GIB)),
    "swap.total_bytes": _Kind(CONSTANT, (8 * _GIB, 8 * _GIB)),
    "proc.count": _Kind(LINEAR, (150, 650), 8.0, 0.95, (0, 10_000), hot=(700, 900)),
    "disk.read_bps": _Kind(LOG10, (4, 7.5), 0.15, 0.9, (0, 10)),
    "disk.write_bps": _Kind(LOG10, (4, 7.5), 0.15, 0.9, (0, 10)),
    "disk.read_iops": _Kind(LOG10, (0.5, 3.2), 0.1, 0.9, (0, 6)),
    "disk.write_iops": _Kind(LOG10, (0.5, 3.2), 0.1, 0.9, (0, 6)),
    # GROWING: level = starting bytes; sigma = the host's mean growth in bytes per frame
    "disk.used_bytes": _Kind(GROWING, (1e11, 8e11), 2e5, bounds=(0, 1e12), hot=(1e6, 1.2e7)),
    "disk.used_pct": _Kind(LINEAR, (15, 88), 0.05, 0.999, hot=(88, 97)),
    "disk.total_bytes": _Kind(CONSTANT, (1e12, 1e12)),
    "net.rx_bps": _Kind(LOG10, (5, 8.7), 0.1, 0.9, (0, 10)),
    "net.tx_bps": _Kind(LOG10, (5, 8.7), 0.1, 0.9, (0, 10)),
    "net.rx_pps": _Kind(LOG10, (2, 5), 0.1, 0.9, (0, 7)),
    "net.tx_pps": _Kind(LOG10, (2, 5), 0.1, 0.9, (0, 7)),
    # BURSTY: level = mean burst size; sigma = chance of a burst per frame
    "net.rx_errors_ps": _Kind(BURSTY, (1, 20), 0.002, hot=(5, 60)),
    "net.tx_errors_ps": _Kind(BURSTY, (1, 20), 0.002, hot=(5, 60)),
    "net.rx_drops_ps": _Kind(BURSTY, (5, 100), 0.01, hot=(20, 300)),
    "net.tx_drops_ps": _Kind(BURSTY, (5, 100), 0.01, hot=(20, 300)),
    "temp.celsius": _Kind(LINEAR, (38, 68), 1.5, 0.95, (20, 110), hot=(72, 88)),
}
HOT_SHARE = 0.08  # hosts (per metric) that run hot


def metric_names() -> list[str]:
    """The metric name of each of a host's series, in the series order."""
    return [parse_series(key)[0] for key in host_series()]


class FleetStream:
    """Frames for ``hosts`` hosts, drawn ``CHUNK`` frames at a time; ``payload`` publishes.

    ``first_ms`` is the sample time of every host's first frame (hosts 7 ms apart).
    """

    def __init__(self, hosts: int, seed: int, first_ms: int) -> None:
        self.hosts = hosts
        self.series = list(host_series())
        self.first_ms = first_ms
        self._rng = np.random.default_rng(seed)
        names = metric_names()
        kinds = [_KINDS[n.replace("cpu.core.", "cpu.")] for n in names]  # a core as a host
        shape = (hosts, SERIES_PER_HOST)
        lo = np.array([k.level[0] for k in kinds])
        hi = np.array([k.level[1] for k in kinds])
        hot_lo = np.array([(k.hot or k.level)[0] for k in kinds])
        hot_hi = np.array([(k.hot or k.level)[1] for k in kinds])
        hot = self._rng.random(shape) < HOT_SHARE
        u = self._rng.random(shape)
        self._level = np.where(hot, hot_lo + u * (hot_hi - hot_lo), lo + u * (hi - lo))
        self._mode = np.array([k.mode for k in kinds])
        self._sigma = np.broadcast_to(np.array([k.sigma for k in kinds]), shape).copy()
        growing = self._mode == GROWING
        # a growing series' growth per frame is its 'hot' range on hot hosts
        self._sigma[:, growing] = np.where(
            hot[:, growing], self._level[:, growing], self._sigma[:, growing]
        )
        self._level[:, growing] = lo[growing] + u[:, growing] * (hi[growing] - lo[growing])
        self._phi = np.array([k.phi for k in kinds])
        self._lo = np.array([k.bounds[0] for k in kinds])
        self._hi = np.array([k.bounds[1] for k in kinds])
        self._state = self._level.copy()
        self._chunk = np.empty((0, hosts, SERIES_PER_HOST))
        self._frame = 0  # frames drawn so far, per host
        self._topics = [metrics_topic(machine_id(h)) for h in range(hosts)]

    def _draw(self) -> np.ndarray:
        """The next ``CHUNK`` frames of every host: (frames, hosts, series) values."""
        rng, mode = self._rng, self._mode
        out = np.empty((CHUNK, self.hosts, SERIES_PER_HOST))
        walk = np.flatnonzero((mode == LINEAR) | (mode == LOG10))
        level, phi, sigma = self._level[:, walk], self._phi[walk], self._sigma[:, walk]
        state = self._state[:, walk]
        eps = rng.standard_normal((CHUNK, self.hosts, walk.size)) * sigma
        for f in range(CHUNK):
            state = level + phi * (state - level) + eps[f]
            out[f][:, walk] = state
        self._state[:, walk] = state
        out[:, :, walk] = np.clip(out[:, :, walk], self._lo[walk], self._hi[walk])
        log = np.flatnonzero(mode == LOG10)
        out[:, :, log] = 10.0 ** out[:, :, log]
        grow = np.flatnonzero(mode == GROWING)
        steps = self._sigma[:, grow] * np.abs(
            1.0 + rng.standard_normal((CHUNK, self.hosts, grow.size))
        )
        out[:, :, grow] = self._state[:, grow] + np.cumsum(steps, axis=0)
        self._state[:, grow] = out[-1][:, grow]
        const = np.flatnonzero(mode == CONSTANT)
        out[:, :, const] = self._level[:, const]
        bursty = np.flatnonzero(mode == BURSTY)
        size = (CHUNK, self.hosts, bursty.size)
        hit = rng.random(size) < self._sigma[:, bursty]
        out[:, :, bursty] = np.where(
            hit, np.round(rng.exponential(1.0, size) * self._level[:, bursty]), 0.0
        )
        return out

    def topic(self, host: int) -> str:
        return self._topics[host]

    def frame_time(self, host: int, frame: int) -> int:
        return self.first_ms + frame * INTERVAL_MS + host * 7

    def next_round(self) -> tuple[int, np.ndarray]:
        """The next frame of every host: its index and a (hosts, series) array."""
        if self._frame % CHUNK == 0:
            self._chunk = self._draw()
        frame = self._frame
        self._frame += 1
        return frame, self._chunk[frame % CHUNK]

    def payload(self, host: int, frame: int, values: np.ndarray) -> dict[str, object]:
        """What the aggregator publishes for one live batch of ``host`` (``bus_payload``)."""
        mid = machine_id(host)
        return {
            "source": mid,
            "host": f"{mid}.bench",
            "labels": {"env": "bench", "rack": f"r{host % RACKS}"},
            "seq": frame + 1,
            "interval_ms": INTERVAL_MS,
            "series": list(self.series),
            "times_ms": [self.frame_time(host, frame)],
            "values": [values.tolist()],
        }
