"""The ``collector`` suite: collector CPU cost beside Glances and node-exporter (issue 6, #3).

One side-by-side session (``bench.collector_cost``) gives all three measurements, so the
suite takes one run (``runs=1``): the first job runs the session, the others read it.
"""

from __future__ import annotations

from pathlib import Path

from bench import monitors
from bench.collector_cost import COLLECTOR_COMMAND, CostOptions, side_by_side
from bench.model import Measurement, Run
from bench.suite import RunFn, SuiteContext, SuiteJobs

COMMAND = "python -m bench --only collector"
UNIT = "% of a core"
_COMMON = (
    ("per-window figures, % of a core", "windows", ""),
    ("median of the windows, % of a core", "window_median", ".3f"),
    ("utime + stime (10 ms ticks), % of a core", "ticks_pct", ".3f"),
    ("resident memory, MB (process tree)", "rss_mb", ".1f"),
)
_SCRAPED = (
    ("its scraper's own CPU (not counted above), % of a core", "scraper_pct", ".3f"),
    ("polls answered (all 200)", "polls", ".0f"),
    ("bytes per answer (gzip where offered)", "bytes_per_poll", ".0f"),
    ("our collector's CPU as a share of this", "ours_share", ".3f"),
)


def _session(o: CostOptions) -> dict[str, RunFn]:
    """A run function per measurement; the first one called runs the shared session."""
    found: dict[int, dict[str, Run]] = {}

    def part(name: str) -> RunFn:
        def run(directory: Path, seed: int) -> Run:
            if seed not in found:
                found[seed] = side_by_side(directory, o)
            return found[seed][name]

        return run

    return {name: part(name) for name in ("sysmonstm", "glances", "node_exporter")}


def _setup(o: CostOptions) -> str:
    return (
        f"All three run at once on this machine: {o.warmup_s:g} s of warm-up, then each "
        f"process tree's CPU (every thread's run time from /proc/PID/task/TID/schedstat, "
        f"read each second) over {o.seconds:g} s, in % of one core; also per "
        f"{o.window_s:g} s window, so the noise shows."
    )


def collector_jobs(ctx: SuiteContext) -> SuiteJobs:
    o = CostOptions().quick() if ctx.quick else CostOptions()
    runs = _session(o)
    glances = monitors.glances_version()
    node = monitors.node_exporter_version()
    jobs = [
        (
            Measurement(
                key="collector.sysmonstm",
                title="Collector CPU at 1 s, default metric set",
                short="collector CPU @1s",
                meaning=f"A real `sysmonstm collector --interval 1` (the metrics domain's "
                "default metric set: CPU total and per core, load, memory, swap, disk I/O "
                "and usage, NICs, process count, temperatures where the host has sensors) "
                "streaming over gRPC to a real `sysmonstm aggregator` (SQLite warm tier), "
                f"beside Glances {glances} and node-exporter {node}. {_setup(o)} The "
                "aggregator's CPU is not the collector's and is given apart. Checked "
                "afterwards: the collector stopped with nothing un-acked and no skipped "
                "tick. Target (issue 6): at most 0.3 % of a core and a tenth of Glances.",
                command=f"{COMMAND}, which runs: {COLLECTOR_COMMAND}",
                unit=UNIT,
                lower_is_better=True,
                peers=("collector.glances", "collector.node_exporter"),
                reference="measured.md: bare psutil loop at 1 s ~0.17 % of a core, 13.5 MB",
                facts=(
                    *_COMMON,
                    ("CPU per thread, % of a core", "threads", ""),
                    ("share of Glances's CPU", "vs_glances", ".3f"),
                    ("share of node-exporter's CPU", "vs_node_exporter", ".3f"),
                    ("the aggregator it streams to, % of a core", "aggregator_pct", ".3f"),
                    ("the aggregator's resident memory, MB", "aggregator_rss_mb", ".1f"),
                    ("whole machine busy meanwhile, % of one core", "host_busy_pct", ".0f"),
                ),
            ),
            runs["sysmonstm"],
        ),
        (
            Measurement(
                key="collector.glances",
                title=f"Glances {glances} (PyPI) web server, polled once a second",
                short="Glances CPU @1s",
                meaning=f"Glances {glances} from its own venv (`make glances-venv`) run as a "
                "user runs it headless: its web server (`glances -w -t 1`), whose REST API "
                "`/api/4/all` a client (`bench.scraper`, its own process) fetches once a "
                "second, as the web UI does; Glances samples everything (process list "
                f"included, its defaults) when asked, at most once per second. {_setup(o)}",
                command=f"{COMMAND}, which runs: {monitors.GLANCES_COMMAND}",
                unit=UNIT,
                lower_is_better=True,
                reference="measured.md: Glances 4.5 at 1 s: --stdout ~1.7 %, TUI ~3.6 %, "
                "web server polled each second ~3.1 % of a core; 49-74 MB",
                facts=(*_COMMON, *_SCRAPED),
            ),
            runs["glances"],
        ),
        (
            Measurement(
                key="collector.node_exporter",
                title=f"prometheus-node-exporter {node} (Debian), scraped once a second",
                short="node-exporter CPU @1s",
                meaning=f"Debian's `prometheus-node-exporter` {node} with its default "
                "collectors, run directly (not as a service), scraped once a second by "
                f"`bench.scraper` (its own process) as Prometheus would. {_setup(o)}",
                command=f"{COMMAND}, which runs: {monitors.NODE_EXPORTER_COMMAND}",
                unit=UNIT,
                lower_is_better=True,
                reference="measured.md: ~0.9 % of a core, 21 MB",
                facts=(*_COMMON, *_SCRAPED),
            ),
            runs["node_exporter"],
        ),
    ]
    return SuiteJobs(jobs, runs=1)
