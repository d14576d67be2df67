"""The ``rules`` suite: 1,000 rules over the ingest stream (issue 6, target 8)."""

from __future__ import annotations

from bench.suite import SuiteContext, SuiteJobs


def rules_jobs(ctx: SuiteContext) -> SuiteJobs:
    return SuiteJobs([])
