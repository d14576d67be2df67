"""Where the aggregator spends its time during a run: py-spy if present, else cProfile.

``py-spy record --threads --format raw`` attaches to the running aggregator from outside
(the aggregator runs unmodified) and samples every Python thread 100 times a second. A
function's *own* share is the samples in which it is the innermost Python frame; native
code (gRPC's core, SQLite, numpy, an fsync) is charged to the Python function that called
it. Shares are in % of one core over the profiled wall time. Samples of a thread that only
waits (an idle executor worker, the event loop in ``select``, gRPC's C poller) are left out
of the function tables: py-spy cannot always tell those apart from work, so the busy time
per thread comes from the kernel's per-thread CPU counters instead (``psutil``).

Without py-spy the aggregator is started under ``cProfile``; that sees only the main thread
(the event loop), not the SQLite writer thread, and slows what it measures.
"""

from __future__ import annotations

import linecache
import pstats
import re
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.procs import ROOT, BenchError, Child, Children

PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
RATE_HZ = 100
#: innermost frames that mean "waiting", not working (see the module docstring)
WAITING = frozenset(
    {
        "_worker (concurrent/futures/thread.py)",  # executor thread blocked in queue.get
        "EpollSelector.select (selectors.py)",  # event loop with nothing ready
        "Thread.run (threading.py)",  # a thread whose target is native: gRPC's poller
    }
)
#: the same for cProfile's function names
CPROFILE_WAITING = frozenset({"<method 'poll' of 'select.epoll' objects>"})
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?P<tid>(?:0x)?[0-9A-Fa-f]+)\)(?::\s*(?P<name>.*))?$")
_SRC = ROOT / "src"
#: our own modules, as ``sysmonstm/store/warm_sqlite.py``
OWN_FILES = frozenset(p.relative_to(_SRC).as_posix() for p in (_SRC / "sysmonstm").rglob("*.py"))


def choose(requested: str) -> str:
    """``py-spy``, ``cprofile`` or ``none`` for ``--profiler`` (``auto``: py-spy if found)."""
    if requested == "auto":
        return "py-spy" if PY_SPY else "cprofile"
    if requested == "py-spy" and not PY_SPY:
        raise SystemExit("py-spy is not installed: pip install py-spy (or --profiler cprofile)")
    return requested


@dataclass(frozen=True, slots=True)
class Cost:
    """A function's share: ``self_pct`` in it, ``total_pct`` in it or in what it called."""

    function: str
    self_pct: float
    total_pct: float


@dataclass(slots=True)
class Profile:
    """Per thread, CPU used (% of one core); the top functions by own and by total time."""

    tool: str
    seconds: float
    threads: dict[str, float] = field(default_factory=dict)
    by_self: list[Cost] = field(default_factory=list)
    by_total: list[Cost] = field(default_factory=list)  # our own code (sysmonstm) only
    by_line: list[Cost] = field(default_factory=list)  # own time per source line


def _short(file: str) -> str:
    """Our modules as ``sysmonstm/...``, others relative to their ``sys.path`` entry.

    py-spy already shortens paths, not always to the package root (``warm_sqlite.py``).
    """
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    ours = [f for f in OWN_FILES if f == file or f.endswith("/" + file)]
    return ours[0] if len(ours) == 1 else file


def source_of(located: str) -> str:
    """The code at ``func (sysmonstm/x.py:N)``, if it is ours; else an empty string."""
    m = _FRAME.match(located)
    if m is None or not m["line"] or m["file"] not in OWN_FILES:
        return ""
    return linecache.getline(str(_SRC / m["file"]), int(m["line"])).strip()


def _is_own(function: str) -> bool:
    return any(function.endswith(f"({f})") for f in OWN_FILES)


def _frame_name(frame: str, *, line: bool = False) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    where = _short(m["file"]) + (f":{m['line']}" if line and m["line"] else "")
    return f"{m['func']} ({where})"


