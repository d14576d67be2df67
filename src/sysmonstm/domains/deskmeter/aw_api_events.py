"""``/api/0/buckets/<id>/events…`` and ``…/heartbeat``: ActivityWatch's events (see aw_api)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from sysmonstm.domains.deskmeter.aw_api import (
    PREFIX,
    bucket_found,
    json_body,
    json_response,
    query_time,
    store_of,
)
from sysmonstm.domains.deskmeter.aw_json import event_json, parse_event
from sysmonstm.domains.deskmeter.aw_merge import seconds_to_us
from sysmonstm.domains.deskmeter.aw_store import AwRange
from sysmonstm.errors import InvalidInputError
from sysmonstm.runtime import Core


def events_range(limit: int, start: str | None, end: str | None) -> AwRange:
    """aw-server's event reads: ``start`` down to its millisecond, ``end`` up to the next."""
    start_us, end_us = query_time(start, "start"), query_time(end, "end")
    return AwRange(
        limit,
        None if start_us is None else start_us // 1000 * 1000,
        None if end_us is None else end_us // 1000 * 1000 + 1000,
    )


def events_router(core: Core) -> APIRouter:
    """Reading, inserting and deleting events; heartbeats."""
    router = APIRouter(prefix=PREFIX, tags=["activitywatch"])
    store = store_of(core)

    @router.get("/buckets/{bucket_id}/events", summary="Events, newest first")
    async def events(
        bucket_id: str, limit: int = -1, start: str | None = None, end: str | None = None
    ) -> Response:
        query = events_range(limit, start, end)
        with bucket_found():
            found = await (await store()).events(bucket_id, query)
        return json_response([event_json(e) for e in found])

    @router.post("/buckets/{bucket_id}/events", summary="Insert one event or a list of them")
    async def insert(bucket_id: str, request: Request) -> Response:
        """An event with an ``id`` of this bucket replaces that event. Answers ``null`` as
        aw-server does."""
        body = await json_body(request)
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise InvalidInputError("the body must be an event or a list of events")
        parsed = [parse_event(e, f"events[{i}]") for i, e in enumerate(body)]
        with bucket_found():
            await (await store()).insert(bucket_id, parsed)
        return json_response(None)

    @router.get("/buckets/{bucket_id}/events/count", summary="How many events")
    async def count(bucket_id: str, start: str | None = None, end: str | None = None) -> Response:
        query = AwRange(-1, query_time(start, "start"), query_time(end, "end"), trim=False)
        with bucket_found():
            return json_response(await (await store()).count(bucket_id, query))

    @router.get("/buckets/{bucket_id}/events/{event_id}", summary="One event")
    async def event(bucket_id: str, event_id: int) -> Response:
        with bucket_found():
            found = await (await store()).event(bucket_id, event_id)
        if found is None:
            raise HTTPException(404, f"no event {event_id} in bucket {bucket_id}")
        return json_response(event_json(found))

    @router.delete("/buckets/{bucket_id}/events/{event_id}", summary="Delete one event")
    async def delete_event(bucket_id: str, event_id: int) -> Response:
        with bucket_found():
            deleted = await (await store()).delete_event(bucket_id, event_id)
        return json_response({"success": deleted})

    @router.post("/buckets/{bucket_id}/heartbeat", summary="A heartbeat, merged by pulsetime")
    async def heartbeat(bucket_id: str, request: Request, pulsetime: str | None = None) -> Response:
        """Merged into the latest event when its data is equal and it starts within
        ``pulsetime`` seconds of that event's end; else stored as a new event. Returns the
        stored event."""
        if pulsetime is None:
            raise InvalidInputError("Missing required parameter pulsetime")
        try:
            pulse = float(pulsetime)
        except ValueError:
            raise InvalidInputError(f"pulsetime must be a number, got {pulsetime[:50]!r}") from None
        pulse_us = seconds_to_us(pulse, "pulsetime")
        beat = parse_event(await json_body(request), "heartbeat", keep_id=False)
        with bucket_found():
            stored = await (await store()).heartbeat(bucket_id, beat, pulse_us)
        return json_response(event_json(stored))

    return router
