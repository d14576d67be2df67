"""ActivityWatch heartbeat clients: ``--sources`` watchers posting to one ``/api/0`` server.

Each source is a window watcher with its own bucket and its own keep-alive HTTP connection,
posting its heartbeats one at a time (the next once the previous is answered), as
aw-client's ``heartbeat(..., queued=False)`` does; several sources post concurrently. The
buckets are created first (not timed); then the clock runs from the first heartbeat to the
last answer. Works the same against aw-server and against sysmonstm's gateway.

Run: ``python -m bench.hb_client --url http://127.0.0.1:PORT --sources 1 --count 1000
--start-ms MS``. The last output line is a JSON object with ``"event": "hb client done"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import psutil

from bench.heartbeat_workload import PULSETIME_S, STEP_MS, apps, aw_heartbeat, bucket_id
from bench.loadgen import cpu_seconds

TIMEOUT_S = 60.0


async def _create(client: httpx.AsyncClient, source: int) -> None:
    body = {"client": "sysmonstm-bench", "type": "currentwindow", "hostname": f"host-{source}"}
    resp = await client.post(f"/api/0/buckets/{bucket_id(source)}", json=body)
    if resp.status_code not in (200, 304):
        raise RuntimeError(f"creating bucket {bucket_id(source)}: {resp.status_code} {resp.text}")


async def _post_all(client: httpx.AsyncClient, source: int, bodies: list[bytes]) -> float:
    """Post every heartbeat in order; the time of the last answer."""
    url = f"/api/0/buckets/{bucket_id(source)}/heartbeat"
    params = {"pulsetime": str(PULSETIME_S)}
    headers = {"Content-Type": "application/json"}
    for body in bodies:
        resp = await client.post(url, params=params, content=body, headers=headers)
        if resp.status_code == 500 and "KeyError" in resp.text:
            # aw-server 0.12 now and then answers a just-created bucket's first heartbeats
            # with KeyError (its bucket cache races the create); create it again, retry once
            await _create(client, source)
            resp = await client.post(url, params=params, content=body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"heartbeat to {url}: {resp.status_code} {resp.text[:300]}")
    return time.perf_counter()


async def run(url: str, sources: int, count: int, start_ms: int, server_pid: int | None) -> Any:
    bodies = [
        [
            json.dumps(aw_heartbeat(app, start_ms + i * STEP_MS)).encode()
            for i, app in enumerate(apps(s, count, start_ms))
        ]
        for s in range(sources)
    ]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, limits=limits) for _ in range(sources)
    ]
    try:
        await asyncio.gather(*(_create(c, s) for s, c in enumerate(clients)))
        server = psutil.Process(server_pid) if server_pid else None
        server0, own0 = cpu_seconds(server), time.process_time()
        start = time.perf_counter()
        ends = await asyncio.gather(
            *(_post_all(c, s, b) for s, (c, b) in enumerate(zip(clients, bodies, strict=True)))
        )
        wall = max(ends) - start
        server_cpu, own_cpu = cpu_seconds(server) - server0, time.process_time() - own0
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    sent = sources * count
    return {
        "event": "hb client done",
        "sources": sources,
        "heartbeats": sent,
        "seconds": wall,
        "rate": sent / wall,
        "server_cpu_cores": server_cpu / wall if server else None,
        "client_cpu_cores": own_cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--sources", type=int, default=1, help="concurrent watchers")
    parser.add_argument("--count", type=int, default=1000, help="heartbeats per watcher")
    parser.add_argument("--start-ms", type=int, required=True, help="time of the first")
    parser.add_argument("--server-pid", type=int, default=None, help="measure its CPU")
    a = parser.parse_args()
    try:
        result = asyncio.run(run(a.url, a.sources, a.count, a.start_ms, a.server_pid))
    except (RuntimeError, httpx.HTTPError) as exc:
        print(json.dumps({"event": "hb client failed", "error": f"{type(exc).__name__}: {exc}"}))
        raise SystemExit(1) from exc
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
