"""The host's raw counters, read the cheap way: Linux ``/proc`` files kept open, else psutil.

A collector reads the same handful of files every second for as long as the machine runs,
so what one read costs is its whole CPU bill. psutil opens, reads and closes each file per
call and reads some twice (``/proc/meminfo`` for memory and again for swap, with
``/proc/vmstat`` for swap counters we do not use; ``/proc/stat`` for the total and again per
CPU). ``ProcCounters`` keeps ``/proc/stat``, ``/proc/meminfo``, ``/proc/diskstats`` and
``/proc/net/dev`` open and re-reads each with one ``pread`` at offset 0 (procfs regenerates
the content on every read from the start): about a third of psutil's time for the same
figures (issue 6, target 3). ``PsutilCounters`` gives the same figures through psutil, for
other systems and for a ``/proc`` that lacks what is needed.

Both give the figures psutil's Linux code gives, in the same units (see each method).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import psutil

# /proc/stat's order; psutil's cpu_times() fields (where the OS has them) are mapped onto it
CPU_FIELDS = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
)
_SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's sector size
_MEMINFO = (b"MemTotal", b"MemAvailable", b"SwapTotal", b"SwapFree")
_GROW_MARGIN = 4096  # a read this close to the buffer's size may be cut: read again, bigger


class Memory(NamedTuple):
    """Bytes, as psutil's ``virtual_memory`` and ``swap_memory`` give them on Linux."""

    total: int
    available: int
    swap_total: int
    swap_free: int


class HostCounters(Protocol):
    """Where ``HostSampler`` gets its raw figures from."""

    def cpu(self) -> tuple[tuple[float, ...], list[tuple[float, ...]]]:
        """The host's CPU times and each logical CPU's, in ``CPU_FIELDS`` order (0 where
        the OS has no such field); any unit, only their ratios are used."""
        ...

    def memory(self) -> Memory: ...

    def disks(self) -> dict[str, tuple[int, int, int, int]]:
        """Per block device (partitions included): reads, writes, bytes read, written."""
        ...

    def nics(self) -> dict[str, tuple[int, ...]]:
        """Per interface, psutil's order: bytes sent, received, packets sent, received,
        errors in, out, drops in, out."""
        ...

    def process_count(self) -> int: ...


def _cpu_tuple(t: object) -> tuple[float, ...]:
    return tuple(float(getattr(t, name, 0.0)) for name in CPU_FIELDS)


class PsutilCounters:
    """``HostCounters`` through psutil: any OS it supports."""

    def cpu(self) -> tuple[tuple[float, ...], list[tuple[float, ...]]]:
        total = _cpu_tuple(psutil.cpu_times())
        return total, [_cpu_tuple(t) for t in psutil.cpu_times(percpu=True)]

    def memory(self) -> Memory:
        vm, sw = psutil.virtual_memory(), psutil.swap_memory()
        return Memory(vm.total, vm.available, sw.total, sw.free)

    def disks(self) -> dict[str, tuple[int, int, int, int]]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        return {name: (c[0], c[1], c[2], c[3]) for name, c in counters.items()}

    def nics(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(c) for name, c in psutil.net_io_counters(pernic=True).items()}

    def process_count(self) -> int:
        return len(psutil.pids())


class _ProcFile:
    """One ``/proc`` file held open, read whole from offset 0 on each ``read``."""

    def __init__(self, path: str, size: int = 1 << 16) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = size
        self._closer = weakref.finalize(self, os.close, self.fd)  # also when just dropped

    def read(self) -> bytes:
        data = os.pread(self.fd, self.size, 0)
        while len(data) > self.size - _GROW_MARGIN:
            self.size *= 4
            data = os.pread(self.fd, self.size, 0)
        return data

    def close(self) -> None:
        self._closer()


class ProcCounters:
    """``HostCounters`` from Linux's ``/proc``, its files kept open (see the module).

    Raises ``OSError`` or ``ValueError`` on creation when ``/proc`` lacks a file or a field
    it needs (``open_counters`` then falls back to psutil).
    """

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc
        self._files: list[_ProcFile] = []
        try:
            self._stat = self._open("stat")
            self._meminfo = self._open("meminfo")
            self._diskstats = self._open("diskstats")
            self._netdev = self._open("net/dev")
            self.memory()  # MemAvailable is missing before Linux 3.14
            self.cpu()
        except BaseException:
            self.close()
            raise

    def _open(self, name: str) -> _ProcFile:
        f = _ProcFile(f"{self._proc}/{name}")
        self._files.append(f)
        return f

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def cpu(self) -> tuple[tuple[float, ...], list[tuple[float, ...]]]:
        """``/proc/stat``'s ``cpu`` lines: the total first, then one per online CPU."""
        rows: list[tuple[float, ...]] = []
        for line in self._stat.read().split(b"\n"):
            if not line.startswith(b"cpu"):
                break  # the cpu lines come first
            values = [float(v) for v in line.split()[1 : len(CPU_FIELDS) + 1]]
            rows.append(tuple(values + [0.0] * (len(CPU_FIELDS) - len(values))))
        if not rows:
            raise ValueError("no cpu line in /proc/stat")
        return rows[0], rows[1:]

    def memory(self) -> Memory:
        """``/proc/meminfo`` in bytes (psutil's ``total``, ``available``; swap ``total``,
        ``free``)."""
        found: dict[bytes, int] = {}
        for line in self._meminfo.read().split(b"\n"):
            name, _, rest = line.partition(b":")
            if name in _MEMINFO:
                found[name] = int(rest.split()[0]) * 1024
        try:
            return Memory(*(found[name] for name in _MEMINFO))
        except KeyError as exc:
            raise ValueError(f"/proc/meminfo has no {exc.args[0].decode()}") from None

    def disks(self) -> dict[str, tuple[int, int, int, int]]:
        """``/proc/diskstats`` (Linux 2.6+ lines, 14 fields or more): reads, writes, bytes."""
        out: dict[str, tuple[int, int, int, int]] = {}
        for line in self._diskstats.read().split(b"\n"):
            f = line.split()
            if len(f) >= 14:
                out[f[2].decode()] = (
                    int(f[3]),
                    int(f[7]),
                    int(f[5]) * _SECTOR,
                    int(f[9]) * _SECTOR,
                )
        return out

    def nics(self) -> dict[str, tuple[int, ...]]:
        """``/proc/net/dev`` of this process's network namespace, in psutil's order."""
        out: dict[str, tuple[int, ...]] = {}
        for line in self._netdev.read().split(b"\n")[2:]:
            name, sep, rest = line.rpartition(b":")
            if not sep:
                continue
            v = rest.split()
            out[name.strip().decode()] = (
                int(v[8]),
                int(v[0]),
                int(v[9]),
                int(v[1]),
                int(v[2]),
                int(v[10]),
                int(v[3]),
                int(v[11]),
            )
        return out

    def process_count(self) -> int:
        return sum(1 for name in os.listdir(self._proc) if name.isdigit())


def open_counters(
    factories: Sequence[Callable[[], HostCounters]] = (ProcCounters, PsutilCounters),
) -> HostCounters:
    """The first of ``factories`` that works on this host (``/proc`` on Linux, else psutil)."""
    for factory in factories[:-1]:
        try:
            return factory()
        except (OSError, ValueError):
            continue
    return factories[-1]()
