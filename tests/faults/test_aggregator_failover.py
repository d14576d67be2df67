"""Fault 4: one of two aggregators is killed; its collectors fail over to the other, and the
shared warm tier (PostgreSQL) holds every sample once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.processes import stop
from tests.faults.support import (
    check_exactly_once,
    start_aggregator,
    start_collectors,
    stored_rows,
    wait_until,
)

pytestmark = pytest.mark.e2e


async def test_killing_one_of_two_aggregators_loses_nothing_and_doubles_nothing(
    tmp_path: Path, pg_dsn: str
) -> None:
    a, b = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    agg_a = start_aggregator(tmp_path, "agg-a", a, warm__url=pg_dsn)
    agg_b = start_aggregator(tmp_path, "agg-b", b, warm__url=pg_dsn)
    fleet = start_collectors(tmp_path, [a, b], 3, prefix="failover")
    try:

        async def each_has(n: int) -> bool:
            return all([len(await stored_rows(pg_dsn, m)) >= n for m in fleet.procs])

        await wait_until(lambda: each_has(10), 60, "first samples through aggregator A")
        before = {m: len(await stored_rows(pg_dsn, m)) for m in fleet.procs}
        stop(agg_a, signal.SIGKILL)
        await wait_until(
            lambda: each_has(max(before.values()) + 25), 60, "samples through aggregator B"
        )
    finally:
        fleet.stop()
        assert stop(agg_b) == 0, agg_b.text()[-2000:]
    for machine in fleet.procs:
        check_exactly_once(await stored_rows(pg_dsn, machine))
    assert "streaming to aggregator" in fleet.procs["failover-0"].text()
    assert b in fleet.procs["failover-0"].text(), "the collector never moved to aggregator B"
