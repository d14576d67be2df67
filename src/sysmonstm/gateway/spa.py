"""Serve the dashboard bundle (built from ``web/`` into ``gateway/static/``) as an SPA.

``/assets/*`` are content-hashed files, cached for a year; every other GET outside the API
answers ``index.html`` (never cached) so routes such as ``/host/<id>`` work on reload.
Without a build, pages answer 503 saying how to build it; the API works regardless.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).with_name("static")
_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>sysmonstm</title>
<h1>The dashboard is not built</h1>
<p>Build it once with <code>make web</code> (or <code>cd web &amp;&amp; npm ci &amp;&amp;
npm run build</code>). The API is at <a href="/docs">/docs</a>.</p>"""
_RESERVED = ("api/", "ws", "docs", "openapi.json", "healthz", "assets/")


class _ImmutableFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount_dashboard(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    """Add the asset mount and the SPA fallback; call after every other route."""
    index = static_dir / "index.html"
    app.mount(
        "/assets", _ImmutableFiles(directory=static_dir / "assets", check_dir=False), name="assets"
    )

    @app.get("/{path:path}", include_in_schema=False)
    async def dashboard(path: str) -> Response:
        if path.startswith(_RESERVED):
            raise HTTPException(404, f"no route /{path[:200]}")
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
