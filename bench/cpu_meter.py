"""CPU time of a process tree, to the nanosecond, read from ``/proc`` without touching it.

``TreeClock`` sums the kernel's per-thread run time (``/proc/PID/task/TID/schedstat``, first
field, in ns) over every thread of a process and of its live descendants. The kernel's
per-process figures (``utime + stime`` in ``/proc/PID/stat``) count in clock ticks (10 ms
here): over 10 s, 0.2 % of a core is two ticks, so they cannot show a cheap process's
noise. Threads come and go (thread pools), so each ``sample()`` adds what each thread ran
since it was last seen; a thread that ended between two samples loses only its time since
the previous one, so sample often (each second). ``tick_seconds`` is the coarse
``utime + stime`` of the same tree, as a cross-check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench.pg import processes_cpu

PROC = Path("/proc")


def available() -> bool:
    """Whether this kernel keeps per-thread run times (``CONFIG_SCHED_INFO``)."""
    return (PROC / "self" / "schedstat").exists()


def tree(root: int) -> list[int]:
    """``root`` and its live descendants' pids."""
    try:
        proc = psutil.Process(root)
        return [root, *(p.pid for p in proc.children(recursive=True))]
    except psutil.Error:
        return []


def _thread_name(pid: int, tid: int) -> str:
    try:
        return (PROC / str(pid) / "task" / str(tid) / "comm").read_text().strip()
    except OSError:
        return "?"


def _thread_times(pid: int) -> Iterator[tuple[tuple[int, int], int]]:
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return  # ended meanwhile
    for tid in tids:
        try:
            text = (PROC / str(pid) / "task" / tid / "schedstat").read_text()
        except OSError:
            continue
        yield (pid, int(tid)), int(text.split()[0])


def rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and its live descendants (shared pages counted in each)."""
    total = 0
    for pid in tree(root):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total


class TreeClock:
    """The CPU seconds a process tree has run since this clock was made (see the module)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._last: dict[tuple[int, int], int] = {}
        self._names: dict[tuple[int, int], str] = {}
        self._ns = 0
        self._by_name: dict[str, int] = {}
        self.sample()
        self._ns = 0  # what ran before the clock was made does not count
        self._by_name.clear()
        self._ticks_at = self._tick_total()

    def sample(self) -> float:
        """Read every thread now; the CPU seconds run since the clock was made."""
        seen: dict[tuple[int, int], int] = {}
        for pid in tree(self.root):
            for key, ns in _thread_times(pid):
                seen[key] = ns
                ran = ns - self._last.get(key, 0)
                self._ns += ran
                name = self._names.get(key)
                if name is None:
                    name = self._names[key] = _thread_name(*key)
                self._by_name[name] = self._by_name.get(name, 0) + ran
        self._last = seen
        return self._ns / 1e9

    def by_thread(self) -> dict[str, float]:
        """CPU seconds per thread name (threads of one name summed), as of the last sample."""
        return {name: ns / 1e9 for name, ns in self._by_name.items()}

    def _tick_total(self) -> float:
        try:
            return processes_cpu(psutil.Process(self.root))
        except psutil.Error:
            return 0.0

    def tick_seconds(self) -> float:
        """``utime + stime`` of the tree since the clock was made (10 ms steps)."""
        return self._tick_total() - self._ticks_at
