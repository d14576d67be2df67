"""Scripted Deskmeter sessions: the bus envelopes an aggregator publishes, with exact payloads.

``Session`` plays one machine's desktop on a synthetic clock (seconds after ``T0``) and
returns what the aggregator would publish for each switch or heartbeat, in the form
docs/deskmeter.md "Bus" defines: ``workspace.switch.<machine>`` with the interval the switch
closed, ``workspace.heartbeat.<machine>`` with the open interval's duration. ``send`` streams
a wire ``DeskBatch`` to a real aggregator, as a watcher does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from sysmonstm.events.envelope import Envelope, make_envelope
from sysmonstm.v1.common_pb2 import Ack
from sysmonstm.v1.deskmeter_pb2 import DeskBatch

T0 = 1_796_400_000_000  # 2026-12-04 16:00 UTC, the example time of docs/deskmeter.md


def ms(seconds: float) -> int:
    """Absolute time ``seconds`` after ``T0``."""
    return T0 + round(seconds * 1000)


@dataclass
class _State:
    workspace_index: int
    workspace: str
    task: str
    idle: bool
    start_ms: int


class Session:
    """One machine's desktop; each call returns the envelope the aggregator publishes."""

    def __init__(
        self,
        machine: str = "m-1a2b",
        host: str = "laptop",
        time_zone: str = "Europe/Berlin",
    ) -> None:
        self.machine = machine
        self.host = host
        self.time_zone = time_zone
        self.state: _State | None = None
        self.sent = 0

    def switch(
        self,
        at_s: float,
        *,
        workspace: str | None = None,
        index: int | None = None,
        task: str | None = None,
        idle: bool | None = None,
        idle_ms: int = 0,
    ) -> Envelope:
        """A switch at ``T0 + at_s`` to a state that keeps whatever is not given."""
        t = ms(at_s)
        old = self.state
        new = _State(
            workspace_index=index if index is not None else (old.workspace_index if old else 0),
            workspace=workspace if workspace is not None else (old.workspace if old else "Code"),
            task=task if task is not None else (old.task if old else ""),
            idle=idle if idle is not None else (old.idle if old else False),
            start_ms=t,
        )
        closed = None
        if old is not None:
            closed = {
                "start_ms": old.start_ms,
                "end_ms": t,
                "workspace": old.workspace,
                "task": old.task,
                "idle": old.idle,
            }
        self.state = new
        return self._envelope("switch", t, idle_ms, closed)

    def heartbeat(self, at_s: float, *, idle_ms: int = 0) -> Envelope:
        """A heartbeat at ``T0 + at_s`` in the current state."""
        assert self.state is not None, "a session starts with a switch"
        return self._envelope("heartbeat", ms(at_s), idle_ms, None)

    def _envelope(self, kind: str, t: int, idle_ms: int, closed: dict[str, Any] | None) -> Envelope:
        state = self.state
        assert state is not None
        payload = {
            "machine": self.machine,
            "host": self.host,
            "time_ms": t,
            "kind": kind,
            "workspace_index": state.workspace_index,
            "workspace": state.workspace,
            "task": state.task,
            "idle": state.idle,
            "idle_ms": idle_ms,
            "time_zone": self.time_zone,
            "current": {"start_ms": state.start_ms, "duration_s": (t - state.start_ms) / 1000},
            "closed": closed,
        }
        self.sent += 1
        return make_envelope(
            f"workspace.{kind}.{self.machine}",
            payload,
            source="aggregator",
            event_id=f"{self.machine}-{self.sent}",
            time_ms=t,
        )


async def send(address: str, batch: DeskBatch) -> None:
    """Stream one batch to the aggregator and wait until it is stored."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            "/sysmonstm.v1.DeskmeterIngest/Stream",
            request_serializer=DeskBatch.SerializeToString,
            response_deserializer=Ack.FromString,
        )

        async def one() -> AsyncIterator[DeskBatch]:
            yield batch

        async for ack in call(one()):
            if ack.stored_through >= batch.sequence:
                return
