"""Deskmeter ingest: DeskBatch on the wire → intervals in the store, hot state, bus events.

The pipeline's stages (``DeskStages``) validate a batch (``validate.py``, then: its first
event is not older than the machine's last accepted one, unless the batch is a replay),
give events without a task their rule's task (``tasks.py``), and store new batches with
``IntervalStore.apply`` (exactly once per machine and sequence). After a store they
update the hot state (``hot.py``) and publish each event: ``workspace.switch.<machine>``
when it began an interval, ``workspace.heartbeat.<machine>`` otherwise (``payloads.py``).
``DeskmeterIngest`` also closes the intervals of machines gone silent, every
``silence_check_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from sysmonstm.domains.deskmeter import hot
from sysmonstm.domains.deskmeter.model import DOMAIN, DeskBatch, Interval, MachineInfo
from sysmonstm.domains.deskmeter.payloads import (
    heartbeat_topic,
    is_switch,
    step_payload,
    switch_topic,
)
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.domains.deskmeter.store import Applied, IntervalStore
from sysmonstm.domains.deskmeter.tasks import TaskRules
from sysmonstm.domains.deskmeter.validate import DeskLimits, desk_batch
from sysmonstm.errors import InvalidInputError, SysmonstmError
from sysmonstm.pipeline import Pipeline, PipelineOptions
from sysmonstm.transport.stream_server import IngestStream
from sysmonstm.v1.deskmeter_pb2 import DeskBatch as WireDeskBatch

if TYPE_CHECKING:
    import grpc

    from sysmonstm.runtime import Core

log = structlog.get_logger(__name__)

SERVICE = "sysmonstm.v1.DeskmeterIngest"
SOURCE_PREFIX = f"{DOMAIN}:"
SILENCE_CHECK_S = 2.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def source_key(machine_id: str) -> str:
    """The pipeline's deduplication key of a machine."""
    return SOURCE_PREFIX + machine_id


#: a bus message to publish: topic, payload, source (the machine), event id, event time
_Message = tuple[str, dict[str, object], str, str, int]


