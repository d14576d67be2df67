"""The ``rules`` suite: 1,000 rules over the ingest stream (issue 6, target 8).

Each run is one process, ``bench.rules_drive`` (read it for what is in the loop): the real
rule service of ``sysmonstm up`` on the in-process bus, fed the aggregator's bus payloads.
``rules.0`` is the ceiling: the same service and stream with a book whose one rule reaches
no observation, so each message is still taken off the bus, extracted into observations
and planned, and nothing is evaluated. ``rules.1000`` is the highest paced rate, from 500k
samples/s and rungs just under the capacity measured in the same run, at which the service
kept up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import rules_drive
from bench.model import Measurement, Run
from bench.procs import PYTHON, Children, child_env
from bench.suite import RunFn, SuiteContext, SuiteJobs

COMMAND = "python -m bench --only rules"
TARGET = 500_000.0
RUNG_S = "2"
_WHAT = (
    "The real rule service as `sysmonstm up` runs it (`Core.open`: in-process bus, SQLite "
    "warm tier with synchronous=FULL; `serve_rules`), in its own process "
    "(`bench.rules_drive`); in the same event loop, a publisher puts the aggregator's bus "
    "payload (`bus_payload`: one frame x 100 series of one host) on `metrics.<machine>` for "
    "100 hosts in turn, frames 1 s apart in sample time however fast they go (so `for` and "
    "windows span as many samples as on a fleet); values are walks around each host's "
    "levels, a few hosts running hot (`bench.rules_stream`). Transitions are kept in the "
    "warm tier, logged (JSON) and published on `alerts.*`, where a subscriber takes them. "
    "Not in the loop: gRPC ingest, validation and storage of the samples (the aggregator's "
    "part, measured by the pipeline suites), another process or a network bus."
)
_BOOK = (
    "The book (`bench.rules_book`): the metrics domain's 6 shipped rules; 94 fleet-wide rules "
    "(per rack: `avg` windows with `for`, thresholds with hysteresis, `sum` bursts, `max` "
    "temperatures, silence; per mount, core and NIC; a `rate` of disk growth; a `count`); "
    '100 host-group rules (`where = { host = "bench-01?.bench" }`, ten tiers); 800 per-host '
    "rules (topic `metrics.<machine>`, 8 overrides each). About 109 rule evaluations per "
    "message."
)


def _args(data: Path, book: str, seed: int, quick: bool) -> list[str]:
    if quick:
        phases = ["--warm-s", "0.3", "--capacity-s", "1", "--rung-s", "1"]
    else:
        phases = ["--warm-s", "0.7", "--capacity-s", "1.5", "--rung-s", RUNG_S]
    args = ["--data", str(data), "--book", book, "--seed", str(seed), *phases]
    if book == "full":
        args += ["--rates", str(int(TARGET))] + ([] if quick else ["--adapt"])
    return args


def _drive(workdir: Path, book: str, seed: int, quick: bool) -> dict[str, Any]:
    data = workdir / "data"
    data.mkdir()
    argv = [PYTHON, "-m", "bench.rules_drive", *_args(data, book, seed, quick)]
    env = child_env(SYSMONSTM_CONFIG=str(data / "absent.toml"))
    with Children(workdir) as kids:
        drive = kids.start(f"rules-{book}", argv, env)
        drive.wait(300.0)
        return drive.wait_json("rules done")


def _ladder(rungs: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{r['rate'] / 1000:.0f}k/s {'held' if r['held'] else 'not held'} "
        f"(achieved {r['achieved'] / 1000:.0f}k, p99 lag {r['lag_p99_ms']:.0f} ms)"
        for r in rungs
    )


def ceiling_run(workdir: Path, seed: int, quick: bool) -> Run:
    out = _drive(workdir, "idle", seed, quick)
    extra = {"cpu_cores": out["capacity_cpu_cores"], "per_core": out["capacity_per_core"]}
    return Run(out["capacity"], out["capacity_samples"], out["capacity_seconds"], extra)


def book_run(workdir: Path, seed: int, quick: bool) -> Run:
    out = _drive(workdir, "full", seed, quick)
    rungs = out["rungs"]
    held = [r for r in rungs if r["held"]]
    best = max(held, key=lambda r: r["rate"]) if held else None
    at = rungs[0]
    alerts = at["alerts"]
    extra = {
        "capacity": out["capacity"],
        "cpu_cores": out["capacity_cpu_cores"],
        "per_core": out["capacity_per_core"],
        "gc_ms": at["gc_ms"],
        "gc_max_ms": at["gc_max_ms"],
        "held_at_target": "yes" if at["held"] else "no",
        "achieved_at_target": at["achieved"],
        "lag_p50_ms": at["lag_p50_ms"],
        "lag_p99_ms": at["lag_p99_ms"],
        "lag_max_ms": at["lag_max_ms"],
        "firing_per_s": at["alerts_per_s"],
        "transitions": sum(alerts.values()),
        "transition_mix": ", ".join(f"{k} {v}" for k, v in sorted(alerts.items())),
        "rules_fired": at["rules_fired"],
        "ladder": _ladder(rungs),
        "engine": out["stats"],
    }
    if best is None:
        return Run(0.0, at["samples"], at["seconds"], extra)
    return Run(best["achieved"], best["samples"], best["seconds"], extra)


def rules_jobs(ctx: SuiteContext) -> SuiteJobs:
    quick = ctx.quick
    rung = "1" if quick else RUNG_S
    jobs: list[tuple[Measurement, RunFn]] = [
        (
            Measurement(
                key="rules.0",
                title="Rule service ceiling: the stream, no rule reached",
                short="rules: stream, 0 rules reached",
                meaning=f"{_WHAT} The book holds one rule on a field the stream never "
                "carries: every message is taken off the bus, turned into observations by the "
                "metrics extractor (24 per message) and planned, and no rule is evaluated. "
                "Unpaced: the publisher blocks whenever the subscription's queue (10,000 "
                "messages) is full; the rate is what the service took, after a warm-up.",
                command=f"{COMMAND}, which runs: python -m bench.rules_drive --book idle",
                facts=(
                    ("CPU of the process (service and publisher), cores", "cpu_cores", ".2f"),
                    ("the rate per core of CPU used", "per_core", "rate"),
                ),
            ),
            lambda d, seed: ceiling_run(d, seed, quick),
        ),
        (
            Measurement(
                key="rules.1000",
                title="1,000 rules: highest rate the rule service keeps up with",
                short="rules: 1,000 rules, kept up",
                meaning=f"{_WHAT} {_BOOK} After a warm-up and an unpaced phase (the "
                f"capacity, below), paced rungs of {rung} s each: {TARGET:,.0f} samples/s "
                "first, then just under the capacity (0.9x, then 0.63x if that did not "
                "hold). Lag per message: from when the schedule had it published to when "
                "the service asked for the next one (evaluated, transitions handed on). A "
                f"rung holds when the publisher kept {rules_drive.PACE_HELD:.0%} of its pace "
                f"and the p99 lag stayed under {rules_drive.LAG_HELD_MS:g} ms. The figure is "
                "the rate achieved at the highest rung that held (0 if none).",
                command=f"{COMMAND}, which runs: python -m bench.rules_drive --book full "
                f"--rates {TARGET:.0f} --adapt",
                ceilings=("rules.0",),
                facts=(
                    ("unpaced capacity, samples/s", "capacity", "rate"),
                    ("CPU of the process in the unpaced phase, cores", "cpu_cores", ".2f"),
                    ("unpaced capacity per core of CPU used, samples/s", "per_core", "rate"),
                    ("kept up at 500k samples/s", "held_at_target", ""),
                    ("achieved at 500k samples/s, samples/s", "achieved_at_target", "rate"),
                    ("lag at 500k samples/s, p50 ms", "lag_p50_ms", ".0f"),
                    ("lag at 500k samples/s, p99 ms", "lag_p99_ms", ".0f"),
                    ("lag at 500k samples/s, max ms", "lag_max_ms", ".0f"),
                    ("alerts fired at 500k samples/s, per second", "firing_per_s", ".1f"),
                    ("transitions at 500k samples/s", "transition_mix", ""),
                    ("rules that fired at 500k samples/s", "rules_fired", ".0f"),
                    ("garbage collection at 500k samples/s, ms in total", "gc_ms", ".0f"),
                    ("garbage collection at 500k samples/s, longest pause ms", "gc_max_ms", ".0f"),
                    ("the ladder", "ladder", ""),
                    ("engine afterwards", "engine", ""),
                ),
            ),
            lambda d, seed: book_run(d, seed, quick),
        ),
    ]
    return SuiteJobs(jobs)
