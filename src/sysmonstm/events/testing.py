"""Test helpers shipped with the API: capture what a component publishes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from sysmonstm.events.bus import Bus, Subscription
from sysmonstm.events.envelope import Envelope


class Capture:
    """Collects every envelope matching a pattern into ``events``, in the background."""

    def __init__(self, sub: Subscription) -> None:
        self.events: list[Envelope] = []
        self._sub = sub
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    @classmethod
    async def start(cls, bus: Bus, pattern: str) -> Capture:
        return cls(await bus.subscribe(pattern))

    async def _run(self) -> None:
        async for env in self._sub:
            self.events.append(env)
            self._changed.set()

    async def wait_for(
        self,
        predicate: Callable[[Envelope], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's convenience
    ) -> Envelope:
        """The first captured envelope satisfying ``predicate``, waiting up to ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                for env in self.events:
                    if predicate(env):
                        return env
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self._sub.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
