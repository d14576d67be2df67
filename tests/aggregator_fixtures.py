"""A real aggregator (gRPC server + pipeline + tiers) for tests, in-loop or in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sysmonstm.config import Settings, load_settings
from sysmonstm.runtime import Core
from sysmonstm.services.aggregator import serve_aggregator
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.conftest import free_port


def aggregator_settings(data_dir: Path, **aggregator: Any) -> Settings:
    listen = f"127.0.0.1:{free_port()}"
    return load_settings(
        {"data_dir": str(data_dir), "aggregator": {"listen": listen, **aggregator}}
    )


@asynccontextmanager
async def running_aggregator(settings: Settings) -> AsyncIterator[Core]:
    """An aggregator serving ``settings.aggregator.listen`` in this event loop."""
    core = await Core.open(settings)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_aggregator(core, stop, started, grace_s=0.5))
    try:
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        yield core
    finally:
        stop.set()
        await task
        await core.close()


class ThreadedAggregator:
    """An aggregator on its own event loop in a thread, for synchronous (hypothesis) tests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.address = settings.aggregator.listen
        self.loop = asyncio.new_event_loop()
        self.core: Core | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._error: BaseException | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def body() -> None:
            self._stop = asyncio.Event()
            try:
                async with running_aggregator(self.settings) as core:
                    self.core = core
                    self._ready.set()
                    await self._stop.wait()
            except BaseException as exc:
                self._error = exc
                self._ready.set()

        self.loop.run_until_complete(body())
        self.loop.close()

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> ThreadedAggregator:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@contextmanager
def threaded_aggregator(settings: Settings) -> Iterator[ThreadedAggregator]:
    with ThreadedAggregator(settings) as agg:
        yield agg


def metric_batch(
    machine_id: str,
    seq: int,
    *,
    t_ms: int | None = None,
    series: tuple[str, ...] = ("cpu.used", 'disk.used_pct{mount="/"}'),
    values: list[float] | None = None,
    hostname: str = "",
) -> MetricBatch:
    """A valid one-frame batch."""
    t = t_ms if t_ms is not None else time.time_ns() // 1_000_000
    batch = MetricBatch(
        source=SourceIdentity(
            machine_id=machine_id, hostname=hostname or f"host-{machine_id}", labels={"env": "test"}
        ),
        sequence=seq,
        series=list(series),
        interval_ms=1000,
    )
    vals = values if values is not None else list(np.linspace(1, 2, len(series)))
    batch.frames.add(time_unix_ms=t, values=vals)
    return batch
