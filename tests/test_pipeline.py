"""The generic pipeline: dedupe, batching by size or age, backpressure, retries, drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.pipeline import Outcome, Pipeline, PipelineOptions, PublishPoint


@dataclass(frozen=True)
class Item:
    source: str
    seq: int
    n: int = 1


@dataclass
class ListStages:
    """Stages over a list 'store' whose speed and failures the test controls (below the seam)."""

    stored: list[Item] = field(default_factory=list)
    flushes: list[int] = field(default_factory=list)
    published: list[Item] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0

    def __post_init__(self) -> None:
        self.gate.set()

    async def validate(self, raw: object) -> Item:
        if not isinstance(raw, Item) or raw.seq < 1:
            raise InvalidInputError("bad item")
        return raw

    def normalize(self, batch: Item) -> Item:
        return batch

    def identity(self, batch: Item) -> tuple[str, int]:
        return batch.source, batch.seq

    def size(self, batch: Item) -> int:
        return batch.n

    async def stored_through(self, source: str) -> int:
        return max((i.seq for i in self.stored if i.source == source), default=0)

    async def store(self, batches: Sequence[Item]) -> Sequence[Item]:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise BackendError("store is down")
        marks: dict[str, int] = {}
        new = []
        for b in batches:
            mark = marks.get(b.source)
            if mark is None:
                mark = await self.stored_through(b.source)
            if b.seq > mark:
                new.append(b)
                marks[b.source] = b.seq
        self.stored.extend(new)
        self.flushes.append(len(batches))
        return new

    async def publish(self, batches: Sequence[Item]) -> None:
        self.published.extend(batches)


@pytest.fixture
async def running() -> AsyncIterator[tuple[Pipeline[Item], ListStages]]:
    stages = ListStages()
    pipe: Pipeline[Item] = Pipeline(
        stages,
        PipelineOptions(queue_batches=4, flush_items=10, flush_age_s=0.05, retry_base_s=0.01),
    )
    task = asyncio.create_task(pipe.run())
    yield pipe, stages
    pipe.stop()
    await asyncio.wait_for(task, 10)


async def test_batches_are_stored_published_and_watermarked(running: tuple) -> None:
    pipe, stages = running
    for i in range(1, 6):
        assert (await pipe.submit(Item("a", i))).outcome is Outcome.QUEUED
    assert await asyncio.wait_for(pipe.wait_stored("a", 4), 5) == 5
    assert [i.seq for i in stages.stored] == [1, 2, 3, 4, 5]
    assert [i.seq for i in stages.published] == [1, 2, 3, 4, 5]


async def test_by_default_nothing_is_published_before_it_is_stored(running: tuple) -> None:
    pipe, stages = running
    stages.gate.clear()
    await pipe.submit(Item("a", 1))
    await asyncio.sleep(0.1)
    assert stages.published == []
    stages.gate.set()
    await asyncio.wait_for(pipe.wait_stored("a", 0), 5)
    assert [i.seq for i in stages.published] == [1]


async def test_publishing_on_acceptance_publishes_each_new_batch_once_before_storing() -> None:
    stages = ListStages()
    stages.gate.clear()
    options = PipelineOptions(queue_batches=4, flush_age_s=0.01, publish=PublishPoint.ACCEPTED)
    pipe: Pipeline[Item] = Pipeline(stages, options)
    task = asyncio.create_task(pipe.run())
    try:
        await pipe.submit(Item("a", 1))
        await pipe.submit(Item("a", 2))
        assert (await pipe.submit(Item("a", 2))).outcome is Outcome.DUPLICATE
        assert [i.seq for i in stages.published] == [1, 2]
        assert stages.stored == []
        stages.gate.set()
        await asyncio.wait_for(pipe.wait_stored("a", 1), 5)
        assert (await pipe.submit(Item("a", 1))).outcome is Outcome.DUPLICATE
        assert [i.seq for i in stages.stored] == [1, 2]
        assert [i.seq for i in stages.published] == [1, 2]  # not again once stored
    finally:
        pipe.stop()
        await asyncio.wait_for(task, 10)


async def test_sequences_at_or_below_the_mark_are_duplicates(running: tuple) -> None:
    pipe, stages = running
    await pipe.submit(Item("a", 1))
    await pipe.submit(Item("a", 2))
    assert (await pipe.submit(Item("a", 2))).outcome is Outcome.DUPLICATE
    await asyncio.wait_for(pipe.wait_stored("a", 1), 5)
    assert (await pipe.submit(Item("a", 1))).outcome is Outcome.DUPLICATE
    assert (await pipe.submit(Item("b", 1))).outcome is Outcome.QUEUED
    await asyncio.wait_for(pipe.wait_stored("b", 0), 5)
    assert [(i.source, i.seq) for i in stages.stored] == [("a", 1), ("a", 2), ("b", 1)]


async def test_invalid_input_is_refused_before_anything_is_queued(running: tuple) -> None:
    pipe, _ = running
    with pytest.raises(InvalidInputError):
        await pipe.submit(Item("a", 0))
    assert pipe.queued == 0
    assert pipe.accepted_through("a") == 0


async def test_a_flush_is_cut_at_the_size_limit(running: tuple) -> None:
    pipe, stages = running
    stages.gate.clear()
    await pipe.submit(Item("a", 1, n=1))  # taken by the writer, which waits on the gate
    await asyncio.sleep(0.1)
    for seq in range(2, 6):
        await pipe.submit(Item("a", seq, n=4))
    stages.gate.set()
    await asyncio.wait_for(pipe.wait_stored("a", 4), 5)
    assert stages.flushes[0] == 1
    # 4 items of 4: a flush stops once it holds >= 10, so none holds more than 3 batches
    assert stages.flushes[1:] == [3, 1]


async def test_a_slow_store_pushes_back_on_submitters(running: tuple) -> None:
    pipe, stages = running
    stages.gate.clear()
    accepted = 0

    async def producer() -> None:
        nonlocal accepted
        for seq in range(1, 50):
            await pipe.submit(Item("a", seq))
            accepted = seq

    task = asyncio.create_task(producer())
    await asyncio.sleep(0.3)
    assert pipe.queued == 4  # the queue's bound
    assert accepted <= 4 + 10 + 1  # queue + one gathered flush + one in hand
    assert not task.done()
    stages.gate.set()
    await asyncio.wait_for(task, 5)
    await asyncio.wait_for(pipe.wait_stored("a", 48), 5)
    assert [i.seq for i in stages.stored] == list(range(1, 50))


async def test_a_failing_store_is_retried_and_nothing_is_lost_or_doubled(running: tuple) -> None:
    pipe, stages = running
    stages.failures = 3
    for seq in range(1, 21):
        await pipe.submit(Item("a", seq))
    await asyncio.wait_for(pipe.wait_stored("a", 19), 10)
    assert [i.seq for i in stages.stored] == list(range(1, 21))
    assert pipe.stats["retries"] == 3


async def test_stop_writes_everything_queued_before_returning() -> None:
    stages = ListStages()
    pipe: Pipeline[Item] = Pipeline(stages, PipelineOptions(queue_batches=100))
    for seq in range(1, 31):
        await pipe.submit(Item("a", seq))
    task = asyncio.create_task(pipe.run())
    pipe.stop()
    await asyncio.wait_for(task, 10)
    assert [i.seq for i in stages.stored] == list(range(1, 31))


async def test_a_submit_cancelled_while_the_queue_is_full_is_not_taken_for_stored() -> None:
    """A stream that goes away while pushed back must leave its batch replayable."""
    stages = ListStages()
    pipe: Pipeline[Item] = Pipeline(stages, PipelineOptions(queue_batches=1))
    await pipe.submit(Item("a", 1))  # fills the queue; nothing runs the writer yet
    waiting = asyncio.create_task(pipe.submit(Item("a", 2)))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # pushed back
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pipe.accepted_through("a") == 1
    task = asyncio.create_task(pipe.run())
    replay = await pipe.submit(Item("a", 2))  # the sender replays what was never acked
    assert replay.outcome is Outcome.QUEUED
    pipe.stop()
    await asyncio.wait_for(task, 10)
    assert [i.seq for i in stages.stored] == [1, 2]
