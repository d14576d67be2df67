"""The server half of an ingest stream, for any domain: batches up, acks down.

The request stream is read in order and each batch goes through the domain's pipeline. A
second task writes an ``Ack`` whenever the source's durable watermark moves (also at once
for a replayed batch that was already stored). A batch that cannot be accepted ends the call
with INVALID_ARGUMENT or RESOURCE_EXHAUSTED and the trailing metadata
``sysmonstm-rejected-seq``; the batches before it are unaffected. One stream carries one
source.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
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


class _Call:
    """One open stream: its source, what was acked, and the task that writes acks."""

    def __init__(self, pipeline: Pipeline[Any], context: Context) -> None:
        self.pipeline = pipeline
        self.context = context
        self.source: str | None = None
        self.acked = 0
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
        while True:
            mark = await self.pipeline.wait_stored(self.source, self.acked)
            async with self._writing:
                await self.context.write(Ack(stored_through=mark))
                self.acked = mark

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
        self, pipeline: Pipeline[Any], parse: Callable[[bytes], object], kind: str
    ) -> None:
        self.pipeline = pipeline
        self.parse = parse
        self.kind = kind
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
        call = _Call(self.pipeline, context)
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
