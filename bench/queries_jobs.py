"""The ``queries`` suite: series and fleet queries on 30 days of 100 hosts (issue 6, #5)."""

from __future__ import annotations

from bench.suite import SuiteContext, SuiteJobs


def queries_jobs(ctx: SuiteContext) -> SuiteJobs:
    return SuiteJobs([])
