"""StreamSender against a real gRPC peer: order, acks, replay, failover, quarantine, window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.spool import Spool
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.metrics_pb2 import MetricBatch, MetricFrame
from tests.conftest import free_port
from tests.transport.ingest_peer import IngestPeer, eventually

METHOD = "/sysmonstm.v1.MetricsIngest/Stream"
FAST = SenderOptions(backoff_initial_s=0.02, backoff_max_s=0.3, stop_grace_s=5.0)


@pytest.fixture
async def peer() -> AsyncIterator[IngestPeer]:
    p = await IngestPeer().start()
    yield p
    await p.stop()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool")
    yield s
    s.close()


def produce(spool: Spool, count: int) -> list[int]:
    """Append ``count`` small metric batches; return their sequences."""
    seqs = []
    for i in range(count):
        seq = spool.next_sequence()
        batch = MetricBatch(
            source=SourceIdentity(machine_id="m-1", hostname="h"),
            sequence=seq,
            series=["cpu.used"],
            frames=[MetricFrame(time_unix_ms=1_700_000_000_000 + i, values=[float(i)])],
            interval_ms=1000,
        )
        spool.append(seq, batch.SerializeToString())
        seqs.append(seq)
    return seqs


@asynccontextmanager
async def sending(
    spool: Spool, addresses: list[str], options: SenderOptions = FAST
) -> AsyncIterator[StreamSender]:
    """A sender running in the background; stopped (and awaited) on exit."""
    sender = StreamSender(spool, addresses, METHOD, options=options)
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        sender.stop()
        async with asyncio.timeout(10):
            await task


async def test_batches_arrive_in_order_and_acks_free_the_spool(
    peer: IngestPeer, spool: Spool
) -> None:
    before = produce(spool, 20)
    async with sending(spool, [peer.address]) as sender:
        await eventually(lambda: len(peer.received) == 20)
        after = produce(spool, 20)  # appended while caught up: the sender is woken
        await eventually(lambda: spool.pending_count == 0)
        assert sender.status.address == peer.address
        assert sender.status.acked == after[-1]
    assert [b.sequence for b in peer.received] == before + after
    assert peer.received[0].SerializeToString() == peer.stored[before[0]].SerializeToString()
    assert spool.acked == after[-1]


async def test_unacked_batches_are_replayed_after_the_receiver_restarts(
    peer: IngestPeer, spool: Spool
) -> None:
    first = produce(spool, 20)
    peer.limit_acks(first[9])  # half of them acked before the receiver goes away
    async with sending(spool, [peer.address]) as sender:
        await eventually(lambda: len(peer.received) == 20 and spool.acked == first[9])
        await peer.stop()
        await eventually(lambda: sender.status.address is None)
        second = produce(spool, 10)  # spooled while nobody listens
        peer.limit_acks(None)
        await peer.start()
        await eventually(lambda: spool.pending_count == 0)
    assert list(peer.stored) == first + second  # each once, in order
    replayed = [b.sequence for b in peer.received[20:]]
    assert replayed == first[10:] + second  # un-acked ones again, in order; acked ones not
    assert peer.streams >= 2


async def test_fails_over_to_the_next_address(peer: IngestPeer, spool: Spool) -> None:
    dead = f"127.0.0.1:{free_port()}"
    seqs = produce(spool, 5)
    async with sending(spool, [dead, peer.address]) as sender:
        await eventually(lambda: spool.pending_count == 0)
        assert sender.status.address == peer.address
    assert list(peer.stored) == seqs


async def test_a_refused_batch_is_quarantined_and_the_others_delivered(
    peer: IngestPeer, spool: Spool
) -> None:
    seqs = produce(spool, 10)
    bad = seqs[4]
    peer.reject[bad] = (grpc.StatusCode.INVALID_ARGUMENT, "series 'x y': bad metric name")
    async with sending(spool, [peer.address]) as sender:
        await eventually(lambda: spool.pending_count == 0)
        assert sender.status.quarantined == 1
    assert list(peer.stored) == seqs[:4] + seqs[5:]
    quarantined = spool.directory / "rejected" / f"{bad}.bin"
    assert MetricBatch.FromString(quarantined.read_bytes()).sequence == bad
    reason = quarantined.with_suffix(".reason").read_text()
    assert "INVALID_ARGUMENT" in reason
    assert "bad metric name" in reason


async def test_no_more_than_the_window_is_in_flight_before_an_ack(
    peer: IngestPeer, spool: Spool
) -> None:
    seqs = produce(spool, 50)
    peer.limit_acks(0)
    options = SenderOptions(window=10, backoff_initial_s=0.02, stop_grace_s=5.0)
    async with sending(spool, [peer.address], options) as sender:
        await eventually(lambda: len(peer.received) == 10)
        await asyncio.sleep(0.2)  # room for a wrong sender to overrun; a right one waits
        assert len(peer.received) == 10
        assert sender.status.in_flight == 10
        peer.limit_acks(seqs[4])  # five acked: five more may go
        await eventually(lambda: len(peer.received) == 15)
        await asyncio.sleep(0.2)
        assert len(peer.received) == 15
        peer.limit_acks(None)
        await eventually(lambda: spool.pending_count == 0)
    assert [b.sequence for b in peer.received] == seqs


async def test_stop_drains_the_spool_within_the_grace(peer: IngestPeer, spool: Spool) -> None:
    seqs = produce(spool, 30)
    async with sending(spool, [peer.address]):
        pass  # stopped at once: the grace is for getting these acked
    assert spool.pending_count == 0
    assert list(peer.stored) == seqs


async def test_stop_gives_up_after_the_grace_and_keeps_the_rest_spooled(
    peer: IngestPeer, spool: Spool
) -> None:
    seqs = produce(spool, 5)
    peer.limit_acks(0)
    options = SenderOptions(backoff_initial_s=0.02, stop_grace_s=0.2)
    async with sending(spool, [peer.address], options):
        await eventually(lambda: len(peer.received) == 5)
    assert spool.pending_count == 5
    assert [s for s, _ in spool.pending(0)] == seqs


MERGING = SenderOptions(backoff_initial_s=0.02, backoff_max_s=0.1, stop_grace_s=5.0, merge=100)


def frames(batch: MetricBatch) -> list[int]:
    """The frame times of a received message, as offsets from the first produced."""
    return [f.time_unix_ms - 1_700_000_000_000 for f in batch.frames]


async def test_a_live_entry_goes_alone_and_a_backlog_goes_merged(
    peer: IngestPeer, spool: Spool
) -> None:
    async with sending(spool, [peer.address], MERGING) as sender:
        (live,) = produce(spool, 1)
        await eventually(lambda: spool.acked == live)
        await peer.stop()
        await eventually(lambda: sender.status.address is None)
        backlog = produce(spool, 250)  # spooled while the receiver is away
        await peer.start()
        await eventually(lambda: spool.pending_count == 0)
        assert sender.status.messages == 4
    assert [b.sequence for b in peer.received] == [live, backlog[99], backlog[199], backlog[-1]]
    assert [len(b.frames) for b in peer.received] == [1, 100, 100, 50]
    assert [t for b in peer.received[1:] for t in frames(b)] == list(range(250))
    assert spool.acked == backlog[-1]


async def test_entries_that_may_have_reached_the_receiver_are_never_merged(
    peer: IngestPeer, spool: Spool
) -> None:
    before = produce(spool, 5)  # spooled by an earlier run: may be stored already
    async with sending(spool, [peer.address], MERGING) as sender:
        await eventually(lambda: spool.acked == before[-1])
        peer.limit_acks(0)
        burst = produce(spool, 5)  # appended at once, nothing in flight: one merged message
        await eventually(lambda: len(peer.received) == 6)
        await peer.stop()  # the merged message was written, never acked
        await eventually(lambda: sender.status.address is None)
        peer.stored.clear()  # so it acks only what it gets again (it would ack the merged one)
        peer.limit_acks(None)
        await peer.start()
        await eventually(lambda: spool.pending_count == 0)
    received = [(b.sequence, len(b.frames)) for b in peer.received]
    assert received == [(s, 1) for s in before] + [(burst[-1], 5)] + [(s, 1) for s in burst]


async def test_entries_appended_while_a_message_is_in_flight_go_together_after_its_ack(
    peer: IngestPeer, spool: Spool
) -> None:
    async with sending(spool, [peer.address], MERGING):
        peer.limit_acks(0)
        (first,) = produce(spool, 1)
        await eventually(lambda: len(peer.received) == 1)
        held = [produce(spool, 1)[0] for _ in range(3)]
        await asyncio.sleep(0.2)  # room for a wrong sender to send them one by one
        assert len(peer.received) == 1
        peer.limit_acks(None)
        await eventually(lambda: spool.pending_count == 0)
    assert [(b.sequence, len(b.frames)) for b in peer.received] == [(first, 1), (held[-1], 3)]


async def test_held_entries_go_without_the_ack_once_a_full_message_is_waiting(
    peer: IngestPeer, spool: Spool
) -> None:
    async with sending(spool, [peer.address], MERGING):
        peer.limit_acks(0)
        produce(spool, 1)
        await eventually(lambda: len(peer.received) == 1)
        full = produce(spool, 100)
        await eventually(lambda: len(peer.received) == 2)
        assert [len(b.frames) for b in peer.received] == [1, 100]
        assert peer.received[1].sequence == full[-1]
        peer.limit_acks(None)


async def test_a_refused_merged_batch_is_resent_entry_by_entry_and_only_the_bad_one_quarantined(
    peer: IngestPeer, spool: Spool
) -> None:
    async with sending(spool, [peer.address], MERGING) as sender:
        await peer.stop()
        await eventually(lambda: sender.status.reconnects > 0)
        seqs = produce(spool, 10)  # one merged message, named by its last entry
        bad = seqs[-1]
        peer.reject[bad] = (grpc.StatusCode.INVALID_ARGUMENT, "event 0: bad workspace name")
        await peer.start()
        await eventually(lambda: spool.pending_count == 0)
        assert sender.status.quarantined == 1
    assert list(peer.stored) == seqs[:-1]
    assert [len(b.frames) for b in peer.received] == [1] * 9
    quarantined = spool.directory / "rejected" / f"{bad}.bin"
    assert len(MetricBatch.FromString(quarantined.read_bytes()).frames) == 1


def test_merge_must_be_positive() -> None:
    with pytest.raises(ValueError, match="merge"):
        SenderOptions(merge=0)
