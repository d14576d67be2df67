"""The metrics collector: sample this host on a fixed schedule, spool, stream.

Each tick samples the host (``HostSampler``), appends one frame to a ``MetricBatch``, and
once the batch holds ``batch_frames`` frames (or the set of series changed) serializes it
into the spool under the spool's next sequence. A ``StreamSender`` ships the spool to the
aggregators and frees it on acks, so an absent aggregator costs disk, not data.

It runs all day on every machine, so its CPU is a budget (issue 6: at most 0.3 % of a core
at 1 s; ``python -m bench --only collector`` measures it): a sample that only reads
counters runs on the event loop, since handing it to a worker thread and back costs about
as much again as reading ``/proc``; one that may block (statvfs, sensors) goes to a thread.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from sysmonstm.config import Settings
from sysmonstm.domains.metrics.sampler import HostSampler
from sysmonstm.errors import ConfigError
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.source import BacklogWatch, ClientTls, resolve_machine_id
from sysmonstm.transport.spool import MB, Spool
from sysmonstm.transport.tls import channel_credentials
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.metrics_pb2 import MetricBatch, MetricFrame

log = structlog.get_logger(__name__)

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"
MIN_INTERVAL_S = 0.1
# How often the spool's acked mark is rewritten (two fsyncs) while the aggregator keeps up.
# After a crash the collector resends what was acked since; the aggregator drops those
# batches as already stored, so a rarer mark costs a few resent KB, not data.
ACK_MARK_EVERY_S = 30.0


@dataclass(frozen=True)
class CollectorOptions:
    """What a collector needs; validated on creation (``ConfigError``)."""

    aggregators: tuple[str, ...]
    spool_dir: Path
    interval_s: float = 1.0
    spool_max_bytes: int = 100 * MB
    machine_id: str | None = None  # default: /etc/machine-id, else one kept in spool_dir
    hostname: str | None = None  # default: socket.gethostname()
    labels: Mapping[str, str] = field(default_factory=dict)
    tls: ClientTls | None = None  # None: plaintext
    batch_frames: int = 1
    stop_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.aggregators:
            raise ConfigError("collector: at least one aggregator address is needed")
        if not math.isfinite(self.interval_s) or self.interval_s < MIN_INTERVAL_S:
            raise ConfigError(f"collector: interval_s must be at least {MIN_INTERVAL_S}")
        if self.batch_frames < 1:
            raise ConfigError("collector: batch_frames must be at least 1")
        if self.spool_max_bytes <= 0:
            raise ConfigError("collector: spool_max_bytes must be positive")


def collector_options(settings: Settings, aggregators: tuple[str, ...]) -> CollectorOptions:
    """The collector of ``settings`` (its ``collector`` section), streaming to ``aggregators``."""
    c = settings.collector
    assert c.spool_dir is not None
    tls = None
    if c.tls.ca or c.tls.cert:
        tls = ClientTls(ca=c.tls.ca, cert=c.tls.cert, key=c.tls.key)
    return CollectorOptions(
        aggregators=aggregators,
        spool_dir=c.spool_dir,
        interval_s=c.interval_s,
        spool_max_bytes=c.spool_max_bytes,
        machine_id=c.machine_id,
        hostname=c.hostname,
        labels=dict(c.labels),
        tls=tls,
        batch_frames=c.batch_frames,
    )


class BatchBuilder:
    """Collects frames for one source and writes them into its spool as ``MetricBatch``es."""

    def __init__(
        self, source: SourceIdentity, spool: Spool, interval_s: float, frames_per_batch: int = 1
    ) -> None:
        self.source = source
        self.spool = spool
        self.interval_ms = round(interval_s * 1000)
        self.frames_per_batch = frames_per_batch
        self._series: tuple[str, ...] = ()
        self._frames: list[MetricFrame] = []

    def add(self, series: Sequence[str], values: Sequence[float], time_unix_ms: int) -> None:
        """Add one frame; a batch is spooled when full or when the series set changes."""
        series = tuple(series)
        if self._frames and series != self._series:
            self.flush()
        self._series = series
        self._frames.append(MetricFrame(time_unix_ms=time_unix_ms, values=values))
        if len(self._frames) >= self.frames_per_batch:
            self.flush()

    def flush(self) -> None:
        """Spool the frames held, if any."""
        if not self._frames:
            return
        batch = MetricBatch(
            source=self.source,
            sequence=self.spool.next_sequence(),
            series=self._series,
            frames=self._frames,
            interval_ms=self.interval_ms,
        )
        self._frames = []
        self.spool.append(batch.sequence, batch.SerializeToString())


async def ticks(interval_s: float, stop: asyncio.Event) -> AsyncIterator[int]:
    """Yield the number of each tick until ``stop`` is set.

    Ticks fall on wall-clock multiples of the interval (so hosts sample together) and are
    then scheduled on the monotonic clock from one origin, so they never drift. A tick more
    than a whole interval late is skipped, not fired in a burst.
    """
    loop = asyncio.get_running_loop()
    wall = time.time()
    origin = loop.time() + (math.ceil(wall / interval_s) * interval_s - wall)
    n = 0
    # one waiter for the whole run: wait_for(stop.wait()) would make and cancel a task a tick
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            delay = origin + n * interval_s - loop.time()
            if delay > 0:
                await asyncio.wait((stopped,), timeout=delay)
                if stop.is_set():
                    return
            yield n
            due = math.floor((loop.time() - origin) / interval_s)  # the latest tick now due
            if due > n + 1:
                log.warning("sampling fell behind; skipping ticks", skipped=due - n - 1)
            n = max(n + 1, due)
    finally:
        stopped.cancel()


def make_sender(
    spool: Spool, aggregators: Sequence[str], tls: ClientTls | None, stop_grace_s: float = 5.0
) -> StreamSender:
    """A ``StreamSender`` of metric batches to ``aggregators``."""
    creds = None if tls is None else channel_credentials(tls.ca, tls.cert, tls.key)
    return StreamSender(
        spool,
        aggregators,
        METHOD,
        credentials=creds,
        options=SenderOptions(stop_grace_s=stop_grace_s),
    )


async def run_collector(opts: CollectorOptions, stop: asyncio.Event) -> None:
    """Sample, spool and stream until ``stop`` is set; then flush and drain briefly."""
    machine_id = resolve_machine_id(opts.machine_id, opts.spool_dir)
    source = SourceIdentity(
        machine_id=machine_id,
        hostname=opts.hostname or socket.gethostname(),
        labels=dict(opts.labels),
    )
    spool = Spool(opts.spool_dir, max_bytes=opts.spool_max_bytes, mark_every_s=ACK_MARK_EVERY_S)
    sender = make_sender(spool, opts.aggregators, opts.tls, opts.stop_grace_s)
    builder = BatchBuilder(source, spool, opts.interval_s, opts.batch_frames)
    sampler = HostSampler()
    backlog = BacklogWatch(spool, opts.interval_s)
    log.info(
        "collector started",
        machine_id=machine_id,
        hostname=source.hostname,
        aggregators=list(opts.aggregators),
        interval_s=opts.interval_s,
        pending=spool.pending_count,
    )
    sending = asyncio.create_task(sender.run())
    try:
        await asyncio.to_thread(sampler.sample)  # primes the counters rates are made of
        async for _ in ticks(opts.interval_s, stop):
            if sampler.may_block():
                series, values = await asyncio.to_thread(sampler.sample)
            else:
                series, values = sampler.sample()
            builder.add(series, values, time.time_ns() // 1_000_000)
            backlog.check()
            if sending.done():
                sending.result()  # the sender only ends by a bug: raise it here
        builder.flush()
    finally:
        sender.stop()
        await sending
        spool.close()
        log.info(
            "collector stopped",
            acked=spool.acked,
            pending=spool.pending_count,
            dropped=spool.dropped,
        )