def _pool_name(name: str) -> str:
    return re.sub(r"_\d+$", "", name)  # warm-reader_0, warm-reader_1, ... are one pool


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of ``pid``, by kernel thread id."""
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


@dataclass
class _Tally:
    """Sample counts of one py-spy file, waiting samples left out."""

    own: Counter[str] = field(default_factory=Counter)
    own_lines: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    per_thread: Counter[str] = field(default_factory=Counter)
    threads_of: dict[str, set[str]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)  # kernel thread id -> name

    def add(self, frames: list[str], count: int) -> None:
        thread = _THREAD.match(frames[0])
        name = "thread"
        if thread is not None:
            name = _pool_name(thread["name"] or "thread")
            self.names[int(thread["tid"], 0)] = name
            frames = frames[1:]
        stack = [_frame_name(f) for f in frames]
        if not stack or stack[-1] in WAITING:
            return
        self.own[stack[-1]] += count
        self.own_lines[_frame_name(frames[-1], line=True)] += count
        self.per_thread[name] += count
        for function in set(stack):
            self.total[function] += count
            self.threads_of.setdefault(function, set()).add(name)

    def is_wrapper(self, function: str) -> bool:
        """In (nearly) every working sample of its threads: an entry point, not a cost."""
        whole = sum(self.per_thread[t] for t in self.threads_of.get(function, ()))
        return self.total[function] >= 0.98 * whole


def summarize_py_spy(
    raw: Path, seconds: float, cpu_by_tid: dict[int, float], top: int = 12
) -> Profile:
    """Summarize a ``--format raw --threads`` file covering ``seconds`` of wall time."""
    tally = _Tally()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            tally.add(stack.split(";"), int(count))
    threads: dict[str, float] = {}
    for tid, cpu in cpu_by_tid.items():
        name = tally.names.get(tid, "native threads (gRPC core)")
        threads[name] = threads.get(name, 0.0) + 100.0 * cpu / seconds

    def pct(n: int) -> float:
        return 100.0 * n / (seconds * RATE_HZ)

    ours = [(f, n) for f, n in tally.total.most_common() if _is_own(f) and not tally.is_wrapper(f)]
    return Profile(
        "py-spy",
        seconds,
        {name: round(v, 1) for name, v in sorted(threads.items(), key=lambda t: -t[1])},
        [Cost(f, pct(n), pct(tally.total[f])) for f, n in tally.own.most_common(top)],
        [Cost(f, pct(tally.own[f]), pct(n)) for f, n in ours[:top]],
        [Cost(f, pct(n), pct(n)) for f, n in tally.own_lines.most_common(top)],
    )


def summarize_cprofile(stats_file: Path, seconds: float, top: int = 12) -> Profile:
    """Summarize a cProfile dump: the main thread over the aggregator's whole life.

    Percentages are of the main thread's busy time (time in ``epoll`` left out); cProfile
    cannot be limited to the timed phase, so start-up and shutdown are in it too.
    """
    table = pstats.Stats(str(stats_file)).stats  # type: ignore[attr-defined]
    busy = {k: v for k, v in table.items() if k[2] not in CPROFILE_WAITING}
    total = sum(v[2] for v in busy.values()) or 1.0
    rows = [
        (f"{k[2]} ({_short(k[0])})", 100.0 * v[2] / total, 100.0 * v[3] / total)
        for k, v in busy.items()
    ]
    by_self = sorted(rows, key=lambda r: r[1], reverse=True)[:top]
    ours = [r for r in sorted(rows, key=lambda r: r[2], reverse=True) if _is_own(r[0])]
    return Profile(
        "cProfile (main thread, whole run, % of its busy time)",
        seconds,
        {},
        [Cost(*r) for r in by_self],
        [Cost(*r) for r in ours[:top]],
    )


class AggregatorProfiler:
    """Profiles one aggregator over the load generator's timed phase.

    Use: ``wrap`` the aggregator's command line, ``start`` once the timed phase has begun,
    ``stop`` when the load is done (before stopping the aggregator), then ``summary``.
    """

    def __init__(self, tool: str, workdir: Path) -> None:
        self.tool = tool
        self.out = workdir / f"profile.{tool}"
        self._spy: Child | None = None
        self._pid = 0
        self._started = 0.0
        self._seconds = 0.0
        self._cpu0: dict[int, float] = {}
        self._cpu: dict[int, float] = {}

    def wrap(self, python: str, argv: list[str]) -> list[str]:
        """The aggregator's command line (cProfile runs the CLI under itself)."""
        if self.tool != "cprofile":
            return argv
        command = ["sysmonstm", *argv[1:]]
        code = (
            "import cProfile, sys; from sysmonstm.cli import main; "
            f"sys.argv = {command!r}; cProfile.run('main()', {str(self.out)!r})"
        )
        return [python, "-c", code]

    def start(self, kids: Children, pid: int) -> None:
        self._pid = pid
        if self.tool == "py-spy":
            assert PY_SPY is not None
            self._spy = kids.start(
                "py-spy",
                [
                    PY_SPY,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(RATE_HZ),
                    "--threads",
                    "--format",
                    "raw",
                    "--output",
                    str(self.out),
                    "--duration",
                    "3600",
                ],
            )
            deadline = time.monotonic() + 10.0
            while "Sampling process" not in self._spy.text():
                if time.monotonic() > deadline or self._spy.popen.poll() is not None:
                    raise BenchError(f"py-spy did not attach:\n{self._spy.text()[-2000:]}")
                time.sleep(0.01)
        self._cpu0 = _thread_cpu(pid)
        self._started = time.monotonic()

    def stop(self) -> None:
        self._seconds = time.monotonic() - self._started
        now = _thread_cpu(self._pid)
        self._cpu = {tid: cpu - self._cpu0.get(tid, 0.0) for tid, cpu in now.items()}
        if self._spy is not None:
            self._spy.stop(signal.SIGINT, grace=30.0)  # py-spy writes its file on SIGINT

    def summary(self) -> Profile:
        """Call after the aggregator has exited (cProfile writes its file at exit)."""
        if not self.out.exists():
            raise BenchError(f"{self.tool} wrote no profile to {self.out}")
        if self.tool == "py-spy":
            return summarize_py_spy(self.out, self._seconds, self._cpu)
        return summarize_cprofile(self.out, self._seconds)
