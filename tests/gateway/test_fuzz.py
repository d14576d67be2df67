"""Hypothesis sends malformed requests to a real gateway: each gets a clear 4xx with a JSON
reason (never a 500), nothing is stored from them, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from sysmonstm.gateway.server import serve_gateway
from sysmonstm.runtime import Core
from tests.gateway.support import gateway_settings, now_ms, ramp, seed


class ThreadedGateway:
    """A gateway over real embedded backends, on its own loop in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = gateway_settings(data_dir)
        self.url = ""
        self.core: Core | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def body() -> None:
            self._stop = asyncio.Event()
            core = await Core.open(self.settings)
            self.core = core
            await seed(core, [ramp("known-1", now_ms() - 600_000, 300)])

            def ready(url: str) -> None:
                self.url = url
                self._ready.set()

            try:
                await serve_gateway(core, self._stop, on_ready=ready)
            finally:
                await core.close()

        self.loop.run_until_complete(body())
        self.loop.close()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def __enter__(self) -> ThreadedGateway:
        self._thread.start()
        assert self._ready.wait(30), "the gateway did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedGateway]:
    with ThreadedGateway(Path(tmp_path_factory.mktemp("gw"))) as gw:
        yield gw


@pytest.fixture(scope="module")
def http(gateway: ThreadedGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client


junk = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "",
            "-",
            "now",
            "-15m",
            "-1x",
            "1e99",
            "NaN",
            "2026-13-40",
            "-9999999999d",
            "9" * 40,
            "known-1",
            "cpu.used",
            'cpu.used{a="1"',
            "\x00",
            "../../etc",
        ]
    ),
)
params = st.dictionaries(
    st.sampled_from(["host", "series", "from", "to", "points", "x"]), junk, max_size=6
)


def assert_clear(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["error"]["code"]
        assert body["error"]["message"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=params)
def test_series_queries_get_data_or_a_clear_4xx(http: httpx.Client, query: dict[str, str]) -> None:
    assert_clear(http.get("/api/v1/series", params=query))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    host=st.text(min_size=1, max_size=40),
    limit=junk,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def test_other_endpoints_answer_junk_clearly(
    http: httpx.Client, host: str, limit: str, method: str
) -> None:
    assert_clear(http.request(method, f"/api/v1/hosts/{quote(host, safe='')}"))
    assert_clear(http.request(method, "/api/v1/alerts", params={"history_limit": limit}))
    assert_clear(http.request(method, "/api/v1/hosts", content=host.encode()))


messages = st.one_of(
    st.text(max_size=50),
    st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
    st.dictionaries(
        st.sampled_from(["subscribe", "unsubscribe", "x"]),
        st.one_of(st.text(max_size=20), st.integers(), st.lists(st.text(max_size=12), max_size=4)),
        max_size=2,
    ).map(json.dumps),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sent=st.lists(messages, min_size=1, max_size=5))
def test_websocket_junk_gets_an_answer_and_the_socket_stays_usable(
    gateway: ThreadedGateway, sent: list[str]
) -> None:
    ws_url = gateway.url.replace("http://", "ws://") + "/ws"
    with connect(ws_url, open_timeout=10) as ws:
        for text in sent:
            ws.send(text)
            reply = json.loads(ws.recv(timeout=10))
            assert "ok" in reply or "error" in reply, reply
        ws.send(json.dumps({"subscribe": ["metrics.*"]}))
        assert "ok" in json.loads(ws.recv(timeout=10))


def test_after_the_fuzzing_nothing_was_stored_and_health_is_ok(
    gateway: ThreadedGateway, http: httpx.Client
) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    core = gateway.core
    assert core is not None
    sources = gateway.call(core.warm.sources("metrics"))
    assert [s.source.id for s in sources] == ["known-1"]
    assert gateway.call(core.warm.records("alert")) == []
