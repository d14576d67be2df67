"""The two streaming measurements: the raw gRPC ceiling and the real aggregator pipeline.

Both drive the same load generator (``bench.loadgen``, its own process) against a server in
a third process, so on a 2-core machine the generator and the server each get about a core:

- ``grpc_ceiling_run``: ``bench.grpc_sink`` parses each batch and acks it, nothing more.
  The generator resends a pool of pre-built batches for a fixed time.
- ``pipeline_run``: a real ``sysmonstm aggregator`` on an empty data directory (default
  settings: SQLite warm tier, ``synchronous=FULL``, memory hot tier and bus). Each host
  sends a fixed number of distinct batches once; afterwards the aggregator is stopped
  (SIGTERM, graceful) and the SQLite file is checked: every sample stored exactly once.
  Given a PostgreSQL server, the warm tier is instead a fresh database on it
  (``SYSMONSTM_WARM__URL``), checked the same way by querying it, then dropped.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profile
from bench.loadgen import LoadSpec
from bench.model import Run
from bench.pg import PgServer, database, server_cpu, tier_sizes
from bench.procs import PYTHON, SYSMONSTM, BenchError, Child, Children, child_env, free_port
from bench.verify import check_exactly_once, check_exactly_once_pg

LOADGEN_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Sizes of the streaming runs (per host: ``hosts`` simulated collectors)."""

    hosts: int = 100
    window: int = 64
    sink_seconds: float = 5.0  # how long the gRPC ceiling sends
    sink_pool: int = 32  # distinct batches per host the ceiling cycles through
    # fixed work per pipeline run, ~7 s each on the reference machine (see docs/benchmarks.md)
    pipeline_batches: tuple[tuple[str, int], ...] = (("live", 150), ("replay", 80))
    # extra SYSMONSTM_* settings for the aggregator, to measure a knob (--set on the CLI)
    settings: tuple[tuple[str, str], ...] = ()

    def batches_for(self, shape: str) -> int:
        return dict(self.pipeline_batches)[shape]

    def scaled(self, factor: float) -> IngestOptions:
        """The same runs with ``factor`` times the work (``--quick`` uses less)."""
        return dataclasses.replace(
            self,
            sink_seconds=self.sink_seconds * factor,
            pipeline_batches=tuple(
                (s, max(2, round(n * factor))) for s, n in self.pipeline_batches
            ),
        )


def aggregator_env(
    data_dir: Path, port: int, settings: tuple[tuple[str, str], ...] = ()
) -> dict[str, str]:
    """A clean environment: own data dir, no user config file, JSON logs, our port.

    ``settings`` adds ``SYSMONSTM_*`` variables (e.g. ``WARM__SYNCHRONOUS=normal``).
    """
    return child_env(
        SYSMONSTM_DATA_DIR=str(data_dir),
        SYSMONSTM_CONFIG=str(data_dir / "absent.toml"),
        SYSMONSTM_LOG__FORMAT="json",
        SYSMONSTM_AGGREGATOR__LISTEN=f"127.0.0.1:{port}",
        **{f"SYSMONSTM_{k.upper()}": v for k, v in settings},
    )


def _shown(spec: LoadSpec) -> str:
    """The load generator's command line with the run's port and pid as placeholders."""
    shown = dataclasses.replace(spec, target="127.0.0.1:$PORT", server_pid=None)
    return " ".join(["python", *shown.argv(), "--server-pid", "$SERVER_PID"])


def grpc_ceiling_command(shape: str, opts: IngestOptions) -> str:
    spec = LoadSpec("", shape, opts.hosts, opts.sink_pool, opts.window, opts.sink_seconds)
    return f"python -m bench.grpc_sink --listen 127.0.0.1:$PORT & {_shown(spec)}"


def pipeline_command(shape: str, opts: IngestOptions, pg: PgServer | None = None) -> str:
    """The commands of a pipeline run (``$DB``: the fresh database, with ``pg``)."""
    spec = LoadSpec("", shape, opts.hosts, opts.batches_for(shape), opts.window)
    settings = opts.settings
    if pg is not None:
        settings = (*settings, ("warm__url", pg.dsn.rsplit("/", 1)[0] + "/$DB"))
    env = " ".join(
        f"{k}={v}"
        for k, v in aggregator_env(Path("$DATA"), 0, settings).items()
        if k.startswith("SYSMONSTM_")
    )
    env = env.replace("127.0.0.1:0", "127.0.0.1:$PORT")
    return f"{env} sysmonstm aggregator & {_shown(spec)}"


