"""One ingest stream from a test: send batches, half-close, collect acks and the status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from sysmonstm.v1.common_pb2 import Ack


@dataclass
class Outcome:
    acks: list[int]
    code: grpc.StatusCode
    details: str
    trailing: tuple[tuple[str, str | bytes], ...]


async def exchange(address: str, method: str, batches: Iterable[Message | bytes]) -> Outcome:
    """Send ``batches`` on one ``method`` stream to ``address``, half-close, collect the acks
    and the final status.

    Writes and reads run side by side, as a collector's do; a write refused because the
    server already ended the call is not an error of its own: the call's status says why.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            method, request_serializer=lambda b: b, response_deserializer=Ack.FromString
        )()

        async def writer() -> None:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                for b in batches:
                    await call.write(b if isinstance(b, bytes) else b.SerializeToString())
                await call.done_writing()

        sending = asyncio.create_task(writer())
        acks: list[int] = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            while (ack := await call.read()) is not grpc.aio.EOF:
                assert isinstance(ack, Ack)
                acks.append(ack.stored_through)
        await sending
        return Outcome(
            acks,
            await call.code(),
            await call.details() or "",
            tuple(await call.trailing_metadata() or ()),
        )
