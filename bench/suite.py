"""What a suite module hands ``python -m bench``: its jobs, and how it was asked to run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.model import Measurement, Run
from bench.pg import PgServer

RunFn = Callable[[Path, int], Run]


@dataclass(frozen=True, slots=True)
class SuiteContext:
    """What every suite may use: resources that live as long as the suite (``stack``), a
    scratch directory, whether this is a ``--quick`` smoke run, and the PostgreSQL server
    (``None`` unless the suite is one of ``PG_SUITES``)."""

    stack: contextlib.ExitStack
    workdir: Path
    quick: bool
    pg: PgServer | None = None


@dataclass(frozen=True, slots=True)
class SuiteJobs:
    """A suite's measurements with their run functions. ``runs`` overrides the run count
    for the suite (a 60 s side-by-side measurement taken once, say); ``None`` keeps
    ``--runs`` (3 by default)."""

    jobs: list[tuple[Measurement, RunFn]]
    runs: int | None = None
