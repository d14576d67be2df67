"""Fault 1: a three-node NATS JetStream cluster (R3 streams) loses the node the aggregator
publishes through, while collectors stream. Every sample lands in PostgreSQL exactly once,
and a durable bus consumer sees every stored batch."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from sysmonstm.errors import BackendError
from sysmonstm.events.nats_bus import NatsBus
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


def cluster(tmp: Path) -> tuple[dict[str, servers.Spawned], list[int]]:
    ports = [servers.free_port() for _ in range(3)]
    routes = [servers.free_port() for _ in range(3)]
    nodes = {
        f"n{i}": servers.nats_server(
            tmp, ports[i], name=f"n{i}", cluster_port=routes[i], routes=routes[:i] + routes[i + 1 :]
        )
        for i in range(3)
    }
    return nodes, ports


async def ready(bus: NatsBus) -> None:
    """A new cluster elects its JetStream leaders within seconds: publish until it works."""
    async with asyncio.timeout(60):
        while True:
            try:
                await bus.publish("metrics.warmup", {})
            except BackendError:
                await asyncio.sleep(0.5)
            else:
                return


async def test_losing_a_nats_node_loses_no_sample_and_doubles_none(
    tmp_path: Path, pg_dsn: str
) -> None:
    nodes, ports = cluster(tmp_path / "nats")
    for node in nodes.values():
        await asyncio.to_thread(node.start)
    prefix = servers.unique("FAULT").upper()
    params = f"stream_prefix={prefix}&replicas=3&publish_timeout=60s&ack_wait=5s"
    everyone = ",".join(f"127.0.0.1:{p}" for p in ports)
    watcher = NatsBus(f"nats://{everyone}?{params}")
    await watcher.start()
    seen: set[tuple[str, int]] = set()
    try:
        await ready(watcher)
        audit = await watcher.subscribe("metrics.>", durable="audit")

        async def consume() -> None:
            async for env in audit:
                if env.topic != "metrics.warmup":
                    seen.add((env.payload["source"], env.payload["seq"]))

        consumer = asyncio.create_task(consume())
        # the aggregator reaches the cluster through n0 first; n0 is the node that dies
        order = ",".join(f"127.0.0.1:{p}" for p in ports)
        grpc = f"127.0.0.1:{free_port()}"
        agg = start_aggregator(
            tmp_path, "agg", grpc, warm__url=pg_dsn, bus__url=f"nats://{order}?{params}"
        )
        fleet = start_collectors(tmp_path, [grpc], 2, prefix="natsloss")
        try:

            async def each_has(n: int) -> bool:
                return all([len(await stored_rows(pg_dsn, m)) >= n for m in fleet.procs])

            await wait_until(lambda: each_has(15), 60, "first samples")
            before = max([len(await stored_rows(pg_dsn, m)) for m in fleet.procs])
            await asyncio.to_thread(nodes["n0"].send, signal.SIGKILL)
            await wait_until(lambda: each_has(before + 40), 90, "samples after the node loss")
        finally:
            fleet.stop()
            assert stop(agg) == 0, agg.text()[-3000:]
        stored: set[tuple[str, int]] = set()
        for machine in fleet.procs:
            rows = await stored_rows(pg_dsn, machine)
            check_exactly_once(rows)
            stored |= {(machine, seq) for seq, _ in rows}

        async def all_seen() -> bool:
            return stored <= seen

        await wait_until(all_seen, 60, "every stored batch on the bus")
        assert seen == stored, "the bus carried a batch that was never stored"
        consumer.cancel()
        await audit.close()
    finally:
        await watcher.close()
        for node in nodes.values():
            node.stop()
