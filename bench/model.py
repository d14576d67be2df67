"""What a benchmark produces: runs of one measurement, summarised as median and spread."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Run:
    """One run: its rate (``unit``), the work it covered, and extra facts worth keeping."""

    rate: float
    samples: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Measurement:
    """Several runs of the same thing under the same command.

    ``key`` names it for cross-references (``ceiling`` fields); ``ceilings`` lists the keys
    of the measurements of this run its rate is compared with, ``bytes_ceilings`` those its
    bytes per sample are compared with. ``facts`` are further figures from the runs' extras
    worth printing: (label, extra key, format spec); a numeric fact is the median over runs.
    ``peers`` lists measurements of another product in this run (ActivityWatch's server),
    shown as how many times theirs this rate is. A ``unit`` starting with "ms" makes the
    rate a latency in milliseconds (lower is better); ``lower_is_better`` makes any other
    unit (a cost: % of a core) read the same way, with decimals.
    """

    key: str
    title: str
    short: str  # for the terminal table
    meaning: str
    command: str
    unit: str = "samples/s"
    runs: list[Run] = field(default_factory=list)
    ceilings: tuple[str, ...] = ()
    bytes_per_sample: float | None = None
    reference: str = ""  # the figure measured.md gives for the same thing, if any
    bytes_ceilings: tuple[str, ...] = ()
    facts: tuple[tuple[str, str, str], ...] = ()
    peers: tuple[str, ...] = ()
    lower_is_better: bool = False

    @property
    def latency(self) -> bool:
        """Lower is better: a latency ("ms" unit) or a cost (``lower_is_better``)."""
        return self.unit.startswith("ms") or self.lower_is_better

    @property
    def median(self) -> float:
        return statistics.median(r.rate for r in self.runs)

    @property
    def low(self) -> float:
        return min(r.rate for r in self.runs)

    @property
    def high(self) -> float:
        return max(r.rate for r in self.runs)

    def extra_median(self, name: str) -> float | None:
        """The median of a numeric ``extra`` fact over the runs that have it."""
        found = [float(r.extra[name]) for r in self.runs if name in r.extra]
        return statistics.median(found) if found else None

    def fact(self, name: str) -> Any:
        """An ``extra`` fact: the median if numeric, else the first run's value (or None)."""
        found = [r.extra[name] for r in self.runs if r.extra.get(name) is not None]
        if not found:
            return None
        if all(isinstance(v, int | float) for v in found):
            return statistics.median(float(v) for v in found)
        return found[0]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "meaning": self.meaning,
            "command": self.command,
            "unit": self.unit,
            "ceilings": list(self.ceilings),
            "bytes_ceilings": list(self.bytes_ceilings),
            "peers": list(self.peers),
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "bytes_per_sample": self.bytes_per_sample,
            "reference": self.reference,
            "runs": [
                {"rate": r.rate, "samples": r.samples, "seconds": r.seconds, **r.extra}
                for r in self.runs
            ],
        }
