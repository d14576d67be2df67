"""The Deskmeter watcher: follow a desktop session, spool its events, stream them.

Wakes on a workspace change (X PropertyNotify, or the wmctrl poll), on input after idleness,
on a task change from the gateway, and when a heartbeat or the idle threshold falls due;
each time the ``Tracker`` decides whether a SWITCH or a HEARTBEAT is due. Every event is
spooled as its own ``DeskBatch`` (sequence from the spool, ``heartbeat_ms`` set) and streamed
by the same ``Spool`` and ``StreamSender`` as the metrics collector, so an absent aggregator
costs disk, not data, and a restart replays what was not acknowledged. A live event goes out
at once, alone; what piles up (a burst, or the backlog of an aggregator that was away) goes
out merged, up to ``MERGE`` events per message (``SenderOptions.merge``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sysmonstm.domains.deskmeter.machine import resolve_machine
from sysmonstm.domains.deskmeter.model import DeskEvent, EventKind, Machine
from sysmonstm.domains.deskmeter.sources import SourceKind, Sources, open_sources
from sysmonstm.domains.deskmeter.taskfeed import CurrentTask, follow_tasks
from sysmonstm.domains.deskmeter.tracker import Tracker
from sysmonstm.domains.deskmeter.validate import DeskLimits
from sysmonstm.errors import ConfigError
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.source import BacklogWatch, ClientTls
from sysmonstm.transport.spool import MB, Spool
from sysmonstm.transport.tls import channel_credentials
from sysmonstm.v1 import deskmeter_pb2 as pb
from sysmonstm.v1.common_pb2 import SourceIdentity

log = structlog.get_logger(__name__)

METHOD = "/sysmonstm.v1.DeskmeterIngest/Stream"
#: a side service (desktop notifications): run beside the watcher, its failure only logged
Companion = Callable[[], Awaitable[None]]
MAX_HEARTBEAT_S = DeskLimits().max_heartbeat_ms / 1000  # what the aggregator accepts
_MIN_WAIT_MS = 5  # a clock a hair behind the due time costs one more short wait, not a spin
_KINDS = {EventKind.SWITCH: pb.DeskEvent.SWITCH, EventKind.HEARTBEAT: pb.DeskEvent.HEARTBEAT}
#: spooled events (one per entry) merged into one message at most: a tenth of what the
#: aggregator accepts in one batch, so ~100 kB; a catch-up costs one message per thousand
MERGE = 1_000


def sender_options(stop_grace_s: float) -> SenderOptions:
    """How the watcher's ``StreamSender`` runs (the benchmark uses the same)."""
    return SenderOptions(stop_grace_s=stop_grace_s, merge=MERGE)


