"""Fault 2: PostgreSQL stopped for 20 s while collectors stream. The aggregator holds a
bounded backlog and pushes back on the streams (collectors spool to disk); after PostgreSQL
returns the history has every sample once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests import servers
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


async def test_a_20_s_postgres_outage_loses_nothing_and_doubles_nothing(
    tmp_path: Path, scratch: Path
) -> None:
    pg = servers.postgres_server(scratch / "pg").start()
    grpc = f"127.0.0.1:{free_port()}"
    agg = start_aggregator(tmp_path, "agg", grpc, warm__url=pg.dsn, aggregator__queue_batches="32")
    fleet = start_collectors(tmp_path, [grpc], 2, prefix="pgdown")
    try:

        async def each_has(n: int) -> bool:
            return all([len(await stored_rows(pg.dsn, m)) >= n for m in fleet.procs])

        await wait_until(lambda: each_has(10), 60, "first samples stored")
        pg.stop()
        await asyncio.sleep(20)
        assert agg.popen.poll() is None, "the aggregator must ride out the outage"
        for proc in fleet.procs.values():  # pushed back: the collectors hold the backlog
            proc.wait_log("aggregator is not acknowledging; spooling to disk", timeout=5)
        pg.start()
        produced = 20 / 0.2
        await wait_until(lambda: each_has(int(produced) + 10), 90, "the backlog stored")
        for proc in fleet.procs.values():
            proc.wait_log("backlog delivered", timeout=60)
    finally:
        fleet.stop()
        assert stop(agg) == 0, agg.text()[-2000:]
    assert "store failed; holding the batch and retrying" in agg.text()
    for machine in fleet.procs:
        check_exactly_once(await stored_rows(pg.dsn, machine))
    pg.stop()
