"""Run one async service until SIGTERM or SIGINT, then let it shut down cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


def run_until_signalled(service: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``service(stop)``; the first SIGTERM/SIGINT sets ``stop`` (the service flushes what
    it holds and returns), a second one interrupts at once."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            log.info("stopping", signal=sig.name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        await service(stop)

    asyncio.run(main())
