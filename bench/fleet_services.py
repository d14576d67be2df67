"""The fleet's history loaded into SQLite and PostgreSQL, a real ``sysmonstm up`` on each, and
the last minutes streamed into them, as ``python -m bench --only queries`` reads it.

- **sqlite**: the embedded default, ``sysmonstm up --no-collect``: aggregator, rules and
  gateway in one process, memory hot tier, the SQLite warm tier holding the history.
- **pg**: the same services on the production engines: PostgreSQL warm tier (a fresh
  database, dropped afterwards), Redis hot tier (a throwaway ``redis-server`` of
  ``tests/servers.py``, so no other user's keys are near).

The history (``bench.fleet_history``) is built once and loaded into both warm tiers at once
(``bench.fleet_load``; SQLite's work runs on its writer thread while PostgreSQL's runs in
the server), and checked through each warm tier's reads. Then the services start and every
host streams the frames since the history's end, up to now, over gRPC (the aggregator's
real ingest: validation, warm write, hot tier), so the hot tier knows every host as it
would in a live fleet. The in-process side of a run (``open_core``) opens a ``Core`` on the
same settings; on SQLite its memory hot tier gets the same streamed batches. Once all is
set up, this process's heap is frozen (``gc.freeze``): a full collection of the history
and the libraries would otherwise land in some timed query of the client.
"""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from bench.fleet_history import FleetHistory, HistorySpec, make_history
from bench.fleet_load import Loaded, Plan, check, load, plan
from bench.ingest import aggregator_env
from bench.loadgen import METHOD, HostStream, opened_streams
from bench.pg import PgServer, create_database, drop_database
from bench.procs import SYSMONSTM, BenchError, Children, free_port
from bench.workload import SHAPES, HostPlan
from sysmonstm.config import HotSettings, Settings, WarmSettings
from sysmonstm.runtime import Core, retention_of
from sysmonstm.store.model import Retention, SeriesBatch
from sysmonstm.store.warm_pg import PgWarm
from sysmonstm.store.warm_sqlite import SqliteWarm
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.metrics_pb2 import MetricBatch

BACKENDS = ("sqlite", "pg")
TAIL_FRAMES = 60  # frames per streamed batch (a collector's spool replay sends such)
STREAM_WINDOW = 16


@dataclass(slots=True)
class Service:
    """One backend's running ``sysmonstm up``: its URLs and what its load cost."""

    warm_url: str
    hot_url: str
    gateway: str = ""
    grpc: str = ""
    loaded: dict[str, Any] = field(default_factory=dict)


def _message(batch: SeriesBatch) -> bytes:
    info = batch.source
    msg = MetricBatch(
        source=SourceIdentity(machine_id=info.id, hostname=info.name, labels=dict(info.labels)),
        sequence=batch.sequence,
        series=list(batch.series),
        interval_ms=batch.interval_ms,
    )
    for t, row in zip(batch.times_ms.tolist(), batch.values.tolist(), strict=True):
        msg.frames.add(time_unix_ms=t, values=row)
    return msg.SerializeToString()


async def stream(target: str, batches: dict[str, list[SeriesBatch]]) -> None:
    """Send each host's batches on its own stream to the aggregator at ``target``; return
    when every one is stored (acknowledged: an ack carries the source's stored sequence,
    which continues the history's numbering here, so the load generator's count of acks
    does not apply)."""
    hosts = [b for b in batches.values() if b]
    streams = [
        HostStream(HostPlan(i, SHAPES["replay"], len(b), 0), [_message(x) for x in b])
        for i, b in enumerate(hosts)
    ]
    async with opened_streams(streams, target, METHOD, STREAM_WINDOW) as readers:
        await asyncio.gather(*(st.send_all(STREAM_WINDOW, None) for st in streams))
        await asyncio.gather(*readers)
    for st, b in zip(streams, hosts, strict=True):
        assert st.call is not None
        code = await st.call.code()
        if code is not grpc.StatusCode.OK or st.acked != b[-1].sequence:
            raise BenchError(f"{b[0].source.id}: stream ended {code.name}, stored {st.acked}")


