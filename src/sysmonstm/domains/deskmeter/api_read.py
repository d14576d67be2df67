"""Deskmeter's read routes: machines, what is open now, what was at an instant, intervals of
a range, summaries, exports. Local times in requests are read in ``tz`` (default: the
machine's zone, or the zone every machine shares, else UTC); answers are UTC ms and seconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from sysmonstm.domains.deskmeter.api import Questions, check_machine, json_response, now_ms
from sysmonstm.domains.deskmeter.export import (
    check_format,
    csv_chunks,
    interval_json,
    iter_intervals,
    json_chunks,
)
from sysmonstm.domains.deskmeter.model import MachineInfo, SummaryBy
from sysmonstm.errors import InvalidInputError

MAX_LIMIT = 100_000
_BY = ", ".join(b.value for b in SummaryBy)

Machine = Annotated[
    str | None, Query(max_length=128, description="machine id (default: every machine)")
]
Tz = Annotated[
    str | None,
    Query(max_length=64, description="IANA zone for local times (default: the machine's)"),
]
TIME_HELP = (
    "Unix ms, ISO 8601, 'yesterday 15:00', 'today 9:30', '15:00', 'monday', '-2h', "
    "'2h ago' (local forms in tz)"
)
TimeText = Annotated[str | None, Query(max_length=64, description=TIME_HELP)]


class IntervalOut(BaseModel):
    machine: str
    start_ms: int
    end_ms: int = Field(description="the end, or for an open interval its last event")
    duration_s: float
    workspace_index: int
    workspace: str
    task: str
    idle: bool
    open: bool = Field(description="still extended by heartbeats or closed by a switch")
    time_zone: str


class MachineOut(BaseModel):
    id: str
    host: str
    time_zone: str
    last_seen_ms: int = Field(description="time of the machine's last event")
    age_s: float = Field(description="seconds since then, by the gateway's clock")
    stored_through: int = Field(description="highest batch sequence stored")
    current: IntervalOut | None = Field(description="the open interval, if any")


class TotalOut(BaseModel):
    key: str
    active_s: float
    idle_s: float
    intervals: int


class SummaryOut(BaseModel):
    from_ms: int
    to_ms: int
    period: str | None
    time_zone: str
    by: str
    machine: str | None
    active_s: float
    idle_s: float
    totals: list[TotalOut]


def _machine_json(info: MachineInfo, now: int) -> dict[str, Any]:
    m = info.machine
    return {
        "id": m.id,
        "host": m.host or m.id,
        "time_zone": m.time_zone,
        "last_seen_ms": info.last_event_ms,
        "age_s": round(max(0, now - info.last_event_ms) / 1000, 3),
        "stored_through": info.stored_through,
        "current": interval_json(info.current) if info.current is not None else None,
    }


def _summary_by(text: str) -> SummaryBy:
    try:
        return SummaryBy(text.strip().lower())
    except ValueError:
        raise InvalidInputError(f"by: {text[:32]!r} is not one of {_BY}") from None


def read_router(q: Questions) -> APIRouter:
    router = APIRouter()

    @router.get("/machines", response_model=list[MachineOut], summary="Every machine")
    async def machines() -> Response:
        """Every machine that ever reported: identity, zone, last event, the open interval;
        most recently heard first."""
        now = now_ms()
        return json_response([_machine_json(m, now) for m in await q.machines()])

    @router.get("/current", summary="The open interval of each machine now")
    async def current(machine: Machine = None) -> Response:
        """``{"time_ms", "current": [interval + "host"]}``: the open interval of every machine
        (or of ``machine``); a machine whose watcher stopped has none."""
        check_machine(machine)
        now = now_ms()
        out = []
        for info in await q.now():
            if info.current is None or machine not in (None, info.machine.id):
                continue
            body = interval_json(info.current)
            body["host"] = info.machine.host or info.machine.id
            out.append(body)
        return json_response({"time_ms": now, "current": out})

    @router.get(
        "/at",
        summary="What each machine was doing at an instant",
        responses={400: {"description": "Unreadable time or zone"}},
    )
    async def at(
        time: Annotated[str, Query(max_length=64, description=TIME_HELP)],
        machine: Machine = None,
        tz: Tz = None,
    ) -> Response:
        """``{"time_ms", "time_zone", "intervals"}``: the interval covering ``time`` on each
        machine (or on ``machine``), one per machine at most."""
        check_machine(machine)
        t_ms, zone = await q.instant(time, tz, machine, "time")
        found = await (await q.store()).at(t_ms, machine)
        return json_response(
            {"time_ms": t_ms, "time_zone": zone, "intervals": [interval_json(i) for i in found]}
        )

    @router.get(
        "/intervals",
        summary="Intervals overlapping a range, clipped to it",
        responses={400: {"description": "Unreadable time, zone or an empty range"}},
    )
    async def intervals(
        from_: Annotated[TimeText, Query(alias="from")] = None,
        to: TimeText = None,
        machine: Machine = None,
        tz: Tz = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10_000,
    ) -> Response:
        """``{"from_ms", "to_ms", "time_zone", "intervals", "truncated"}``, by start then
        machine; ``from`` defaults to 24 hours ago, ``to`` to now. ``truncated`` says there
        are more than ``limit`` (ask again from the last start, or use the export)."""
        check_machine(machine)
        span = await q.span(from_, to, tz, machine, default_from="-24h")
        found = await (await q.store()).intervals(span.from_ms, span.to_ms, machine, limit + 1)
        return json_response(
            {
                "from_ms": span.from_ms,
                "to_ms": span.to_ms,
                "time_zone": span.zone,
                "intervals": [interval_json(i) for i in found[:limit]],
                "truncated": len(found) > limit,
            }
        )

    @router.get(
        "/summary",
        response_model=SummaryOut,
        summary="Totals in seconds by task, workspace, machine or day",
        responses={400: {"description": "Unreadable time, zone, period or grouping"}},
    )
    async def summary(
        from_: Annotated[TimeText, Query(alias="from")] = None,
        to: TimeText = None,
        period: Annotated[
            str | None,
            Query(max_length=16, description="day, week (from Monday), month or year"),
        ] = None,
        at: Annotated[TimeText, Query(description="an instant in the period (default now)")] = None,
        by: Annotated[str, Query(max_length=16, description=_BY)] = "task",
        machine: Machine = None,
        tz: Tz = None,
    ) -> Response:
        """Active and idle seconds per group over ``[from, to)`` or over the calendar
        ``period`` in ``tz`` holding ``at``; without either, today. Largest active first."""
        check_machine(machine)
        group = _summary_by(by)
        if period is None and from_ is None and to is None:
            period = "day"
        span = await q.span(from_, to, tz, machine, period=period, at=at)
        totals = await (await q.store()).summary(span.from_ms, span.to_ms, group, machine)
        return json_response(
            {
                "from_ms": span.from_ms,
                "to_ms": span.to_ms,
                "period": span.period,
                "time_zone": span.zone,
                "by": group.value,
                "machine": machine,
                "active_s": round(sum(t.active_s for t in totals), 3),
                "idle_s": round(sum(t.idle_s for t in totals), 3),
                "totals": [
                    {
                        "key": t.key,
                        "active_s": t.active_s,
                        "idle_s": t.idle_s,
                        "intervals": t.intervals,
                    }
                    for t in totals
                ],
            }
        )

    @router.get(
        "/export",
        summary="Every interval of a range as CSV or JSON (streamed)",
        responses={
            200: {"content": {"text/csv": {}, "application/json": {}}},
            400: {"description": "Unreadable time, zone or format"},
        },
    )
    async def export(
        from_: Annotated[TimeText, Query(alias="from")] = None,
        to: TimeText = None,
        machine: Machine = None,
        tz: Tz = None,
        format: Annotated[str, Query(max_length=8, description="csv or json")] = "csv",
    ) -> StreamingResponse:
        """Intervals overlapping ``[from, to)`` clipped to it, by start then machine, as a
        download (``Content-Disposition``). ``from`` is required."""
        check_machine(machine)
        fmt = check_format(format)
        if from_ is None:
            raise InvalidInputError("from is required")
        span = await q.span(from_, to, tz, machine)
        store = await q.store()
        rows = iter_intervals(store, span.from_ms, span.to_ms, machine)
        name = f"deskmeter-{span.from_ms}-{span.to_ms}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if fmt == "csv":
            return StreamingResponse(
                csv_chunks(rows), media_type="text/csv; charset=utf-8", headers=headers
            )
        header = {"from_ms": span.from_ms, "to_ms": span.to_ms, "machine": machine}
        return StreamingResponse(
            json_chunks(rows, header), media_type="application/json", headers=headers
        )

    return router