def _start_load(kids: Children, spec: LoadSpec) -> Child:
    return kids.start("loadgen", [PYTHON, *spec.argv()], child_env())


def _finish_load(gen: Child) -> dict[str, Any]:
    gen.wait(LOADGEN_TIMEOUT_S)
    for line in reversed(gen.json_lines()):
        if line.get("event") == "loadgen done":
            return line
    raise BenchError(f"the load generator printed no result:\n{gen.text()[-3000:]}")


def _run_extra(result: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "batches",
        "batches_per_s",
        "send_seconds",
        "build_seconds",
        "server_cpu_cores",
        "loadgen_cpu_cores",
        "message_bytes",
    )
    return {k: result[k] for k in keep}


def grpc_ceiling_run(shape: str, opts: IngestOptions, workdir: Path, seed: int) -> Run:
    """One run of the raw gRPC ceiling for ``shape``."""
    with Children(workdir) as kids:
        sink = kids.start("grpc-sink", [PYTHON, "-m", "bench.grpc_sink"], child_env())
        port = int(sink.wait_json("sink listening")["port"])
        spec = LoadSpec(
            f"127.0.0.1:{port}",
            shape,
            opts.hosts,
            opts.sink_pool,
            opts.window,
            opts.sink_seconds,
            sink.pid,
            seed,
        )
        gen = _start_load(kids, spec)
        result = _finish_load(gen)
        sink.stop()
    return Run(result["rate"], result["samples"], result["seconds"], _run_extra(result))


@contextmanager
def _warm_database(pg: PgServer | None) -> Iterator[str | None]:
    if pg is None:
        yield None
        return
    with database(pg) as dsn:
        yield dsn


def pipeline_run(
    shape: str,
    opts: IngestOptions,
    workdir: Path,
    seed: int,
    profiler: str = "none",
    pg: PgServer | None = None,
) -> tuple[Run, profile.Profile | None]:
    """One run through a real aggregator; optionally profiled (``py-spy`` or ``cprofile``).

    With ``pg`` the warm tier is a fresh database on that server (dropped afterwards), and
    the server's CPU over the timed phase is measured too.
    """
    data = workdir / "data"
    data.mkdir()
    spy = None if profiler == "none" else profile.AggregatorProfiler(profiler, workdir)
    argv = [SYSMONSTM, "aggregator"]
    pg_cpu: Callable[[], float] | None = None
    pg_cpu_s = 0.0
    try:
        with _warm_database(pg) as dsn, Children(workdir) as kids:
            settings = opts.settings if dsn is None else (*opts.settings, ("warm__url", dsn))
            if dsn is not None:
                pg_cpu = server_cpu(dsn)
            env = aggregator_env(data, free_port(), settings)
            agg = kids.start("aggregator", spy.wrap(PYTHON, argv) if spy else argv, env)
            listening = agg.wait_json("aggregator listening")
            port = int(str(listening["listen"]).rsplit(":", 1)[1])
            spec = LoadSpec(
                f"127.0.0.1:{port}",
                shape,
                opts.hosts,
                opts.batches_for(shape),
                opts.window,
                None,
                agg.pid,
                seed,
            )
            gen = _start_load(kids, spec)
            if spy is not None or pg_cpu is not None:
                gen.wait_json("loadgen timing", timeout=120.0)
            if pg_cpu is not None:
                pg_cpu_s = -pg_cpu()
            if spy is not None:
                spy.start(kids, agg.pid)
            result = _finish_load(gen)
            if pg_cpu is not None:
                pg_cpu_s += pg_cpu()
            if spy is not None:
                spy.stop()
            code = agg.stop(signal.SIGTERM, grace=60.0)
            if code != 0:
                raise BenchError(f"the aggregator exited with {code}:\n{agg.text()[-3000:]}")
            if dsn is None:
                stored = check_exactly_once(data / "warm.db", result["per_host"])
                db_bytes = sum(f.stat().st_size for f in data.glob("warm.db*"))
                facts = {}
            else:
                stored = check_exactly_once_pg(dsn, result["per_host"])
                db_bytes, raw = tier_sizes(dsn)
                facts = {
                    "raw_bytes_per_sample": raw / stored,
                    "pg_cpu_cores": pg_cpu_s / result["seconds"],
                }
        summary = spy.summary() if spy is not None else None
    finally:
        shutil.rmtree(data, ignore_errors=True)
    extra = (
        _run_extra(result)
        | {"verified_samples": stored, "db_bytes_per_sample": db_bytes / stored}
        | facts
    )
    return Run(result["rate"], result["samples"], result["seconds"], extra), summary
