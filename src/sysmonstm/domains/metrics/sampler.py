"""One host's metrics (``counters``: ``/proc`` on Linux, else psutil), as canonical series keys
and values.

Series (tags in braces):

- ``cpu.used``, ``cpu.user``, ``cpu.system``, ``cpu.iowait``, ``cpu.idle``: host total, %;
  ``cpu.core.<same>{cpu="N"}`` per logical CPU. ``user`` includes nice, ``system`` includes
  irq and softirq, ``used`` is everything but idle and iowait (steal included).
- ``load.1``, ``load.5``, ``load.15``.
- ``mem.used_pct``, ``mem.used_bytes`` (total - available, the part that cannot be
  reclaimed), ``mem.available_bytes``, ``mem.total_bytes``; ``swap.used_pct``,
  ``swap.used_bytes``, ``swap.total_bytes``.
- ``disk.read_bps``, ``disk.write_bps``, ``disk.read_iops``, ``disk.write_iops``
  ``{disk=..}``: whole block devices, no partitions, loop, ram or zram devices.
- ``disk.used_pct``, ``disk.used_bytes``, ``disk.total_bytes`` ``{mount=..}``: real
  filesystems, one mount per device.
- ``net.{rx,tx}_bps``, ``net.{rx,tx}_pps``, ``net.{rx,tx}_errors_ps``,
  ``net.{rx,tx}_drops_ps`` ``{iface=..}``, loopback excluded.
- ``proc.count``; ``temp.celsius{label=..,sensor=..}`` where the host has sensors.

Rates and CPU percentages are deltas between two calls over monotonic time, so the first
call only primes them and returns the gauges. Every value returned is finite.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import psutil

from sysmonstm.domains.metrics.counters import HostCounters, open_counters
from sysmonstm.store.series import format_series

_CPU_FIELDS = ("used", "user", "system", "iowait", "idle")
_SKIP_DISKS = ("loop", "ram", "zram")
_SKIP_FSTYPES = frozenset({"squashfs", "overlay", "iso9660", "udf"})
_DISK_RATES = (
    ("disk.read_bps", 2),
    ("disk.write_bps", 3),
    ("disk.read_iops", 0),
    ("disk.write_iops", 1),
)  # (metric, index into the counters tuple)
_NET_RATES = (  # psutil's order is sent, recv, so tx comes first in the tuple
    ("net.rx_bps", 1),
    ("net.tx_bps", 0),
    ("net.rx_pps", 3),
    ("net.tx_pps", 2),
    ("net.rx_errors_ps", 4),
    ("net.tx_errors_ps", 5),
    ("net.rx_drops_ps", 6),
    ("net.tx_drops_ps", 7),
)
_SYS_BLOCK = "/sys/block"


class _CpuShares(NamedTuple):
    busy: float
    user: float
    system: float
    iowait: float
    idle: float
    total: float


def _cpu_shares(t: tuple[float, ...]) -> _CpuShares:
    """Times in ``CPU_FIELDS`` order: user nice system idle iowait irq softirq steal guest
    guest_nice."""
    user, nice, system, idle, iowait, irq, softirq, _steal, guest, guest_nice = t
    # guest time is already counted in user/nice on Linux
    total = sum(t) - guest - guest_nice
    return _CpuShares(
        total - idle - iowait, user + nice, system + irq + softirq, iowait, idle, total
    )


def _cpu_percents(prev: _CpuShares, cur: _CpuShares) -> list[float] | None:
    span = cur.total - prev.total
    if span <= 0:
        return None  # no tick elapsed between the two calls
    return [
        min(100.0, max(0.0, (c - p) * 100.0 / span)) for p, c in zip(prev[:5], cur[:5], strict=True)
    ]


def _percent(used: int, total: int) -> float:
    """psutil's ``percent`` (rounded to 0.1, 0 for an empty total)."""
    return round(used * 100.0 / total, 1) if total else 0.0


