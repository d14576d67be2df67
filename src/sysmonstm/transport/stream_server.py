"""The server half of an ingest stream, for any domain: batches up, acks down.

The request stream is read in order and each batch goes through the domain's pipeline. A
second task writes an ``Ack`` whenever the source's durable watermark moves (also at once
for a replayed batch that was already stored), or, with ``AckPacing`` (the metrics domain),
at most every few seconds while fewer than a handful of batches wait for it: each ack wakes
the sender's gRPC threads and event loop, the largest part of a 1 Hz collector's CPU. A batch
that cannot be accepted ends the call with INVALID_ARGUMENT or RESOURCE_EXHAUSTED and the
trailing metadata ``sysmonstm-rejected-seq``; the batches before it are unaffected. One
stream carries one source.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError

from sysmonstm.errors import InvalidInputError
from sysmonstm.pipeline import Pipeline
from sysmonstm.transport.status import REJECTED_SEQ
from sysmonstm.v1.common_pb2 import Ack

log = structlog.get_logger(__name__)

# before refusing a stream: how long the client may stay quiet, and at most how long we drain
_DRAIN_QUIET_S = 0.05
_DRAIN_MAX_S = 2.0

Context = grpc.aio.ServicerContext[bytes, Ack]


@dataclass(frozen=True)
class AckPacing:
    """When a stream's stored batches are acked. ``every_s`` 0 (the default): as soon as the
    watermark moves. Above 0: at once for the first ack of a stream and whenever ``batches``
    batches wait, else at most once per ``every_s``. A steady 1 Hz collector then gets an
    ack every ``every_s`` and holds that many more batches in its spool; a sender with a
    backlog (or a load generator) still gets one per ``batches``, well inside its window.
    The sender half-closing is answered at once either way."""

    every_s: float = 0.0
    batches: int = 8

    def __post_init__(self) -> None:
        if not math.isfinite(self.every_s) or self.every_s < 0:
            raise ValueError("every_s must be a finite number of seconds, 0 or more")
        if self.batches < 1:
            raise ValueError("batches must be at least 1")


class _Call:
    """One open stream: its source, what was acked, and the task that writes acks."""

    def __init__(self, pipeline: Pipeline[Any], context: Context, pacing: AckPacing) -> None:
        self.pipeline = pipeline
        self.context = context
        self.pacing = pacing
        self.source: str | None = None
        self.acked = 0
        self._acked_at = -math.inf  # loop time of the last ack written
        self._known = asyncio.Event()
        self._writing = asyncio.Lock()  # a write must never be cancelled halfway
        self._task = asyncio.create_task(self._ack_loop())

    def bind(self, source: str) -> None:
        if self.source is None:
            self.source = source
            self._known.set()

    async def _ack_loop(self) -> None:
        await self._known.wait()
        assert self.source is not None
        loop = asyncio.get_running_loop()
        while True:
            mark = await self.pipeline.wait_stored(self.source, self.acked)
            if self.pacing.every_s > 0:
                mark = await self._paced(mark, self._acked_at + self.pacing.every_s)
            async with self._writing:
                await self.context.write(Ack(stored_through=mark))
                self.acked = mark
                self._acked_at = loop.time()

    async def _paced(self, mark: int, due: float) -> int:
        """The watermark to ack once ``due`` (loop time) has come or ``pacing.batches``
        batches wait, whichever is first."""
        assert self.source is not None
        loop = asyncio.get_running_loop()
        while mark - self.acked < self.pacing.batches and (left := due - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    mark = await self.pipeline.wait_stored(self.source, mark)
            except TimeoutError:
                break
        return await self.pipeline.wait_stored(self.source, self.acked)  # the newest, at once

    async def stop_acks(self) -> None:
        if self._task.done():
            return
        async with self._writing:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def finish(self) -> None:
        """The sender half-closed: answer once everything it sent is stored."""
        if self.source is None:
            return
        accepted = self.pipeline.accepted_through(self.source)
        mark = await self.pipeline.wait_stored(self.source, accepted - 1)
        await self.stop_acks()
        if mark > self.acked:
            await self.context.write(Ack(stored_through=mark))


class IngestStream:
    """Handles ``rpc Stream(stream Batch) returns (stream Ack)`` for one pipeline."""

    def __init__(
        self,
        pipeline: Pipeline[Any],
        parse: Callable[[bytes], object],
        kind: str,
        pacing: AckPacing | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.parse = parse
        self.kind = kind
        self.pacing = pacing or AckPacing()
        self.open_streams = 0

    def handler(self, service: str, method: str = "Stream") -> grpc.GenericRpcHandler:
        rpc = grpc.stream_stream_rpc_method_handler(
            self.stream,
            request_deserializer=lambda b: b,  # parsed here, so garbage gets a clear status
            response_serializer=Ack.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(service, {method: rpc})

    async def stream(self, _requests: object, context: Context) -> None:
        self.open_streams += 1
        call = _Call(self.pipeline, context, self.pacing)
        try:
            while True:
                data: object = await context.read()
                if data is grpc.aio.EOF:
                    break
                assert isinstance(data, bytes)
                seq = 0
                try:
                    message = self._parse(data)
                    seq = getattr(message, "sequence", 0)
                    admission = await self.pipeline.submit(message, expect_source=call.source)
                except InvalidInputError as exc:
                    await call.stop_acks()
                    await self._reject(context, seq, exc)
                    return
                call.bind(admission.source)
            await call.finish()
        finally:
            await call.stop_acks()
            self.open_streams -= 1

    @staticmethod
    async def _drain(context: Context) -> None:
        """Read and drop what the client still has in flight (until it half-closes or goes
        quiet, briefly) before ending the call: a status sent while the client is still
        writing can reach it as INTERNAL, without our code and trailer (grpc/grpc#36066), and
        the sender would back off instead of quarantining the refused batch."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DRAIN_MAX_S
        while (left := deadline - loop.time()) > 0:
            try:
                data: object = await asyncio.wait_for(context.read(), min(_DRAIN_QUIET_S, left))
            except TimeoutError:
                return
            if data is grpc.aio.EOF:
                return

    def _parse(self, data: bytes) -> object:
        try:
            return self.parse(data)
        except DecodeError as exc:
            raise InvalidInputError(f"not a valid {self.kind} message: {exc}") from exc

    async def _reject(self, context: Context, seq: int, exc: InvalidInputError) -> None:
        code = (
            grpc.StatusCode.RESOURCE_EXHAUSTED
            if exc.code == "RESOURCE_EXHAUSTED"
            else grpc.StatusCode.INVALID_ARGUMENT
        )
        log.warning(
            "batch rejected", kind=self.kind, peer=context.peer(), sequence=seq, reason=exc.reason
        )
        await self._drain(context)
        context.set_trailing_metadata(((REJECTED_SEQ, str(seq)),))
        await context.abort(code, f"{self.kind} batch {seq} rejected: {exc.reason}")
