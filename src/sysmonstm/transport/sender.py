"""The client half of an ingest stream, for any domain: spooled batches up, acks down.

``StreamSender`` keeps one long-lived bidi stream to one of several aggregators and sends
the spool's entries in sequence order, as the raw bytes the spool holds. Each ``Ack`` frees
the spool up to ``stored_through``. On any break it backs off (full jitter, exponential),
moves to the next address and replays everything un-acked; the aggregator drops what it
already has. A batch the aggregator refuses (INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming
it in ``sysmonstm-rejected-seq``) is quarantined by the spool and the stream reopens at once.

With ``SenderOptions.merge`` above 1 (the Deskmeter watcher), entries that pile up go out as
fewer, larger messages: up to ``merge`` consecutive entries concatenated, which protobuf reads
as one message (repeated fields appended, the last entry's scalars, so its sequence, win).
An entry that finds nothing in flight goes out alone at once (a live event waits for
nothing); entries appended while a message is in flight wait for its ack (the aggregator's
next flush) and go out together, or at once when ``merge`` of them are waiting; a backlog
(the aggregator was away) goes out ``merge`` at a time. Only entries appended after the sender
was made and never written on any stream are merged: an entry that may already have reached
an aggregator is re-sent alone, so a merged message never straddles what the aggregator
stored (it would take the whole message as new, or refuse its older events). A merged
message that is refused is not quarantined: the stream reopens and its entries go alone, so
the refusal names the one at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import structlog

from sysmonstm.transport.spool import Spool
from sysmonstm.transport.status import REJECTED_SEQ
from sysmonstm.v1.common_pb2 import Ack

log = structlog.get_logger(__name__)

_REJECTION_CODES = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
_READ_CHUNK = 256  # entries fetched from the spool at a time
_MERGE_MAX_BYTES = 1024 * 1024  # a merged message stays well below gRPC's 4 MiB default


@dataclass(frozen=True)
class SenderOptions:
    """Tuning of a ``StreamSender``; the defaults suit a collector at 1 Hz."""

    window: int = 1000  # batches written beyond the last ack; then wait (flow control)
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    connect_timeout_s: float = 5.0
    stop_grace_s: float = 5.0  # on stop, how long to keep trying to get everything acked
    keepalive_s: float = 60.0  # HTTP/2 pings find a silently dead peer
    merge: int = 1  # spooled entries sent as one message at most (see the module docstring)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.merge < 1:
            raise ValueError("merge must be at least 1")


@dataclass(frozen=True)
class SenderStatus:
    """A snapshot for logs and tests."""

    address: str | None  # the aggregator of the open stream, if any
    acked: int
    pending: int  # spooled, not yet acked
    in_flight: int  # messages written on this stream, not yet acked
    reconnects: int
    quarantined: int
    messages: int  # written since the sender was made (a merged message counts once)


class _Rejected(Exception):  # noqa: N818 - an outcome, not an error of ours
    def __init__(self, seq: int, reason: str, first: int) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason
        self.first = first  # the first entry of the refused message (< seq: it was merged)


class StreamSender:
    """Ships ``spool`` to ``method`` on the first reachable of ``addresses``, forever.

    ``run()`` returns after ``stop()``, once everything is acked or the stop grace expired.
    """

    def __init__(
        self,
        spool: Spool,
        addresses: Sequence[str],
        method: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: SenderOptions | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("at least one aggregator address is needed")
        self.spool = spool
        self.addresses = tuple(addresses)
        self.method = method
        self.options = options or SenderOptions()
        self._credentials = credentials
        self._address: str | None = None
        self._in_flight: deque[tuple[int, int]] = deque()  # (first, last) entry per message
        # entries up to here may have reached an aggregator: never merged (module docstring)
        self._written_through = spool.last_sequence
        self._messages = 0
        self._reconnects = 0
        self._quarantined = 0
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # the spool has new entries, or an ack arrived
        self._progress = asyncio.Event()  # an ack arrived
        spool.subscribe(self._wake.set)

    @property
    def status(self) -> SenderStatus:
        return SenderStatus(
            self._address,
            self.spool.acked,
            self.spool.pending_count,
            len(self._in_flight),
            self._reconnects,
            self._quarantined,
            self._messages,
        )

    def stop(self) -> None:
        """Ask ``run()`` to finish: drain within the stop grace, then close."""
        self._stopping.set()

    async def run(self) -> None:
        """Send until ``stop()``; then wait up to the grace for the spool to be acked."""
        streaming = asyncio.create_task(self._connect_loop())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({streaming, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if streaming.done():
                streaming.result()  # it only ends by raising a bug; surface it
            try:
                async with asyncio.timeout(self.options.stop_grace_s):
                    while self.spool.pending_count:
                        self._progress.clear()
                        await self._progress.wait()
            except TimeoutError:
                log.warning(
                    "sender stopped with batches not acked; they stay spooled",
                    pending=self.spool.pending_count,
                    address=self._address,
                )
        finally:
            stopping.cancel()
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming

    async def _connect_loop(self) -> None:
        index, failures = 0, 0
        while True:
            address = self.addresses[index]
            acked_before = self.spool.acked
            try:
                await self._session(address)
                log.info("aggregator closed the stream", address=address)
            except _Rejected as exc:
                if exc.first < exc.seq:
                    log.warning(
                        "aggregator refused a merged batch; sending its entries one by one",
                        first=exc.first,
                        last=exc.seq,
                        reason=exc.reason,
                    )
                else:
                    self._quarantine(exc.seq, exc.reason)
                self._reconnects += 1
                continue  # reopen at once, same address: the refused batch is out of the way
            except _StreamEnded as exc:
                log.warning("stream to aggregator failed", address=address, error=str(exc))
            if self.spool.acked > acked_before:
                failures = 0  # it was a working stream: start the backoff afresh
            failures += 1
            self._reconnects += 1
            index = (index + 1) % len(self.addresses)
            cap = min(
                self.options.backoff_max_s,
                self.options.backoff_initial_s * 2 ** min(failures - 1, 30),
            )
            await asyncio.sleep(random.uniform(0, cap))

    def _channel(self, address: str) -> grpc.aio.Channel:
        ms = int(self.options.keepalive_s * 1000)
        backoff_ms = max(100, int(self.options.backoff_initial_s * 1000))
        opts = [
            ("grpc.keepalive_time_ms", ms),
            ("grpc.keepalive_timeout_ms", min(ms, 20_000)),
            # a sender only receives small acks: BDP probing (a ping after received data, to
            # size the window for big downloads) only woke its threads (~0.05 % of a core at 1 Hz)
            ("grpc.http2.bdp_probe", 0),
            # channels to one address share gRPC's connection (subchannel): keep its own
            # reconnect backoff within ours, or a restarted aggregator waits up to 2 minutes
            ("grpc.initial_reconnect_backoff_ms", backoff_ms),
            ("grpc.min_reconnect_backoff_ms", backoff_ms),
            (
                "grpc.max_reconnect_backoff_ms",
                max(backoff_ms, int(self.options.backoff_max_s * 1000)),
            ),
        ]
        if self._credentials is None:
            return grpc.aio.insecure_channel(address, options=opts)
        return grpc.aio.secure_channel(address, self._credentials, options=opts)

    async def _session(self, address: str) -> None:
        """One stream's life: returns when the aggregator ends it cleanly, else raises."""
        channel = self._channel(address)
        try:
            await self._connect(channel, address)
            self._address = address
            log.info("streaming to aggregator", address=address, pending=self.spool.pending_count)
            call = channel.stream_stream(
                self.method, request_serializer=_raw, response_deserializer=Ack.FromString
            )()
            tasks = {asyncio.create_task(self._read(call)), asyncio.create_task(self._write(call))}
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a bug in either half, not a stream outcome: raise it
            finally:
                for task in tasks:
                    task.cancel()
                call.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._raise_for_outcome(call)
        finally:
            self._address = None
            self._in_flight.clear()
            await channel.close()

    async def _connect(self, channel: grpc.aio.Channel, address: str) -> None:
        """Wait for READY; fail fast on TRANSIENT_FAILURE (refused, bad TLS) or timeout."""
        ready, failed = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
        try:
            async with asyncio.timeout(self.options.connect_timeout_s):
                state = channel.get_state(try_to_connect=True)
                while state is not ready:
                    if state is failed:
                        raise _StreamEnded(f"cannot connect to {address}")
                    await channel.wait_for_state_change(state)
                    state = channel.get_state(try_to_connect=True)
        except TimeoutError:
            raise _StreamEnded(f"no connection to {address} within the timeout") from None

    async def _read(self, call: grpc.aio.StreamStreamCall[bytes, Ack]) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):  # the call's status tells the outcome
            async for ack in call:
                if ack.stored_through > self.spool.last_sequence:
                    log.warning(
                        "aggregator acked a sequence never sent: does another source share "
                        "this identity (a cloned machine id)?",
                        stored_through=ack.stored_through,
                        last_sent=self.spool.last_sequence,
                    )
                self.spool.ack(ack.stored_through)
                while self._in_flight and self._in_flight[0][1] <= ack.stored_through:
                    self._in_flight.popleft()
                self._progress.set()
                if self.options.merge > 1:
                    self._wake.set()  # entries held for this ack may go

    async def _write(self, call: grpc.aio.StreamStreamCall[bytes, Ack]) -> None:
        sent = self.spool.acked  # a new stream replays everything un-acked
        merge = self.options.merge
        chunk = max(_READ_CHUNK, merge)
        try:
            while True:
                self._wake.clear()
                self._progress.clear()
                room = self.options.window - len(self._in_flight)
                if room <= 0:
                    await self._progress.wait()
                    continue
                after = max(sent, self.spool.acked)
                if self._holding(after):
                    await self._wake.wait()
                    continue
                entries = self.spool.pending(after, min(room * merge, chunk))
                if not entries:
                    await self._wake.wait()
                    continue
                for first, last, data in self._group(entries, room):
                    await call.write(data)
                    sent = last
                    self._written_through = max(self._written_through, last)
                    self._in_flight.append((first, last))
                    self._messages += 1
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return  # the call ended; the reader sees why

    def _holding(self, after: int) -> bool:
        """Whether the entries after ``after`` wait for an ack to go out merged: they can be
        merged, a message is in flight, and fewer than ``merge`` of them are waiting."""
        return (
            self.options.merge > 1
            and bool(self._in_flight)
            and after >= self._written_through
            and self.spool.count_after(after) < self.options.merge
        )

    def _group(self, entries: list[tuple[int, bytes]], room: int) -> list[tuple[int, int, bytes]]:
        """At most ``room`` messages ``(first, last, data)`` of ``entries``, in order: runs of
        entries never written merged up to ``merge`` and ``_MERGE_MAX_BYTES``, others alone."""
        merge = self.options.merge
        out: list[tuple[int, int, bytes]] = []
        i, n = 0, len(entries)
        while i < n and len(out) < room:
            seq, data = entries[i]
            j, size = i + 1, len(data)
            if merge > 1 and seq > self._written_through:
                while j < n and j - i < merge and size + len(entries[j][1]) <= _MERGE_MAX_BYTES:
                    size += len(entries[j][1])
                    j += 1
            if j - i == 1:
                out.append((seq, seq, data))
            else:
                out.append((seq, entries[j - 1][0], b"".join(d for _, d in entries[i:j])))
            i = j
        return out

    async def _raise_for_outcome(self, call: grpc.aio.StreamStreamCall[bytes, Ack]) -> None:
        code = await call.code()
        if code is grpc.StatusCode.OK:
            return
        details = await call.details() or ""
        trailing = await call.trailing_metadata() or ()
        rejected = [str(v) for k, v in trailing if k == REJECTED_SEQ]
        if code in _REJECTION_CODES and rejected and rejected[0].isdigit():
            seq = int(rejected[0])
            first = next((f for f, last in self._in_flight if last == seq), seq)
            raise _Rejected(seq, f"{code.name}: {details}", first)
        raise _StreamEnded(f"{code.name}: {details}")

    def _quarantine(self, seq: int, reason: str) -> None:
        path = self.spool.quarantine(seq, reason)
        if path is not None:
            self._quarantined += 1
        self._progress.set()
        log.error(
            "aggregator refused a batch; quarantined it",
            sequence=seq,
            reason=reason,
            path=None if path is None else str(path),
        )


class _StreamEnded(Exception):  # noqa: N818 - an outcome, not an error of ours
    """The stream could not be opened or broke; back off and try the next address."""


def _raw(data: bytes) -> bytes:
    return data