class DeskStages:
    """The Deskmeter domain's pipeline stages (see the module docstring)."""

    def __init__(
        self,
        core: Core,
        limits: DeskLimits | None = None,
        rules: TaskRules | None = None,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.core = core
        self.limits = limits or DeskLimits()
        self.rules = rules or TaskRules(core.settings.deskmeter.task_rules)
        self._now_ms = now_ms
        # per machine: (highest sequence accepted, time of its last event); from the store
        # once, then kept as batches pass validation
        self._tails: dict[str, tuple[int, int]] | None = None
        self._tails_lock = asyncio.Lock()
        self._open: dict[str, Interval] = {}  # each machine's open interval as last published
        self._heartbeat_ms: dict[str, int] = {}  # each machine's heartbeat period, as last sent
        self._outbox: list[_Message] = []  # from store() to the publish() that follows it

    async def _intervals(self) -> IntervalStore:
        return await interval_store(self.core)

    # -- validate, normalize, identity -----------------------------------------------------

    async def validate(self, raw: object) -> DeskBatch:
        batch = desk_batch(raw, self._now_ms(), self.limits)
        await self._check_follows(batch)
        return batch

    async def _check_follows(self, batch: DeskBatch) -> None:
        """Refuse a new batch starting before the machine's last accepted event (a replay,
        at or below the accepted sequence, passes: the pipeline answers it as a duplicate)."""
        tails = await self._load_tails()
        machine = batch.machine.id
        seq, last_ms = tails.get(machine, (0, 0))
        if batch.sequence <= seq:
            return
        first = batch.events[0].time_ms
        if first < last_ms:
            raise InvalidInputError(
                f"event 0: time {first} ms is before the machine's last applied event at "
                f"{last_ms} ms (a machine's events must come in time order)"
            )
        tails[machine] = (batch.sequence, batch.events[-1].time_ms)

    async def _load_tails(self) -> dict[str, tuple[int, int]]:
        if self._tails is not None:
            return self._tails
        async with self._tails_lock:
            if self._tails is None:
                infos = await (await self._intervals()).machines()
                self._tails = {i.machine.id: (i.stored_through, i.last_event_ms) for i in infos}
            return self._tails

    def normalize(self, batch: DeskBatch) -> DeskBatch:
        return self.rules.apply(batch)

    def identity(self, batch: DeskBatch) -> tuple[str, int]:
        return source_key(batch.machine.id), batch.sequence

    def size(self, batch: DeskBatch) -> int:
        return len(batch.events)

    async def stored_through(self, source: str) -> int:
        return await (await self._intervals()).stored_through(source.removeprefix(SOURCE_PREFIX))

    # -- store, publish --------------------------------------------------------------------

    async def store(self, batches: Sequence[DeskBatch]) -> Sequence[DeskBatch]:
        applied = await self._apply(batches)
        latest: dict[str, tuple[MachineInfo, int]] = {}
        switches: list[dict[str, object]] = []
        outbox = self._outbox
        for done in applied:
            batch = done.batch
            machine = batch.machine
            mid = machine.id
            on_switch, on_heartbeat = switch_topic(mid), heartbeat_topic(mid)
            ids = f"{DOMAIN}.{mid}.{batch.sequence}."
            previous = self._open.get(mid)
            for i, step in enumerate(done.steps):
                switch = is_switch(step, previous)
                previous = step.current
                payload = step_payload(machine, step, switch)
                topic = on_switch if switch else on_heartbeat
                outbox.append((topic, payload, mid, ids + str(i), step.event.time_ms))
                if switch:
                    switches.append(payload)
            if done.steps:
                self._open[mid] = done.steps[-1].current
                last = done.steps[-1]
                info = MachineInfo(machine, last.event.time_ms, batch.sequence, last.current)
                latest[mid] = (info, batch.heartbeat_ms)
                self._heartbeat_ms[mid] = batch.heartbeat_ms
        await hot.put_states(self.core.hot, list(latest.values()))
        await hot.add_switches(self.core.hot, switches)
        return [a.batch for a in applied]

    async def _apply(self, batches: Sequence[DeskBatch]) -> list[Applied]:
        """``store.apply``; a batch it refuses as out of order is dropped with an error (only
        possible when another aggregator wrote the machine meanwhile: ours validated it),
        so one bad batch never stops the writer."""
        store = await self._intervals()
        try:
            return await store.apply(batches)
        except ValueError:
            if len(batches) == 1:
                log.error(
                    "interval store refused a batch; dropped it",
                    machine=batches[0].machine.id,
                    sequence=batches[0].sequence,
                    exc_info=True,
                )
                self._tails = None  # ours were wrong: read them again
                return []
        out: list[Applied] = []
        for batch in batches:  # find the one it refuses, keep the others
            out += await self._apply([batch])
        return out

    async def publish(self, batches: Sequence[DeskBatch]) -> None:
        messages, self._outbox = self._outbox, []
        bus = self.core.bus
        for topic, payload, machine, event_id, time_ms in messages:
            await bus.publish(topic, payload, source=machine, event_id=event_id, time_ms=time_ms)

    # -- silence ---------------------------------------------------------------------------

    async def close_silent(self) -> list[Interval]:
        """Close the open intervals of machines silent past their limit and record their
        state (no open interval) in the hot tier."""
        store = await self._intervals()
        closed = await store.close_silent(self._now_ms())
        if not closed:
            return []
        quiet = {c.machine for c in closed}
        for machine in quiet:
            self._open.pop(machine, None)
        infos = [i for i in await store.machines() if i.machine.id in quiet]
        await hot.put_states(self.core.hot, [(i, self._heartbeat_of(i)) for i in infos])
        log.info("closed silent intervals", machines=sorted(quiet))
        return closed

    async def seed_hot(self) -> None:
        """Put every machine the store knows into the hot tier (it may have restarted empty)."""
        infos = await (await self._intervals()).machines()
        await hot.put_states(self.core.hot, [(i, self._heartbeat_of(i)) for i in infos])

    def _heartbeat_of(self, info: MachineInfo) -> int:
        """The machine's heartbeat period as last sent, else the configured default."""
        known = self._heartbeat_ms.get(info.machine.id)
        return known or round(self.core.settings.deskmeter.heartbeat_s * 1000)


class DeskmeterIngest:
    """The running Deskmeter ingest: a pipeline, the gRPC handler feeding it, and the task
    that closes silent machines' intervals."""

    def __init__(self, core: Core, silence_check_s: float = SILENCE_CHECK_S) -> None:
        agg = core.settings.aggregator
        limits = DeskLimits(
            max_future_ms=int(agg.max_future_s * 1000),
            max_past_ms=int(agg.max_past_s * 1000),
        )
        self.stages = DeskStages(core, limits)
        self.pipeline: Pipeline[DeskBatch] = Pipeline(
            self.stages,
            PipelineOptions(
                queue_batches=agg.queue_batches,
                flush_items=agg.flush_samples,
                flush_age_s=agg.flush_age_s,
            ),
        )
        self.stream = IngestStream(self.pipeline, WireDeskBatch.FromString, "DeskBatch")
        self.silence_check_s = silence_check_s
        self._stopped = asyncio.Event()

    @property
    def handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        return [self.stream.handler(SERVICE)]

    async def run(self) -> None:
        """Write what arrives and close silent intervals until ``stop``; returns once what
        was queued is stored."""
        watcher = asyncio.create_task(self._watch_silence(), name="deskmeter-silence")
        try:
            await self.pipeline.run()
        finally:
            self._stopped.set()
            await watcher

    async def _watch_silence(self) -> None:
        try:
            await self.stages.seed_hot()
        except SysmonstmError as exc:
            log.error("deskmeter: reading the machines for the hot tier failed", error=str(exc))
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.silence_check_s)
            if self._stopped.is_set():
                return
            try:
                await self.stages.close_silent()
            except SysmonstmError as exc:  # the next round tries again
                log.error("deskmeter: closing silent intervals failed", error=str(exc))

    def stop(self) -> None:
        self.pipeline.stop()
