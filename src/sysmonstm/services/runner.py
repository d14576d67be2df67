"""Run one async service until SIGTERM or SIGINT, then let it shut down cleanly."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


def run_until_signalled(service: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``service(stop)``; SIGTERM or SIGINT sets ``stop`` (the service flushes what it
    holds and returns). A second SIGINT a while later (an impatient Ctrl-C) interrupts at once;
    a signal repeated within a second (make or a shell passing it on) counts once."""

    # Everything imported by now lives as long as the process: take it out of the collector's
    # reach, and collect the young generation less often. A full collection over the
    # imported heap paused the event loop for 50-250 ms (fleet overview p99, rule lag).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        first: list[float] = []

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():
                if sig is signal.SIGINT and loop.time() - first[0] > 1.0:
                    raise KeyboardInterrupt
                return
            first.append(loop.time())
            log.info("stopping", signal=sig.name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        await service(stop)

    asyncio.run(main())