@dataclass(frozen=True)
class WatchOptions:
    """What a watcher needs; validated on creation (``ConfigError``)."""

    aggregators: tuple[str, ...]
    spool_dir: Path
    heartbeat_s: float = 10.0
    idle_after_s: float = 300.0
    poll_s: float = 2.0  # the wmctrl fallback's period
    source: SourceKind = "auto"  # auto: X11 events, else wmctrl
    display: str | None = None  # default: $DISPLAY
    machine_id: str | None = None
    hostname: str | None = None
    time_zone: str | None = None  # default: the machine's zone
    gateway: str | None = None  # follow task changes there; None: tasks stay as stored
    spool_max_bytes: int = 20 * MB
    tls: ClientTls | None = None
    stop_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.aggregators:
            raise ConfigError("deskmeter: at least one aggregator address is needed")
        for name in ("heartbeat_s", "idle_after_s", "poll_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.1:
                raise ConfigError(f"deskmeter: {name} must be at least 0.1 s")
        if self.heartbeat_s > MAX_HEARTBEAT_S:
            raise ConfigError(f"deskmeter: heartbeat_s must be at most {MAX_HEARTBEAT_S:.0f} s")
        if self.source not in ("auto", "x11", "wmctrl"):
            raise ConfigError(f"deskmeter: unknown source {self.source!r} (auto, x11, wmctrl)")
        if self.spool_max_bytes <= 0:
            raise ConfigError("deskmeter: spool_max_bytes must be positive")


def wire_event(event: DeskEvent, batch: pb.DeskBatch | None = None) -> pb.DeskEvent:
    """``event`` as the wire has it; added to ``batch``'s events when one is given."""
    make = pb.DeskEvent if batch is None else batch.events.add
    return make(
        time_unix_ms=event.time_ms,
        kind=_KINDS[event.kind],
        workspace_index=event.workspace_index,
        workspace=event.workspace,
        task=event.task,
        idle=event.idle,
        idle_ms=event.idle_ms,
        time_zone=event.time_zone,
    )


class Outbox:
    """Writes each event into the spool as its own ``DeskBatch`` of this machine."""

    def __init__(self, machine: Machine, spool: Spool, heartbeat_ms: int) -> None:
        self.source = SourceIdentity(machine_id=machine.id, hostname=machine.host)
        self.spool = spool
        self.heartbeat_ms = heartbeat_ms
        # the fields every batch shares, serialized once: a batch is these bytes followed by
        # its own sequence and event (protobuf merges the concatenation into one message)
        self._prefix = pb.DeskBatch(
            source=self.source, heartbeat_ms=heartbeat_ms
        ).SerializeToString()

    def send(self, event: DeskEvent) -> int:
        """Spool ``event``; the batch's sequence."""
        batch = pb.DeskBatch(sequence=self.spool.next_sequence())
        wire_event(event, batch)
        self.spool.append(batch.sequence, self._prefix + batch.SerializeToString())
        if event.kind is EventKind.SWITCH:
            log.info(
                "switch",
                sequence=batch.sequence,
                workspace_index=event.workspace_index,
                workspace=event.workspace,
                task=event.task,
                idle=event.idle,
                time_ms=event.time_ms,
            )
        return batch.sequence


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _companion(run: Companion) -> None:
    try:
        await run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("a watcher companion failed; the watcher carries on")


async def run_watcher(
    opts: WatchOptions, stop: asyncio.Event, companions: Sequence[Companion] = ()
) -> None:
    """Watch, spool and stream until ``stop`` is set; then send a last heartbeat and drain
    briefly. Raises ``DesktopUnavailableError`` when no desktop can be read, or when the
    session goes away (after spooling the last heartbeat)."""
    machine = resolve_machine(opts.machine_id, opts.hostname, opts.time_zone, opts.spool_dir)
    sources = open_sources(opts.source, opts.display, opts.poll_s)
    try:
        spool = Spool(opts.spool_dir, max_bytes=opts.spool_max_bytes)
    except BaseException:
        sources.close()
        raise
    await _Watcher(opts, machine, sources, spool).run(stop, companions)


class _Watcher:
    """One run of the watcher over opened sources and spool (closed when it ends)."""

    def __init__(self, opts: WatchOptions, machine: Machine, sources: Sources, spool: Spool):
        tls = opts.tls
        self.opts = opts
        self.machine = machine
        self.sources = sources
        self.spool = spool
        self.sender = StreamSender(
            spool,
            opts.aggregators,
            METHOD,
            credentials=None if tls is None else channel_credentials(tls.ca, tls.cert, tls.key),
            options=sender_options(opts.stop_grace_s),
        )
        heartbeat_ms = round(opts.heartbeat_s * 1000)
        self.tracker = Tracker(heartbeat_ms, round(opts.idle_after_s * 1000), machine.time_zone)
        self.outbox = Outbox(machine, spool, heartbeat_ms)
        self.current = CurrentTask(opts.spool_dir / "task")
        self.backlog = BacklogWatch(spool, opts.heartbeat_s)
        self.wake = asyncio.Event()

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        task.add_done_callback(lambda _: self.wake.set())
        return task

    async def run(self, stop: asyncio.Event, companions: Sequence[Companion]) -> None:
        sending = self._spawn(self.sender.run())

        async def stopped() -> None:
            await stop.wait()

        # each of these ends only by failing, or on stop: any of them ending ends the run
        vital = [self._spawn(stopped())]
        vital += [self._spawn(r) for r in self.sources.runs(self.wake.set)]
        if self.opts.gateway:
            follower = follow_tasks(self.opts.gateway, self.machine.id, self.current, self.wake.set)
            vital.append(self._spawn(follower))
        extras = [asyncio.ensure_future(_companion(c)) for c in companions]
        self._log_start()
        try:
            await self._loop([sending, *vital])
            for task in [sending, *vital]:
                if task.done() and not task.cancelled():
                    task.result()  # a lost X server or a bug: raise it here
        finally:
            if (event := self.tracker.closing(now_ms())) is not None:
                self.outbox.send(event)
            for task in [*vital, *extras]:
                task.cancel()
            await asyncio.gather(*vital, *extras, return_exceptions=True)
            self.sender.stop()
            await asyncio.gather(sending, return_exceptions=True)
            self.spool.close()
            self.sources.close()
            log.info(
                "deskmeter watcher stopped",
                acked=self.spool.acked,
                pending=self.spool.pending_count,
                dropped=self.spool.dropped,
            )

    async def _loop(self, vital: list[asyncio.Task[None]]) -> None:
        idle = self.sources.idle
        while not any(t.done() for t in vital):
            self.wake.clear()  # before reading: a change from now on wakes the next wait
            idle_ms = idle.idle_ms() if idle is not None else None
            desktop = self.sources.desktop.desktop
            event = self.tracker.observe(desktop, self.current.task, idle_ms, now_ms())
            if event is not None:
                self.outbox.send(event)
                self.backlog.check()
            if idle is not None:
                idle.watch_input(self.tracker.idle)  # while idle, the first input wakes us
            wait = self.tracker.wait_ms(idle_ms, now_ms())
            timeout = None if wait is None else max(wait, _MIN_WAIT_MS) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)

    def _log_start(self) -> None:
        log.info(
            "deskmeter watcher started",
            machine_id=self.machine.id,
            hostname=self.machine.host,
            time_zone=self.machine.time_zone,
            source=self.sources.desktop.kind,
            idle=self.sources.idle is not None,
            aggregators=list(self.opts.aggregators),
            heartbeat_s=self.opts.heartbeat_s,
            task=self.current.task,
            pending=self.spool.pending_count,
        )
