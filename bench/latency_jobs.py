"""The ``latency`` suite: sample taken -> visible to a WebSocket client (issue 6, target 2)."""

from __future__ import annotations

from bench.suite import SuiteContext, SuiteJobs


def latency_jobs(ctx: SuiteContext) -> SuiteJobs:
    return SuiteJobs([])
