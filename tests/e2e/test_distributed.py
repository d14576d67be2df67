"""The same commands on the distributed engines, by changing URLs only: separate aggregator,
alerts and gateway processes (and ``up``) on NATS JetStream, Redis, PostgreSQL and S3."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.archive_backends import REGION
from tests.conftest import free_port
from tests.e2e.processes import SYSMONSTM, Proc, base_env, get_json, poll, spawn, stop

pytestmark = pytest.mark.e2e

RULE = """
[[rule]]
name = "e2e_processes"
topic = "metrics.>"
field = "proc.count"
op = "gt"
threshold = 0
severity = "info"
message = "{host} runs {value:.0f} processes"
"""


@pytest.fixture
def urls(
    nats_server_url: str,
    nats_prefix: str,
    redis_server_url: str,
    redis_prefix: str,
    pg_dsn: str,
    moto_s3_endpoint: str,
    s3_bucket: str,
) -> dict[str, str]:
    """Settings (as SYSMONSTM_* env) that point every part at a production engine; the
    streams and keys the services make are deleted afterwards (the prefix fixtures)."""
    return {
        "bus__url": f"{nats_server_url}?stream_prefix={nats_prefix}",
        "hot__url": f"{redis_server_url}?prefix={redis_prefix}",
        "warm__url": pg_dsn,
        "archive__url": f"s3://{s3_bucket}/archive",
        "archive__s3_endpoint_url": moto_s3_endpoint,
        "archive__s3_region": REGION,
    }


def env_for(tmp: Path, name: str, urls: dict[str, str], **more: str) -> dict[str, str]:
    env = base_env(tmp / name, **urls, **more)
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    return env


def host(base: str, machine: str) -> dict[str, Any] | None:
    for h in get_json(f"{base}/api/v1/hosts"):
        if h["id"] == machine and h.get("live", "ok") == "ok" and "proc.count" in h["values"]:
            return dict(h)
    return None


def test_separate_services_work_together_on_the_distributed_engines(
    tmp_path: Path, urls: dict[str, str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULE)
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    procs: list[Proc] = []
    try:
        agg = spawn(
            [SYSMONSTM, "aggregator", "--listen", grpc],
            env_for(tmp_path, "agg", urls),
            tmp_path / "agg.log",
        )
        procs.append(agg)
        agg.wait_log("aggregator listening")
        alerts = spawn(
            [SYSMONSTM, "alerts", "--rules", str(rules), "--no-defaults"],
            env_for(tmp_path, "alerts", urls),
            tmp_path / "alerts.log",
        )
        procs.append(alerts)
        alerts.wait_log("rules loaded")
        gw = spawn(
            [SYSMONSTM, "gateway", "--listen", http],
            env_for(tmp_path, "gw", urls),
            tmp_path / "gw.log",
        )
        procs.append(gw)
        gw.wait_log("gateway listening")
        col = spawn(
            [
                SYSMONSTM,
                "collector",
                "--aggregator",
                grpc,
                "--machine-id",
                "dist-1",
                "--interval",
                "0.5",
                "--spool-dir",
                str(tmp_path / "spool"),
            ],
            env_for(tmp_path, "col", {}),
            tmp_path / "col.log",
        )
        procs.append(col)
        base = f"http://{http}"

        listed = poll(lambda: host(base, "dist-1"), 30, "the collector via Redis in /hosts")
        assert time.time() * 1000 - listed["values"]["proc.count"]["t"] < 5000
        health = get_json(f"{base}/healthz")
        assert health["status"] == "ok", health
        assert set(health["checks"].values()) == {"ok"}

        def stored() -> bool:
            body = get_json(f"{base}/api/v1/series?host=dist-1&series=proc.count&from=-1h")
            return len(body["t"]) >= 3

        poll(stored, 30, "history from PostgreSQL")

        def alerted() -> bool:
            active = get_json(f"{base}/api/v1/alerts")["active"]
            return any(a["rule"] == "e2e_processes" and a["state"] == "firing" for a in active)

        poll(alerted, 30, "an alert from the alerts service over NATS")
    finally:
        for proc in reversed(procs):
            assert stop(proc) == 0, proc.text()[-2000:]


def test_up_runs_unchanged_on_the_distributed_engines(tmp_path: Path, urls: dict[str, str]) -> None:
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = env_for(
        tmp_path,
        "up",
        urls,
        gateway__listen=http,
        aggregator__listen=grpc,
        collector__machine_id="up-dist",
        collector__interval_s="0.5",
    )
    up = spawn([SYSMONSTM, "up", "--demo-hosts", "2"], env, tmp_path / "up.log")
    try:
        base = f"http://{http}"
        poll(lambda: host(base, "up-dist"), 30, "this machine via Redis")

        def fleet() -> bool:
            return {"up-dist", "demo-1", "demo-2"} <= {
                h["id"] for h in get_json(f"{base}/api/v1/hosts")
            }

        poll(fleet, 30, "the demo hosts")
        assert get_json(f"{base}/healthz")["status"] == "ok"
    finally:
        assert stop(up) == 0, up.text()[-2000:]
