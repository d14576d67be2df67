"""The ActivityWatch REST API (``/api/0``), so ActivityWatch's watchers and clients work here.

Answers as aw-server (the Python server on PyPI, which aw-client is written against) does:
the same paths, status codes, JSON shapes and serialisation (``aw_json``), heartbeat merging
(``aw_merge``), range reads (events overlapping ``[start, end]``, trimmed to it, newest
first; ``start`` rounded down to the millisecond and ``end`` up to the next one, as
aw-server rounds them). Where aw-server crashes (HTTP 500) on bad input, this answers 400
with a message saying which field is wrong, and stores nothing; a missing bucket is 404.
Error bodies are sysmonstm's ``{"error": {"code", "message"}}``.

Known differences: a heartbeat merges into the bucket's latest event by timestamp (aw-server
keeps a per-process cache of the last heartbeat, which can merge into a stale event after
events were inserted or a bucket re-created); deleting a bucket needs ``?force=1`` as on a
production aw-server (``testing`` is false); ``/api/0/query`` and ``/api/0/log`` are not
served. ``POST /api/0/import`` also turns the export's window and AFK buckets into Deskmeter
intervals (``aw_import``).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

import sysmonstm
from sysmonstm.domains.deskmeter.aw_json import (
    bucket_json,
    loads,
    now_us,
    parse_new_bucket,
    parse_time_us,
)
from sysmonstm.domains.deskmeter.aw_store import AwStore, NoSuchBucketError, aw_store
from sysmonstm.runtime import Core

PREFIX = "/api/0"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


@contextlib.contextmanager
def bucket_found() -> Iterator[None]:
    """Turn ``NoSuchBucketError`` into a 404."""
    try:
        yield
    except NoSuchBucketError as exc:
        raise HTTPException(404, str(exc)) from None


def query_time(value: str | None, what: str) -> int | None:
    """An optional ISO 8601 query parameter as UTC microseconds."""
    return None if value is None else parse_time_us(value, what)


async def json_body(request: Request) -> Any:
    return loads(await request.body())


def routers(core: Core) -> list[APIRouter]:
    """The ``/api/0`` routers (mounted by the gateway at the root, not under ``/api/v1``)."""
    from sysmonstm.domains.deskmeter.aw_api_events import events_router
    from sysmonstm.domains.deskmeter.aw_api_transfer import transfer_router

    return [buckets_router(core), events_router(core), transfer_router(core)]


def store_of(core: Core) -> Callable[[], Awaitable[AwStore]]:
    """The process's ActivityWatch store, opened on first use (``aw_store``)."""

    async def store() -> AwStore:
        return await aw_store(core)

    return store


def buckets_router(core: Core) -> APIRouter:
    """``/info`` and the buckets themselves."""
    router = APIRouter(prefix=PREFIX, tags=["activitywatch"])
    store = store_of(core)

    @router.get("/info", summary="Server info (aw-server's shape)")
    async def info() -> Response:
        return json_response(
            {
                "hostname": socket.gethostname(),
                "version": f"v{sysmonstm.__version__} (sysmonstm)",
                "testing": False,
                "device_id": await (await store()).device_id(),
            }
        )

    @router.get("/buckets/", summary="Every bucket by id, with last_updated")
    @router.get("/buckets", include_in_schema=False)  # aw-server redirects here; answer
    async def buckets() -> Response:
        return json_response({b.id: bucket_json(b) for b in await (await store()).buckets()})

    @router.get("/buckets/{bucket_id}", summary="A bucket's metadata")
    async def bucket(bucket_id: str) -> Response:
        found = await (await store()).bucket(bucket_id)
        if found is None:
            raise HTTPException(404, f"There's no bucket named {bucket_id}")
        return json_response(bucket_json(found))

    @router.post("/buckets/{bucket_id}", summary="Create a bucket (304 when it exists)")
    async def create_bucket(bucket_id: str, request: Request) -> Response:
        """Body ``{"client", "type", "hostname"}`` (``name`` and ``data`` optional)."""
        new = parse_new_bucket(bucket_id, await json_body(request), now_us())
        if await (await store()).create_bucket(new):
            return json_response({})
        return Response(status_code=304)

    @router.delete("/buckets/{bucket_id}", summary="Delete a bucket and its events (?force=1)")
    async def delete_bucket(bucket_id: str, force: str | None = None) -> Response:
        if force != "1":
            raise HTTPException(
                401,
                "Deleting buckets is only permitted if aw-server is running in testing "
                "mode or if ?force=1",
            )
        if not await (await store()).delete_bucket(bucket_id):
            raise HTTPException(404, f"There's no bucket named {bucket_id}")
        return json_response({})

    return router
