"""The app around the routes: health, OpenAPI docs, JSON errors, the dashboard as an SPA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core


async def test_healthz_is_ok_when_every_backend_answers(client: httpx.AsyncClient) -> None:
    """200 with status ok and one ok per backend."""
    res = await client.get("/healthz")
    assert res.status_code == 200
    body = res.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"bus": "ok", "hot": "ok", "warm": "ok"}
    assert body["domains"] == ["metrics", "deskmeter", "payments"]
    assert body["ws"] == {"clients": 0, "patterns": 0, "dropped": 0}


async def test_healthz_is_503_naming_the_backend_that_is_down(
    core: Core, client: httpx.AsyncClient
) -> None:
    """A closed bus makes healthz answer 503, status degraded, with the bus's reason."""
    await core.bus.close()
    res = await client.get("/healthz")
    assert res.status_code == 503
    body = res.json()
    assert body["status"] == "degraded"
    assert body["checks"]["bus"] == "BackendError: bus is closed"
    assert body["checks"]["warm"] == "ok"


async def test_openapi_docs_describe_the_api(client: httpx.AsyncClient) -> None:
    """/docs serves Swagger UI; the schema lists every route of the contract."""
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/healthz",
        "/api/v1/hosts",
        "/api/v1/hosts/{host_id}",
        "/api/v1/series",
        "/api/v1/alerts",
    ):
        assert path in paths


async def test_unknown_api_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    """Paths under /api never fall back to the dashboard."""
    res = await client.get("/api/v2/hosts")
    assert res.status_code == 404
    assert res.json()["error"]["code"] == "not_found"


@pytest.fixture
async def site(core: Core, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    static = tmp_path / "static"
    app = create_app(core, static_dir=static)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c, static


async def test_dashboard_routes_serve_index_and_assets_are_immutable(
    site: tuple[httpx.AsyncClient, Path],
) -> None:
    """/ and SPA routes such as /host/<id> answer index.html (no-cache); hashed assets are
    cached for good."""
    client, static = site
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<title>sysmonstm</title>")
    (static / "assets" / "app-ABC.js").write_text("console.log(1)")

    for path in ("/", "/host/m-1", "/host/with%20space"):
        res = await client.get(path)
        assert res.status_code == 200
        assert res.text == "<title>sysmonstm</title>"
        assert res.headers["cache-control"] == "no-cache"
    asset = await client.get("/assets/app-ABC.js")
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]
    assert (await client.get("/assets/missing.js")).status_code == 404


async def test_dashboard_without_a_build_says_how_to_build_it(
    site: tuple[httpx.AsyncClient, Path],
) -> None:
    """No bundle: 503 with the build command; the API still answers."""
    client, _ = site
    res = await client.get("/")
    assert res.status_code == 503
    assert "npm run build" in res.text
    assert (await client.get("/api/v1/hosts")).status_code == 200
