"""The rule book of the ``rules`` suite: 1,000 rules a fleet's operators could have written.

Three layers, as rule books grow on real fleets (the shipped defaults come first):

- fleet-wide rules (``metrics.>``): the metrics domain's shipped rules; per rack (label
  ``rack``) averages, ``for`` thresholds, burst sums, temperature maxima and silence
  (``absent``); per mount, per core and per NIC rules; a reporting-rate ``count``; a few
  rules for environments this fleet does not have (they select nothing);
- host-group rules (``metrics.>`` with ``where = { host = "bench-01*" }``): ten groups of ten
  hosts, ten rules each, as tiers (web, db ...) get their own thresholds;
- per-host rules (topic ``metrics.<machine>``): eight overrides for every host, thresholds
  drawn around what that kind of host runs at.

Thresholds sit in the upper tail of ``bench.rules_stream``'s values, so most groups stay
quiet and a few per cent of them fire now and then. The book is the same on every run
(``BOOK_SEED``); only the stream changes with the run's seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from bench.rules_stream import RACKS
from bench.workload import machine_id

BOOK_SEED = 6
DEFAULTS = Path(__file__).resolve().parents[1] / "src/sysmonstm/domains/metrics/rules.toml"
MOUNTS = ("/", "/home", "/var")
NICS = ("eth0", "eth1")
DISKS = ("nvme0n1", "sda", "sdb")
_GIB = 2**30


def _value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(v)


def rule(name: str, **keys: Any) -> str:
    """One ``[[rule]]`` table; ``for_`` stands for ``for``, ``avg=60`` for an avg window."""
    lines = ["[[rule]]", f"name = {json.dumps(name)}"]
    keys.setdefault("topic", "metrics.>")
    for agg in ("avg", "min", "max", "sum", "count", "rate"):
        if agg in keys:
            keys["window"] = {"agg": agg, "seconds": keys.pop(agg)}
    for key, v in keys.items():
        lines.append(f"{key.rstrip('_')} = {_value(v)}")
    return "\n".join(lines) + "\n"


def _racks() -> list[str]:
    out = []
    for r in range(RACKS):
        sel = {"where": {"label.rack": f"r{r}"}, "labels": {"rack": f"r{r}"}}
        out += [
            rule(
                f"r{r}_cpu_avg_high",
                field="cpu.used",
                op="gt",
                threshold=85,
                clear=80,
                avg=300,
                for_=60,
                **sel,
            ),
            rule(
                f"r{r}_mem_critical",
                field="mem.used_pct",
                op="gt",
                threshold=95,
                clear=90,
                for_=120,
                severity="critical",
                **sel,
            ),
            rule(
                f"r{r}_load_high", field="load.5", op="gt", threshold=14, clear=12, for_=120, **sel
            ),
            rule(f"r{r}_swapping", field="swap.used_pct", op="gt", threshold=65, for_=300, **sel),
            rule(
                f"r{r}_rx_error_burst",
                field="net.rx_errors_ps",
                op="gt",
                threshold=150,
                sum=60,
                message="{key}: {value:.0f} rx errors in a minute",
                **sel,
            ),
            rule(
                f"r{r}_temp_max",
                field="temp.celsius",
                op="gt",
                threshold=92,
                clear=85,
                max=120,
                message="{host} {label} at {value:.0f} C",
                **sel,
            ),
            rule(f"r{r}_iowait", field="cpu.iowait", op="gt", threshold=30, avg=120, **sel),
            rule(
                f"r{r}_write_iops", field="disk.write_iops", op="gt", threshold=1200, avg=60, **sel
            ),
            rule(
                f"r{r}_host_silent",
                field="cpu.used",
                op="absent",
                absent_for=60,
                group_by=["source"],
                severity="critical",
                **sel,
            ),
        ]
    return out


def _fleet() -> list[str]:
    out = _racks()
    for m in MOUNTS:
        token = m.strip("/") or "root"
        out += [
            rule(
                f"disk_{token}_critical",
                field="disk.used_pct",
                op="gt",
                threshold=96,
                for_=60,
                where={"mount": m},
                severity="critical",
            ),
            rule(
                f"disk_{token}_filling",
                field="disk.used_bytes",
                op="gt",
                threshold=8e6,
                rate=300,
                where={"mount": m},
                message="{mount} on {host} grows {value:.0f} B/s",
            ),
        ]
    out += [
        rule("core_pegged", field="cpu.core.used", op="gt", threshold=99, for_=60),
        rule("core_iowait", field="cpu.core.iowait", op="gt", threshold=35, avg=60),
        rule("core_never_idle", field="cpu.core.idle", op="lt", threshold=1, max=60),
        rule("net_drops", field="net.tx_drops_ps", op="gt", threshold=800, sum=60),
        rule("net_rx_errors_steady", field="net.rx_errors_ps", op="gt", threshold=0, for_=30),
        rule("proc_many", field="proc.count", op="gt", threshold=880, for_=60),
        rule("load1_spike", field="load.1", op="gt", threshold=22, max=60),
        rule(
            "mem_available_low", field="mem.available_bytes", op="lt", threshold=9 * _GIB, for_=60
        ),
        rule(
            "cpu_reporting_gaps",
            field="cpu.used",
            op="lt",
            threshold=45,
            count=60,
            group_by=["source"],
            severity="info",
        ),
    ]
    out.append(
        rule(
            "package_hot",
            field="temp.celsius",
            op="gt",
            threshold=95,
            for_=30,
            where={"label": "Package id *"},
            severity="critical",
        )
    )
    for n in NICS:
        out += [
            rule(
                f"{n}_rx_saturated",
                field="net.rx_bps",
                op="gt",
                threshold=9e8,
                avg=60,
                where={"nic": n},
            ),
            rule(
                f"{n}_tx_saturated",
                field="net.tx_bps",
                op="gt",
                threshold=9e8,
                avg=60,
                where={"nic": n},
            ),
        ]
    for env in ("prod", "staging"):
        out.append(
            rule(
                f"{env}_cpu_high",
                field="cpu.used",
                op="gt",
                threshold=75,
                for_=120,
                where={"label.env": env},
            )
        )
    return out


def _host_groups(rng: random.Random) -> list[str]:
    out = []
    for g in range(10):
        sel = {"where": {"host": f"bench-0{g}?.bench"}, "labels": {"tier": f"tier{g}"}}
        mount = rng.choice(MOUNTS)
        out += [
            rule(
                f"g{g}_cpu_high",
                field="cpu.used",
                op="gt",
                threshold=rng.choice((85, 90)),
                clear=75,
                for_=120,
                **sel,
            ),
            rule(
                f"g{g}_mem_high",
                field="mem.used_pct",
                op="gt",
                threshold=rng.choice((92, 94)),
                for_=60,
                **sel,
            ),
            rule(
                f"g{g}_disk_full",
                field="disk.used_pct",
                op="gt",
                threshold=93,
                clear=90,
                where={**sel["where"], "mount": mount},
                labels=sel["labels"],
            ),
            rule(f"g{g}_load", field="load.15", op="gt", threshold=rng.choice((12, 15)), **sel),
            rule(f"g{g}_temp", field="temp.celsius", op="gt", threshold=90, max=60, **sel),
            rule(f"g{g}_tx_busy", field="net.tx_bps", op="gt", threshold=7e8, avg=60, **sel),
            rule(
                f"g{g}_procs",
                field="proc.count",
                op="between",
                threshold=[880, 5000],
                for_=30,
                **sel,
            ),
            rule(f"g{g}_core_busy", field="cpu.core.used", op="gt", threshold=90, avg=60, **sel),
            rule(f"g{g}_swap", field="swap.used_pct", op="gte", threshold=70, **sel),
            rule(f"g{g}_read_bps", field="disk.read_bps", op="gt", threshold=2e8, avg=60, **sel),
        ]
    return out


def _per_host(rng: random.Random, host: int) -> list[str]:
    mid = machine_id(host)
    sel = {"topic": f"metrics.{mid}", "labels": {"owner": f"team{host % 12}"}}
    t = mid.replace("-", "_")
    cpu = rng.choice((85, 90, 95))
    return [
        rule(
            f"{t}_cpu",
            field="cpu.used",
            op="gt",
            threshold=cpu,
            clear=cpu - 10,
            for_=rng.choice((30, 60, 120, 300)),
            **sel,
        ),
        rule(
            f"{t}_mem",
            field="mem.used_pct",
            op="gt",
            threshold=rng.choice((90, 95, 97)),
            for_=60,
            **sel,
        ),
        rule(
            f"{t}_disk",
            field="disk.used_pct",
            op="gt",
            threshold=rng.choice((90, 94)),
            where={"mount": rng.choice(MOUNTS)},
            **sel,
        ),
        rule(
            f"{t}_load",
            field="load.15",
            op="gt",
            threshold=rng.choice((10, 14, 16)),
            avg=300,
            **sel,
        ),
        rule(
            f"{t}_rx",
            field="net.rx_bps",
            op="gt",
            threshold=rng.choice((5e8, 8e8)),
            avg=60,
            where={"nic": rng.choice(NICS)},
            **sel,
        ),
        rule(
            f"{t}_temp",
            field="temp.celsius",
            op="gt",
            threshold=rng.choice((85, 90)),
            max=60,
            **sel,
        ),
        rule(
            f"{t}_core",
            field="cpu.core.used",
            op="gt",
            threshold=97,
            for_=60,
            where={"cpu": str(rng.randrange(8))},
            **sel,
        ),
        rule(
            f"{t}_writes",
            field="disk.write_bps",
            op="gt",
            threshold=rng.choice((5e7, 1e8)),
            avg=120,
            where={"disk": rng.choice(DISKS)},
            **sel,
        ),
    ]


def rule_book(count: int = 1000, hosts: int = 100) -> str:
    """``count`` rules as one TOML file: the shipped defaults, fleet, host groups, per host."""
    rng = random.Random(BOOK_SEED)
    tables = DEFAULTS.read_text(encoding="utf-8").split("[[rule]]")[1:]
    out = [f"[[rule]]{t}" for t in tables] + _fleet() + _host_groups(rng)
    for host in range(hosts):
        out += _per_host(rng, host)
    if len(out) < count:
        raise ValueError(f"the book has only {len(out)} rules")
    return "\n".join(out[:count])


def idle_book() -> str:
    """The ceiling's book: one rule on a field the stream never carries. The service
    subscribes, decodes and extracts every message as with the full book; the engine finds
    no rule for any observation."""
    return rule("never_matches", field="no.such.metric", op="gt", threshold=0)
