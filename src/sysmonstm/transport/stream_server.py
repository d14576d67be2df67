"""The server half of an ingest stream, for any domain: batches up, acks down.

The request stream is read in order and each batch goes through the domain's pipeline. A
second task writes an ``Ack`` whenever the source's durable watermark moves. A batch that
cannot be accepted ends the call with INVALID_ARGUMENT or RESOURCE_EXHAUSTED and the trailing
metadata ``sysmonstm-rejected-seq``; the batches before it are unaffected.
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
from sysmonstm.v1.common_pb2 import Ack

log = structlog.get_logger(__name__)

REJECTED_SEQ = "sysmonstm-rejected-seq"


def _sequence_of(message: object) -> int:
    seq = getattr(message, "sequence", 0)
    return int(seq) if isinstance(seq, int) else 0


class IngestStream:
    """Handles ``rpc Stream(stream Batch) returns (stream Ack)`` for one pipeline."""

    def __init__(self, pipeline: Pipeline[Any], parse: Callable[[bytes], object],
                 kind: str) -> None:
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

    async def stream(self, _requests: object, context: grpc.aio.ServicerContext[bytes, Ack]
                     ) -> None:
        self.open_streams += 1
        peer = context.peer()
        source: str | None = None
        acked = 0
        wake = asyncio.Event()
        writing = asyncio.Lock()  # a write must never be cancelled halfway

        async def acker() -> None:
            nonlocal acked
            while True:
                if source is None:
                    await wake.wait()
                    wake.clear()
                    continue
                mark = await self.pipeline.wait_stored(source, acked)
                async with writing:
                    await context.write(Ack(stored_through=mark))
                    acked = mark

        async def stop_acker() -> None:
            async with writing:
                ack_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ack_task

        ack_task = asyncio.create_task(acker())
        try:
            while True:
                data: object = await context.read()
                if data is grpc.aio.EOF:
                    break
                assert isinstance(data, bytes)
                seq = 0
                try:
                    message = self._parse(data)
                    seq = _sequence_of(message)
                    admission = await self.pipeline.submit(message, expect_source=source)
                except InvalidInputError as exc:
                    await stop_acker()
                    await self._reject(context, peer, seq, exc)
                    return
                if source is None:  # acks (also for replayed duplicates) come from acker
                    source = admission.source
                    wake.set()
            # the sender half-closed: answer once everything it sent is stored
            if source is not None:
                accepted = self.pipeline.accepted_through(source)
                mark = await self.pipeline.wait_stored(source, accepted - 1)
                await stop_acker()
                if mark > acked:
                    await context.write(Ack(stored_through=mark))
        finally:
            if not ack_task.done():
                await stop_acker()
            self.open_streams -= 1

    def _parse(self, data: bytes) -> object:
        try:
            return self.parse(data)
        except DecodeError as exc:
            raise InvalidInputError(f"not a valid {self.kind} message: {exc}") from exc

    async def _reject(self, context: grpc.aio.ServicerContext[bytes, Ack], peer: str, seq: int,
                      exc: InvalidInputError) -> None:
        code = (grpc.StatusCode.RESOURCE_EXHAUSTED if exc.code == "RESOURCE_EXHAUSTED"
                else grpc.StatusCode.INVALID_ARGUMENT)
        log.warning("batch rejected", kind=self.kind, peer=peer, sequence=seq,
                    reason=exc.reason)
        context.set_trailing_metadata(((REJECTED_SEQ, str(seq)),))
        await context.abort(code, f"{self.kind} batch {seq} rejected: {exc.reason}")
