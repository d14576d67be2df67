"""``sysmonstm up``: aggregator, rules, gateway and a collector of this machine in one process.

Runs on whatever the settings name; by default the embedded parts (in-process bus, memory
hot tier, SQLite under the XDG data directory). Shutdown runs in flow order: the collectors
stop sampling first, then the gateway and the rules, then the aggregator writes what it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from sysmonstm.config import Settings
from sysmonstm.domains.metrics.collector import collector_options, run_collector
from sysmonstm.gateway.server import serve_gateway
from sysmonstm.redact import redact
from sysmonstm.runtime import Core
from sysmonstm.services.aggregator import serve_aggregator
from sysmonstm.services.rules import serve_rules

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class UpOptions:
    demo_hosts: int = 0
    collect: bool = True


def dial_address(listen: str) -> str:
    """Where a local client reaches a server listening on ``listen`` (0.0.0.0 → loopback)."""
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 - we map the wildcard away
        host = "127.0.0.1"
    return f"{host}:{port}"


async def run_up(
    settings: Settings,
    stop: asyncio.Event,
    options: UpOptions | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run everything until ``stop``; ``on_ready(dashboard_url)`` once it all listens."""
    opts = options or UpOptions()
    core = await Core.open(settings)
    stop_agg, stop_rules, stop_gw, stop_src = (asyncio.Event() for _ in range(4))
    tasks: list[asyncio.Task[object]] = []
    try:
        started = asyncio.Event()
        tasks.append(asyncio.create_task(serve_aggregator(core, stop_agg, started)))
        await _started(started, tasks[-1])
        rules_started = asyncio.Event()
        tasks.append(asyncio.create_task(serve_rules(core, stop_rules, rules_started)))
        await _started(rules_started, tasks[-1])
        url_box: list[str] = []
        gw_ready = asyncio.Event()

        def ready(url: str) -> None:
            url_box.append(url)
            gw_ready.set()

        tasks.append(asyncio.create_task(serve_gateway(core, stop_gw, on_ready=ready)))
        await _started(gw_ready, tasks[-1])
        address = dial_address(settings.aggregator.listen)
        if opts.collect:
            tasks.append(
                asyncio.create_task(
                    run_collector(collector_options(settings, (address,)), stop_src)
                )
            )
        if opts.demo_hosts:
            from sysmonstm.domains.metrics.demo import run_demo_hosts

            tasks.append(
                asyncio.create_task(
                    run_demo_hosts(
                        opts.demo_hosts,
                        (address,),
                        settings.collector.interval_s,
                        settings.data_dir / "spool" / "demo",
                        stop_src,
                    )
                )
            )
        log.info(
            "sysmonstm is up",
            dashboard=url_box[0],
            grpc=settings.aggregator.listen,
            warm=redact(settings.warm.url),
            bus=redact(settings.bus.url),
            hot=redact(settings.hot.url),
        )
        if on_ready is not None:
            on_ready(url_box[0])
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                log.error("a service failed; shutting down", error=str(task.exception()))
        waiter.cancel()
    finally:
        for event in (stop_src, stop_gw, stop_rules, stop_agg):
            event.set()
            await asyncio.sleep(0)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await core.close()
    failures = [
        r
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    if failures:
        raise failures[0]


async def _started(event: asyncio.Event, task: asyncio.Task[object]) -> None:
    """Wait for ``event``, or surface the task's failure if it dies first."""
    waiter = asyncio.create_task(event.wait())
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if not event.is_set():
        waiter.cancel()
        task.result()
        raise RuntimeError("a service ended before it started")