class FleetServices:
    """The loaded history, the services reading it, and the tail they were sent."""

    def __init__(self, spec: HistorySpec, pg: PgServer, workdir: Path) -> None:
        self.spec = spec
        self.pg = pg
        self.workdir = workdir / "queries"
        self.workdir.mkdir()
        self.retention = Retention()
        self.history: FleetHistory = make_history(spec)
        self.tail: dict[str, list[SeriesBatch]] = {}
        self.services: dict[str, Service] = {}
        self.seconds: dict[str, float] = {}  # how long each step of ``start`` took
        self._stack = ExitStack()
        self._kids = self._stack.enter_context(Children(self.workdir))
        self._pg_dsn: str | None = None

    def __enter__(self) -> FleetServices:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        gc.unfreeze()
        self._stack.__exit__(kind, exc, tb)
        if self._pg_dsn is not None:
            asyncio.run(drop_database(self.pg.dsn, self._pg_dsn))

    def start(self) -> None:
        """Load the history into both backends, start their services, stream the tail."""
        began = time.perf_counter()
        loading = plan(self.history, self.retention)
        self._pg_dsn = asyncio.run(create_database(self.pg.dsn))
        self.services = {
            "sqlite": Service(f"sqlite:///{self.workdir / 'warm.db'}", "memory://"),
            "pg": Service(self._pg_dsn, self._redis()),
        }
        self._lap("build", began)
        asyncio.run(self._load(loading))
        self._lap("load", began)
        for backend, service in self.services.items():
            self._start_up(backend, service)
        self._lap("services", began)
        self.tail = self._tail_batches()
        for service in self.services.values():
            asyncio.run(stream(service.grpc, self.tail))
        self._lap("stream", began)
        # this process's long-lived heap (the history, every library) out of the collector's
        # full passes, so that they are not charged to the queries timed here
        gc.collect()
        gc.freeze()

    def _lap(self, step: str, began: float) -> None:
        self.seconds[step] = time.perf_counter() - began - sum(self.seconds.values())

    def _redis(self) -> str:
        from tests import servers

        redis = servers.redis_server(self.workdir / "redis")
        redis.start()
        self._stack.callback(redis.stop)
        return f"redis://{servers.LOCAL_HOST}:{redis.port}/0?prefix=bench:"

    async def _load(self, loading: Plan) -> None:
        sqlite = SqliteWarm(self.services["sqlite"].warm_url, retention=self.retention)
        pg = PgWarm(self.services["pg"].warm_url, retention=self.retention)
        warms = {"sqlite": sqlite, "pg": pg}
        for warm in warms.values():
            await warm.open()
        try:
            done: list[Loaded] = await asyncio.gather(*(load(loading, w) for w in warms.values()))
            for (backend, warm), loaded in zip(warms.items(), done, strict=True):
                await check(self.history, warm)
                self.services[backend].loaded = loaded.facts()
        finally:
            for warm in warms.values():
                await warm.close()

    def _start_up(self, backend: str, service: Service) -> None:
        data = self.workdir / f"up-{backend}"
        data.mkdir()
        settings = (("warm__url", service.warm_url), ("hot__url", service.hot_url))
        env = aggregator_env(data, free_port(), settings)
        child = self._kids.start(
            f"up-{backend}",
            [SYSMONSTM, "up", "--no-collect", "--http", "127.0.0.1:0"],
            env,
        )
        service.gateway = str(child.wait_json("gateway listening", 60.0)["url"]).rstrip("/")
        service.grpc = str(child.wait_json("aggregator listening", 60.0)["listen"])

    def _tail_batches(self) -> dict[str, list[SeriesBatch]]:
        """Every host's frames from the history's end to now."""
        now = time.time_ns() // 1_000_000
        now -= now % 1000
        out = {}
        for host in self.history.hosts:
            times, values = self.history.frames(host, self.history.end_ms, now)
            out[host.id] = self.history.batches(host, times, values, TAIL_FRAMES)
        return out

    def settings(self, backend: str) -> Settings:
        service = self.services[backend]
        return Settings(
            data_dir=self.workdir / f"core-{backend}",
            warm=WarmSettings(url=service.warm_url),
            hot=HotSettings(url=service.hot_url),
        )

    async def open_core(self, backend: str) -> Core:
        """A ``Core`` in this process on the backend's settings (close it after use); a
        memory hot tier is given the streamed batches first."""
        settings = self.settings(backend)
        core = await Core.open(settings, domains=[])
        if settings.hot.url.startswith("memory:"):
            await core.hot.write([b for batches in self.tail.values() for b in batches])
        assert retention_of(settings) == self.retention
        return core
