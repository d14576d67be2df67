"""The aggregator service: a grpc.aio server feeding each domain's pipeline.

Also keeps the warm tier in shape (rollups every few seconds; every hour, retention, after
archiving the partitions it would drop when an archive is configured) and answers the
standard gRPC health service. On stop it refuses new streams, lets open ones finish for a
grace period, and writes everything it queued before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sysmonstm.errors import SysmonstmError
from sysmonstm.runtime import Core, retention_of
from sysmonstm.store.archiving import archive_then_expire
from sysmonstm.store.model import Tier

log = structlog.get_logger(__name__)

ROLLUP_EVERY_S = 5.0
RETENTION_EVERY_S = 3600.0


def _grpc_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


async def _expire(core: Core) -> dict[Tier, int]:
    """Retention at one instant; with an archive, due partitions are archived first and
    retention is skipped while any of them is not (``archive_then_expire``)."""
    now_ms = time.time_ns() // 1_000_000
    if core.archive is None:
        return await core.warm.enforce_retention(now_ms)
    _, dropped = await archive_then_expire(
        core.warm, core.archive, retention_of(core.settings), now_ms
    )
    return dropped or {}


async def maintain_warm(core: Core, stop: asyncio.Event) -> None:
    """Roll up and enforce retention (archiving first, when an archive is configured) until
    ``stop`` is set; failures are logged, not fatal."""
    last_retention = -math.inf  # the first pass runs at once (monotonic time may be < 1 h)
    while not stop.is_set():
        try:
            await core.warm.rollup()
            if time.monotonic() - last_retention >= RETENTION_EVERY_S:
                dropped = await _expire(core)
                last_retention = time.monotonic()
                if any(dropped.values()):
                    log.info(
                        "retention dropped partitions", **{str(k): v for k, v in dropped.items()}
                    )
        except SysmonstmError as exc:
            log.error("warm maintenance failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ROLLUP_EVERY_S)


async def serve_aggregator(
    core: Core, stop: asyncio.Event, started: asyncio.Event | None = None, grace_s: float = 5.0
) -> None:
    """Serve until ``stop`` is set; ``started`` is set once the port is bound."""
    settings = core.settings.aggregator
    ingests = [d.ingest(core) for d in core.domains if d.ingest is not None]
    server = grpc.aio.server(options=_grpc_options(settings.max_message_bytes))
    for ingest in ingests:
        server.add_generic_rpc_handlers(tuple(ingest.handlers))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    tls = settings.tls
    if tls.cert is not None and tls.key is not None:
        from sysmonstm.transport.tls import server_credentials

        port = server.add_secure_port(
            settings.listen, server_credentials(tls.cert, tls.key, tls.ca)
        )
    else:
        port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise SysmonstmError(f"aggregator cannot listen on {settings.listen}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "aggregator listening",
        listen=settings.listen,
        tls="mutual" if tls.ca and tls.cert else ("on" if tls.cert else "off"),
    )
    if started is not None:
        started.set()
    runners = [asyncio.create_task(i.run(), name="pipeline") for i in ingests]
    keeper = asyncio.create_task(maintain_warm(core, stop), name="warm-maintenance")
    try:
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *runners], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopped and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace_s)
        for ingest in ingests:
            ingest.stop()
        await asyncio.gather(*runners, return_exceptions=True)
        stop.set()
        await keeper
        with contextlib.suppress(SysmonstmError):
            await core.warm.rollup()
        log.info("aggregator stopped")