class HostSampler:
    """Samples this host; keeps the previous counters to turn them into rates.

    The counters come from ``counters`` (default: ``open_counters()``, Linux's ``/proc``
    kept open, else psutil). Disk usage (statvfs per mount and the mount table) is refreshed
    only every ``usage_refresh_s``: it moves slowly, and statvfs is the call that can stall
    on a sick filesystem, so one sample in ten pays for it instead of every one. A host
    found without temperature sensors is looked at again only then too (the search walks
    sysfs every time). ``may_block()`` tells whether the next ``sample()`` does any of that
    (a caller on an event loop runs that one in a thread, the others inline).
    """

    def __init__(
        self,
        *,
        usage_refresh_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        counters: HostCounters | None = None,
    ) -> None:
        self.usage_refresh_s = usage_refresh_s
        self._clock = clock
        self._counters = counters if counters is not None else open_counters()
        self._keys: dict[tuple[str, str, str], str] = {}
        self._prev_at: float | None = None
        self._prev_cpu: _CpuShares | None = None
        self._prev_cores: list[_CpuShares] = []
        self._prev_disks: dict[str, tuple[int, ...]] = {}
        self._prev_nics: dict[str, tuple[int, ...]] = {}
        self._usage: list[tuple[str, float]] = []
        self._usage_at = -math.inf
        self._whole_disks: frozenset[str] | None = None
        self._has_temps = True  # until a look finds none

    def _key(self, metric: str, tag: str = "", value: str = "") -> str:
        k = (metric, tag, value)
        key = self._keys.get(k)
        if key is None:
            key = self._keys[k] = format_series(metric, {tag: value} if tag else None)
        return key

    def _usage_due(self, now: float) -> bool:
        return now - self._usage_at >= self.usage_refresh_s

    def may_block(self) -> bool:
        """Whether the next ``sample()`` calls statvfs or reads temperature sensors (both
        can take long on some hosts); the other samples only read counters."""
        return self._has_temps or self._usage_due(self._clock())

    def sample(self) -> tuple[tuple[str, ...], list[float]]:
        """The series keys and their values now (rates from the second call on)."""
        now = self._clock()
        dt = None if self._prev_at is None else now - self._prev_at
        self._prev_at = now
        out: list[tuple[str, float]] = []
        self._cpu(out)
        out.extend(zip(("load.1", "load.5", "load.15"), psutil.getloadavg(), strict=True))
        m = self._counters.memory()
        swap_used = m.swap_total - m.swap_free
        out += [
            ("mem.used_pct", _percent(m.total - m.available, m.total)),
            ("mem.used_bytes", m.total - m.available),
            ("mem.available_bytes", m.available),
            ("mem.total_bytes", m.total),
            ("swap.used_pct", _percent(swap_used, m.swap_total)),
            ("swap.used_bytes", swap_used),
            ("swap.total_bytes", m.swap_total),
        ]
        refresh = self._usage_due(now)
        if refresh:
            self._usage_at = now
            self._refresh_usage()
        self._disk_io(out, dt)
        out.extend(self._usage)
        self._net(out, dt)
        out.append(("proc.count", self._counters.process_count()))
        if self._has_temps or refresh:
            self._temps(out)
        kept = [(k, float(v)) for k, v in out if math.isfinite(v)]
        return tuple(k for k, _ in kept), [v for _, v in kept]

    def _cpu(self, out: list[tuple[str, float]]) -> None:
        host, per_cpu = self._counters.cpu()
        total = _cpu_shares(host)
        cores = [_cpu_shares(t) for t in per_cpu]
        if self._prev_cpu is not None and (pct := _cpu_percents(self._prev_cpu, total)):
            out.extend((self._key(f"cpu.{f}"), v) for f, v in zip(_CPU_FIELDS, pct, strict=True))
        for n, (prev, cur) in enumerate(zip(self._prev_cores, cores, strict=False)):
            if pct := _cpu_percents(prev, cur):
                out.extend(
                    (self._key(f"cpu.core.{f}", "cpu", str(n)), v)
                    for f, v in zip(_CPU_FIELDS, pct, strict=True)
                )
        self._prev_cpu, self._prev_cores = total, cores

    def _disk_io(self, out: list[tuple[str, float]], dt: float | None) -> None:
        whole = self._whole_disks
        cur: dict[str, tuple[int, ...]] = {
            name: c
            for name, c in self._counters.disks().items()
            if not name.startswith(_SKIP_DISKS) and (whole is None or name in whole)
        }
        out.extend(
            (self._key(m, "disk", d), r)
            for m, d, r in _rates(_DISK_RATES, self._prev_disks, cur, dt)
        )
        self._prev_disks = cur

    def _net(self, out: list[tuple[str, float]], dt: float | None) -> None:
        cur = {name: c for name, c in self._counters.nics().items() if name != "lo"}
        out.extend(
            (self._key(m, "iface", d), r)
            for m, d, r in _rates(_NET_RATES, self._prev_nics, cur, dt)
        )
        self._prev_nics = cur

    def _refresh_usage(self) -> None:
        if os.path.isdir(_SYS_BLOCK):  # partitions are not listed there, whole disks are
            self._whole_disks = frozenset(os.listdir(_SYS_BLOCK))
        usage: list[tuple[str, float]] = []
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=False):
            if part.fstype in _SKIP_FSTYPES or part.device in seen:
                continue  # snap images and bind mounts repeat what is already counted
            seen.add(part.device)
            try:
                du = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue  # unmounted meanwhile, or not ours to read
            usage += [
                (self._key("disk.used_pct", "mount", part.mountpoint), du.percent),
                (self._key("disk.used_bytes", "mount", part.mountpoint), du.used),
                (self._key("disk.total_bytes", "mount", part.mountpoint), du.total),
            ]
        self._usage = usage

    def _temps(self, out: list[tuple[str, float]]) -> None:
        read = getattr(psutil, "sensors_temperatures", None)
        found = read() if read is not None else {}
        self._has_temps = bool(found)
        for sensor, entries in found.items():
            seen: set[str] = set()
            for i, entry in enumerate(entries):
                label = entry.label or str(i)
                if label in seen:
                    label = f"{label}#{i}"  # e.g. one "Core 0" per socket
                seen.add(label)
                key = self._keys.get(("temp.celsius", sensor, label))
                if key is None:
                    key = format_series("temp.celsius", {"sensor": sensor, "label": label})
                    self._keys["temp.celsius", sensor, label] = key
                out.append((key, entry.current))


def _rates(
    fields: tuple[tuple[str, int], ...],
    prev: dict[str, tuple[int, ...]],
    cur: dict[str, tuple[int, ...]],
    dt: float | None,
) -> Iterator[tuple[str, str, float]]:
    """``(metric, device, per-second rate)`` of counters present in both samples; a counter
    that went back (wrapped, or the device was replaced) is skipped this once."""
    if not dt or dt <= 0:
        return
    for name, counters in cur.items():
        before = prev.get(name)
        if before is None:
            continue
        for metric, i in fields:
            delta = counters[i] - before[i]
            if delta >= 0:
                yield metric, name, delta / dt
