"""``/api/0/export``, ``/api/0/buckets/<id>/export`` and ``/api/0/import`` (see aw_api)."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from sysmonstm.domains.deskmeter.aw_api import PREFIX, bucket_found, json_response, store_of
from sysmonstm.domains.deskmeter.aw_json import export_json, loads, parse_export
from sysmonstm.domains.deskmeter.aw_store import AwBucketExport, AwRange
from sysmonstm.errors import InvalidInputError
from sysmonstm.runtime import Core


def uploaded_exports(content_type: str, body: bytes) -> list[Any]:
    """The JSON files of a ``multipart/form-data`` upload (the web UI's import form)."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise InvalidInputError("the upload is not multipart/form-data")
    files = []
    for part in message.iter_parts():
        name = part.get_filename()
        payload = part.get_payload(decode=True)
        if name is not None and isinstance(payload, bytes):  # form fields are not files
            files.append(loads(payload, f"uploaded file {name}"))
    if not files:
        raise InvalidInputError("the upload holds no file")
    return files


def transfer_router(core: Core) -> APIRouter:
    """Exports (all buckets, one bucket) and imports."""
    router = APIRouter(prefix=PREFIX, tags=["activitywatch"])
    store = store_of(core)

    def _download(body: dict[str, Any], filename: str) -> Response:
        return json_response(
            body, headers={"Content-Disposition": f"attachment; filename={filename}"}
        )

    async def _exports(bucket_ids: list[str]) -> list[AwBucketExport]:
        s = await store()
        out = []
        for bid in bucket_ids:
            meta = await s.bucket(bid)
            if meta is None:
                continue  # deleted since it was listed
            with bucket_found():
                found = await s.events(bid, AwRange())
            out.append(AwBucketExport(meta, tuple(found)))
        return out

    @router.get("/export", summary="Every bucket with its events")
    async def export_all() -> Response:
        ids = [b.id for b in await (await store()).buckets()]
        return _download(export_json(await _exports(ids)), "aw-buckets-export.json")

    @router.get("/buckets/{bucket_id}/export", summary="One bucket with its events")
    async def export_bucket(bucket_id: str) -> Response:
        found = await _exports([bucket_id])
        if not found:
            raise HTTPException(404, f"There's no bucket named {bucket_id}")
        return _download(export_json(found), f"aw-bucket-export_{bucket_id}.json")

    @router.post("/import", summary="Import an export (JSON body or uploaded files)")
    async def import_all(request: Request) -> Response:
        """All or nothing: a bucket that exists already refuses the whole import (400).
        Window and AFK buckets also become Deskmeter intervals."""
        from sysmonstm.domains.deskmeter.aw_import import import_export
        from sysmonstm.domains.deskmeter.machine import local_time_zone
        from sysmonstm.domains.deskmeter.resources import interval_store
        from sysmonstm.domains.deskmeter.tasks import TaskRules

        content_type = request.headers.get("content-type", "")
        body = await request.body()
        if content_type.startswith("multipart/"):
            documents = uploaded_exports(content_type, body)
        else:
            documents = [loads(body)]
        exports = [x for doc in documents for x in parse_export(doc)]
        settings = core.settings.deskmeter
        await import_export(
            exports,
            await store(),
            await interval_store(core),
            TaskRules(settings.task_rules),
            settings.time_zone or local_time_zone(),
            skip_existing=False,
        )
        return json_response(None)

    return router
