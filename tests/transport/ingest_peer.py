"""A small real gRPC server speaking ``MetricsIngest/Stream``, as the sender's peer in tests.

It records every batch it receives, stores each sequence once (dedupe), acks what it stored
(up to a limit a test may set), refuses chosen sequences the way the aggregator does, and can
be stopped and started again on the same port. Dedupe and acks are by sequence alone, as
for one source; tests with several sources look at ``received``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from sysmonstm.transport.status import REJECTED_SEQ
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.metrics_pb2 import MetricBatch
from tests.conftest import free_port


class IngestPeer:
    """Receiver of metric batches on ``address``."""

    def __init__(
        self, port: int | None = None, credentials: grpc.ServerCredentials | None = None
    ) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.credentials = credentials
        self.received: list[MetricBatch] = []  # every batch, replays included
        self.stored: dict[int, MetricBatch] = {}  # by sequence, each once
        self.reject: dict[int, tuple[grpc.StatusCode, str]] = {}
        self.ack_limit: int | None = None
        self.streams = 0
        self._server: grpc.aio.Server | None = None
        self._ack_wake = asyncio.Event()

    async def start(self) -> IngestPeer:
        server = grpc.aio.server()
        rpc = grpc.stream_stream_rpc_method_handler(
            self._stream,
            request_deserializer=MetricBatch.FromString,
            response_serializer=Ack.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("sysmonstm.v1.MetricsIngest", {"Stream": rpc})]
        )
        target = f"127.0.0.1:{self.port}"
        if self.credentials is None:
            server.add_insecure_port(target)
        else:
            server.add_secure_port(target, self.credentials)
        await server.start()
        self._server = server
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    def stored_through(self) -> int:
        return max(self.stored, default=0)

    def limit_acks(self, through: int | None) -> None:
        """Ack no further than ``through`` (0: hold every ack; None: ack all stored)."""
        self.ack_limit = through
        self._ack_wake.set()

    async def _stream(
        self,
        requests: AsyncIterator[MetricBatch],
        context: grpc.aio.ServicerContext[MetricBatch, Ack],
    ) -> None:
        self.streams += 1
        reader = asyncio.create_task(self._read(requests))
        acked = 0
        try:
            while True:
                self._ack_wake.clear()  # before looking, so no arrival goes unnoticed
                mark = self.stored_through()
                if self.ack_limit is not None:
                    mark = min(mark, self.ack_limit)
                if mark > acked:
                    await context.write(Ack(stored_through=mark))
                    acked = mark
                if reader.done():
                    break
                waker = asyncio.create_task(self._ack_wake.wait())
                await asyncio.wait({reader, waker}, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
            refused = reader.result()
            if refused is not None:
                seq, code, reason = refused
                context.set_trailing_metadata(((REJECTED_SEQ, str(seq)),))
                await context.abort(code, reason)
        finally:
            reader.cancel()

    async def _read(
        self, requests: AsyncIterator[MetricBatch]
    ) -> tuple[int, grpc.StatusCode, str] | None:
        async for batch in requests:
            seq = batch.sequence
            if seq in self.reject:
                return (seq, *self.reject[seq])
            self.received.append(batch)
            self.stored.setdefault(seq, batch)
            self._ack_wake.set()
        return None


async def eventually(predicate: Callable[[], bool], within_s: float = 10.0) -> None:
    """Return once ``predicate()`` holds, polling; fail the test after ``within_s``."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 - conditions span sender, spool and peer
            await asyncio.sleep(0.01)
