"""The ``collector`` suite: collector CPU cost beside Glances and node-exporter (issue 6, #3)."""

from __future__ import annotations

from bench.suite import SuiteContext, SuiteJobs


def collector_jobs(ctx: SuiteContext) -> SuiteJobs:
    return SuiteJobs([])
