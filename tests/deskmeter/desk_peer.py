"""A small real gRPC server speaking ``DeskmeterIngest/Stream``: the watcher's peer in unit tests.

It records every batch (replays included), keeps each sequence once, and acks what it kept,
like the aggregator does for one source. It can start late, or stop and start again on
the same port, to play an aggregator that is away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc

from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.deskmeter_pb2 import DeskBatch, DeskEvent
from tests.conftest import free_port


class DeskPeer:
    """Receiver of Deskmeter batches on ``address``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.received: list[DeskBatch] = []
        self.stored: dict[int, DeskBatch] = {}
        self.arrived_at: dict[int, float] = {}  # sequence → time.monotonic() of arrival
        self._server: grpc.aio.Server | None = None

    async def start(self) -> DeskPeer:
        server = grpc.aio.server()
        rpc = grpc.stream_stream_rpc_method_handler(
            self._stream,
            request_deserializer=DeskBatch.FromString,
            response_serializer=Ack.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("sysmonstm.v1.DeskmeterIngest", {"Stream": rpc})]
        )
        server.add_insecure_port(self.address)
        await server.start()
        self._server = server
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    def events(self) -> list[DeskEvent]:
        """Every stored event, in sequence order."""
        return [e for seq in sorted(self.stored) for e in self.stored[seq].events]

    def switches(self) -> list[DeskEvent]:
        return [e for e in self.events() if e.kind == DeskEvent.SWITCH]

    async def _stream(
        self,
        requests: AsyncIterator[DeskBatch],
        context: grpc.aio.ServicerContext[DeskBatch, Ack],
    ) -> AsyncIterator[Ack]:
        async for batch in requests:
            self.received.append(batch)
            if batch.sequence not in self.stored:
                self.stored[batch.sequence] = batch
                self.arrived_at[batch.sequence] = time.monotonic()
            yield Ack(stored_through=max(self.stored))


async def eventually(
    probe: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Wait until ``probe()`` is truthy (a functional deadline, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)
