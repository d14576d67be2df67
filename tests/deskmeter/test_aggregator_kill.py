"""Done-when 2, the aggregator half: a watcher's stream (spool + sender, DeskBatch bytes) to an
aggregator process that is SIGKILLed and restarted, and a watcher that is killed and comes
back. Afterwards the intervals are exactly those the events define: none runs past its last
heartbeat, and the totals equal the events sent, nothing counted twice."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sysmonstm.domains.deskmeter.model import SILENCE_SLACK_MS, Interval, SummaryBy
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.domains.deskmeter.stores import open_interval_store
from sysmonstm.domains.deskmeter.watcher import MERGE
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.spool import Spool
from tests.conftest import free_port
from tests.deskmeter.wire import HEARTBEAT, SWITCH, desk_batch, event
from tests.e2e.processes import SYSMONSTM, Proc, base_env, spawn, stop

pytestmark = pytest.mark.e2e

METHOD = "/sysmonstm.v1.DeskmeterIngest/Stream"
MACHINE = "kill-desk"
HEARTBEAT_MS = 500
SILENCE_LIMIT_MS = 2 * HEARTBEAT_MS + SILENCE_SLACK_MS  # docs/deskmeter.md "Intervals"
WORKSPACES = ("Code", "Mail", "Web", "Chat")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Sent:
    t_ms: int
    workspace: str


class Watcher:
    """What ``sysmonstm deskmeter watch`` does on the wire: one event per heartbeat period,
    spooled as a DeskBatch and streamed by a ``StreamSender`` that merges what piled up (the
    watcher's ``MERGE``); a switch every few periods."""

    def __init__(self, spool_dir: Path, address: str, sent: list[Sent]) -> None:
        self.spool = Spool(spool_dir)
        self.address = address
        self.sent = sent
        self._ticks = 0
        self._ticking = asyncio.create_task(self._tick_forever())
        self._sending: asyncio.Task[None] | None = None
        self.sender = self._new_sender()
        self.resume_sending()

    def _new_sender(self) -> StreamSender:
        """A sender of the spool from its acked mark; it merges only what is spooled after it
        is made (made when the stream drops, it merges the events spooled while away)."""
        return StreamSender(
            self.spool,
            [self.address],
            METHOD,
            options=SenderOptions(backoff_max_s=0.5, stop_grace_s=30.0, merge=MERGE),
        )

    def resume_sending(self) -> None:
        """Stream the spool (from its acked mark, as a restarted sender does)."""
        self._sending = asyncio.create_task(self.sender.run())

    async def pause_sending(self) -> None:
        """Drop the stream at once, keep spooling (the sender is away, not the watcher)."""
        assert self._sending is not None
        self._sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sending
        self.sender = self._new_sender()

    def _tick(self) -> None:
        workspace = WORKSPACES[(len(self.sent) // 4) % len(WORKSPACES)]
        changed = not self.sent or self.sent[-1].workspace != workspace
        t = wall_ms()
        batch = desk_batch(
            MACHINE,
            self.spool.next_sequence(),
            [event(t, SWITCH if changed else HEARTBEAT, workspace, WORKSPACES.index(workspace))],
            heartbeat_ms=HEARTBEAT_MS,
        )
        self.spool.append(batch.sequence, batch.SerializeToString())
        self.sent.append(Sent(t, workspace))

    async def _tick_forever(self) -> None:
        while True:
            self._tick()
            await asyncio.sleep(HEARTBEAT_MS / 1000)

    async def _stop_ticking(self) -> None:
        self._ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticking

    async def kill(self) -> None:
        """Die without draining: ticks and stream end at once, the spool keeps what it has."""
        await self._stop_ticking()
        await self.pause_sending()
        self.spool.close()

    async def stop(self) -> None:
        """Stop as on SIGTERM: wait until everything spooled is acknowledged."""
        await self._stop_ticking()
        assert self._sending is not None
        self.sender.stop()
        await self._sending
        self.spool.close()


def expected(sent: list[Sent]) -> list[tuple[int, int, str]]:
    """The intervals the contract gives for ``sent``: a change of workspace closes the open
    interval at the event, silence longer than the limit closes it at its last event."""
    out: list[tuple[int, int, str]] = []
    start, end, workspace = sent[0].t_ms, sent[0].t_ms, sent[0].workspace
    for s in sent[1:]:
        if s.t_ms - end > SILENCE_LIMIT_MS:
            out.append((start, end, workspace))
            start = s.t_ms
        elif s.workspace != workspace:
            out.append((start, s.t_ms, workspace))
            start = s.t_ms
        end, workspace = s.t_ms, s.workspace
    out.append((start, end, workspace))
    return out


async def wait_until(probe: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


async def machine_quiet(store: IntervalStore) -> bool:
    infos = [i for i in await store.machines() if i.machine.id == MACHINE]
    return bool(infos) and infos[0].current is None


async def test_killing_the_aggregator_or_the_watcher_never_stretches_or_doubles_time(
    tmp_path: Path,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = base_env(tmp_path / "agg", aggregator__listen=address)
    store = open_interval_store(f"sqlite:///{tmp_path / 'agg' / 'warm.db'}")
    sent: list[Sent] = []
    agg: Proc = spawn([SYSMONSTM, "aggregator"], env, tmp_path / "agg1.log")
    agg.wait_log("aggregator listening")
    try:
        await store.open()
        watcher = Watcher(tmp_path / "spool", address, sent)
        await asyncio.sleep(3.0)
        assert stop(agg, signal.SIGKILL) == -signal.SIGKILL
        killed_ms = wall_ms()
        await watcher.pause_sending()
        await asyncio.sleep(1.0)
        agg = spawn([SYSMONSTM, "aggregator"], env, tmp_path / "agg2.log")
        agg.wait_log("aggregator listening")
        # the restarted aggregator finds the machine silent (its last stored event is past
        # the limit) and closes its interval; the spooled events then continue it
        await wait_until(lambda: machine_quiet(store), 20.0, "the silent interval closed")
        resumed_ms = wall_ms()
        watcher.resume_sending()
        resumed = watcher.sender
        await asyncio.sleep(3.0)
        await watcher.kill()
        # the backlog of the outage went out merged: fewer messages than events
        assert resumed.status.messages < sum(1 for s in sent if s.t_ms > killed_ms)
        last_before_kill = sent[-1].t_ms
        await wait_until(lambda: machine_quiet(store), 20.0, "the dead watcher's interval closed")
        await asyncio.sleep(1.0)  # the watcher comes back after a while
        watcher = Watcher(tmp_path / "spool", address, sent)
        await asyncio.sleep(2.0)
        await watcher.stop()
        assert watcher.spool.pending_count == 0
        last_seq = watcher.spool.last_sequence
    finally:
        assert stop(agg) == 0, agg.text()[-3000:]
    try:
        intervals: list[Interval] = await store.intervals(0, 2**62, MACHINE)
        got = [(i.start_ms, i.end_ms, i.workspace) for i in intervals]
        assert got == expected(sent)
        # no interval runs past a heartbeat: each ends at an event the watcher sent
        assert {end for _, end, _ in got} <= {s.t_ms for s in sent}
        assert await store.stored_through(MACHINE) == last_seq
        # the watcher's death: the interval it left ends at its last heartbeat, the next
        # one begins with the first event of the watcher that came back
        back = next(s.t_ms for s in sent if s.t_ms > last_before_kill)
        assert back - last_before_kill > SILENCE_LIMIT_MS
        ended = [i for i, (_, end, _) in enumerate(got) if end == last_before_kill]
        assert len(ended) == 1
        assert got[ended[0] + 1][0] == back
        # the aggregator's death changed nothing: the events spooled while it was away (and
        # after it had closed the interval as silent) continue the intervals
        outage = [s.t_ms for s in sent if killed_ms < s.t_ms < resumed_ms]
        assert len(outage) >= 5
        assert all(any(a <= t <= b for a, b, _ in got) for t in outage)
        # nothing counted twice: the daily totals are the sum of the intervals
        total_ms = sum(end - start for start, end, _ in got)
        assert total_ms == sum(end - start for start, end, _ in expected(sent))
        totals = await store.summary(0, 2**62, SummaryBy.WORKSPACE, MACHINE)
        assert round(sum(t.active_s for t in totals) * 1000) == total_ms
        assert sum(t.idle_s for t in totals) == 0
        by_workspace: dict[str, int] = {}
        for start, end, workspace in got:
            by_workspace[workspace] = by_workspace.get(workspace, 0) + end - start
        assert {t.key: round(t.active_s * 1000) for t in totals if t.active_s} == {
            k: v for k, v in by_workspace.items() if v
        }
    finally:
        await store.close()
