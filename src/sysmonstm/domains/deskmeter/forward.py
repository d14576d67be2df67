"""Gateway → aggregator: hand one ``DeskBatch`` to the aggregator and wait until it is stored.

Used by ``POST /api/v1/deskmeter/events`` (the GNOME Shell extension on Wayland, which cannot
open a gRPC stream itself). Each batch travels on a short ``DeskmeterIngest.Stream`` call —
one batch up, half-close, Acks down — to the first of ``settings.deskmeter.aggregators``
that answers, so the batch goes through the same validation, deduplication and storage as a
watcher's. Outcomes: the ``stored_through`` of the last Ack (at least the batch's sequence;
a replayed sequence is acknowledged without being stored twice), ``InvalidInputError`` with
the aggregator's reason when it refuses the batch, ``NoAggregatorError`` when none answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import structlog

from sysmonstm.config import DeskmeterSettings
from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.transport.tls import channel_credentials
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.deskmeter_pb2 import DeskBatch

log = structlog.get_logger(__name__)

METHOD = "/sysmonstm.v1.DeskmeterIngest/Stream"
_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT: "INVALID_ARGUMENT",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
}


class NoAggregatorError(BackendError):
    """No aggregator took the batch (none reachable, or each failed); nothing was stored."""


class Forwarder:
    """Channels to ``addresses`` (kept open, one per address) and the call that uses them.

    ``timeout_s`` bounds each attempt: connecting, storing and acknowledging one batch.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not addresses:
            raise ValueError("at least one aggregator address is needed")
        self.addresses = tuple(addresses)
        self.timeout_s = timeout_s
        self._credentials = credentials
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            # gRPC's own reconnect backoff grows to 2 minutes; a restarted aggregator must be
            # found by the next request, not minutes later
            opts = [
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ]
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(address, options=opts)
            else:
                channel = grpc.aio.secure_channel(address, self._credentials, options=opts)
            self._channels[address] = channel
        return channel

    async def send(self, batch: DeskBatch) -> int:
        """Store ``batch`` through the first aggregator that answers; its watermark after."""
        failures: list[str] = []
        for address in self.addresses:
            try:
                return await self._attempt(address, batch)
            except _Unreachable as exc:
                log.warning(
                    "aggregator did not take a forwarded batch", address=address, error=str(exc)
                )
                failures.append(f"{address}: {exc}")
        raise NoAggregatorError("no aggregator stored the batch (" + "; ".join(failures) + ")")

    async def _attempt(self, address: str, batch: DeskBatch) -> int:
        call = self._channel(address).stream_stream(
            METHOD,
            request_serializer=DeskBatch.SerializeToString,
            response_deserializer=Ack.FromString,
        )(timeout=self.timeout_s)
        stored = 0
        try:
            await call.write(batch)
            await call.done_writing()
            async for ack in call:
                stored = max(stored, ack.stored_through)
        except grpc.aio.AioRpcError:
            pass  # the call's status below says what happened
        except asyncio.CancelledError:
            call.cancel()
            raise
        code = await call.code()
        details = await call.details() or code.name
        if code in _REFUSALS:
            raise InvalidInputError(details, code=_REFUSALS[code])
        if code is not grpc.StatusCode.OK:
            raise _Unreachable(f"{code.name}: {details}")
        if stored < batch.sequence:
            raise _Unreachable(f"stream ended with stored_through {stored} < {batch.sequence}")
        return stored

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()


class _Unreachable(Exception):  # noqa: N818 - an outcome of one attempt, not an error of ours
    """This aggregator did not store the batch; try the next."""


def forwarder_for(settings: DeskmeterSettings) -> Forwarder:
    """A ``Forwarder`` to ``settings.aggregators``, over TLS when ``settings.tls`` names a
    CA or a client certificate (the watcher's own client settings)."""
    tls = settings.tls
    creds = None
    if tls.ca or tls.cert:
        creds = channel_credentials(tls.ca, tls.cert, tls.key)
    return Forwarder(settings.aggregators, credentials=creds)
