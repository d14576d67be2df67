"""Deskmeter's write routes: set a machine's task, take events from the GNOME Shell extension.

Neither writes intervals itself, so every machine's timeline keeps one writer path (the
aggregator): ``PUT /task`` publishes ``deskmeter.task.<machine>`` for the machine's watcher
to apply with a switch; ``POST /events`` forwards the batch to an aggregator over gRPC and
answers once it is stored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from sysmonstm.domains.deskmeter.api import Questions, check_machine, json_response, now_ms
from sysmonstm.domains.deskmeter.forward import Forwarder, NoAggregatorError, forwarder_for
from sysmonstm.domains.deskmeter.taskfeed import MAX_TASK_CHARS, task_topic
from sysmonstm.errors import InvalidInputError
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.deskmeter_pb2 import DeskBatch, DeskEvent

FORWARDER = "deskmeter.forwarder"
_KINDS = {"switch": DeskEvent.SWITCH, "heartbeat": DeskEvent.HEARTBEAT}


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    machine: str = Field(min_length=1, max_length=128, description="machine id")
    task: str = Field(max_length=MAX_TASK_CHARS, description='the task; "" clears it')


class TaskOut(BaseModel):
    machine: str
    task: str
    time_ms: int


class EventIn(BaseModel):
    """One observation (``DeskEvent`` on the wire; ``time_zone`` comes from the batch)."""

    model_config = ConfigDict(extra="forbid")

    time_ms: int = Field(ge=0, description="Unix ms")
    kind: Literal["switch", "heartbeat"]
    workspace_index: int = Field(ge=0, le=2**31 - 1, description="0-based workspace number")
    workspace: str = Field("", max_length=256)
    task: str = Field("", max_length=MAX_TASK_CHARS, description='"" lets the server map it')
    idle: bool = False
    idle_ms: int = Field(0, ge=0, le=2**62)


class EventsIn(BaseModel):
    """A batch from one machine, as ``DeskBatch`` carries it."""

    model_config = ConfigDict(extra="forbid")

    machine: str = Field(min_length=1, max_length=128, description="machine id")
    host: str = Field("", max_length=253)
    time_zone: str = Field(min_length=1, max_length=64, description="IANA zone")
    heartbeat_ms: int = Field(0, ge=0, le=2**32 - 1, description="0: the default, 10 000")
    sequence: int = Field(
        ge=1,
        le=2**63 - 1,
        description="grows with every batch, across restarts too (a batch at or below the "
        "machine's stored sequence is a replay: acknowledged, not stored again)",
    )
    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class StoredOut(BaseModel):
    stored_through: int = Field(description="every batch of the machine up to this is stored")


def to_batch(body: EventsIn) -> DeskBatch:
    """The request as the wire's ``DeskBatch``."""
    return DeskBatch(
        source=SourceIdentity(machine_id=body.machine, hostname=body.host),
        sequence=body.sequence,
        heartbeat_ms=body.heartbeat_ms,
        events=[
            DeskEvent(
                time_unix_ms=e.time_ms,
                kind=_KINDS[e.kind],
                workspace_index=e.workspace_index,
                workspace=e.workspace,
                task=e.task,
                idle=e.idle,
                idle_ms=e.idle_ms,
                time_zone=body.time_zone,
            )
            for e in body.events
        ],
    )


def write_router(q: Questions) -> APIRouter:
    router = APIRouter()

    async def forwarder() -> Forwarder:
        async def opener() -> Forwarder:
            return forwarder_for(q.core.settings.deskmeter)

        return await q.core.shared(FORWARDER, opener)

    @router.put(
        "/task",
        status_code=202,
        response_model=TaskOut,
        summary="Set the current task of a machine",
        responses={
            400: {"description": "Bad machine id or task"},
            404: {"description": "No such machine"},
        },
    )
    async def put_task(body: Annotated[TaskIn, Body()]) -> Response:
        """Publishes ``deskmeter.task.<machine>`` ``{"machine", "task", "time_ms"}`` and
        answers 202: the machine's watcher applies it with a switch (so it shows in the
        intervals once the watcher has sent it). The machine must have reported before."""
        machine = check_machine(body.machine)
        task = body.task.strip()
        if not task.isprintable():
            raise InvalidInputError("task: control characters are not allowed")
        if machine not in {m.machine.id for m in await q.machines()}:
            raise HTTPException(
                404, f"no machine {machine!r}: its watcher has never reported to this gateway"
            )
        payload = {"machine": machine, "task": task, "time_ms": now_ms()}
        await q.core.bus.publish(task_topic(body.machine), payload, source="gateway")
        return json_response(payload, status=202)

    @router.post(
        "/events",
        response_model=StoredOut,
        summary="Store a batch of events (the GNOME Shell extension on Wayland)",
        responses={
            400: {"description": "The aggregator refused the batch (its reason)"},
            503: {"description": "No aggregator reachable; nothing stored"},
        },
    )
    async def post_events(body: Annotated[EventsIn, Body()]) -> Response:
        """Forwards the batch to an aggregator (``settings.deskmeter.aggregators``, first
        that answers) and answers once it is stored, with the machine's stored sequence. A
        refused batch answers 400 with the aggregator's reason and nothing of it is kept."""
        check_machine(body.machine)
        try:
            stored = await (await forwarder()).send(to_batch(body))
        except NoAggregatorError as exc:
            raise HTTPException(503, str(exc)) from exc
        return json_response({"stored_through": stored})

    return router
