"""A real ``sysmonstm gateway`` process for a benchmark, and a real aggregator beside it.

Both run with ``bench.ingest.aggregator_env``: their own data directory, no user config file,
JSON logs; the gateway on a free loopback port, its warm tier where ``warm_url`` says (the
data directory's SQLite file by default).
"""

from __future__ import annotations

from pathlib import Path

from bench.ingest import aggregator_env
from bench.procs import SYSMONSTM, Child, Children, free_port

GATEWAY_COMMAND = "SYSMONSTM_WARM__URL=$DB sysmonstm gateway --listen 127.0.0.1:$PORT"
AGGREGATOR_COMMAND = "SYSMONSTM_DATA_DIR=$DATA sysmonstm aggregator --listen 127.0.0.1:$PORT"


def start_gateway(
    kids: Children, data: Path, warm_url: str | None = None, name: str = "gateway"
) -> tuple[Child, str]:
    """A running gateway and its base URL (``http://127.0.0.1:PORT``)."""
    settings = (("warm__url", warm_url),) if warm_url else ()
    env = aggregator_env(data, free_port(), settings)
    child = kids.start(name, [SYSMONSTM, "gateway", "--listen", "127.0.0.1:0"], env)
    url = str(child.wait_json("gateway listening", timeout=60.0)["url"])
    return child, url.rstrip("/")


def start_aggregator(kids: Children, data: Path, name: str = "aggregator") -> tuple[Child, str]:
    """A running aggregator (embedded default: SQLite warm tier in ``data``) and its
    ``HOST:PORT``."""
    env = aggregator_env(data, free_port())
    child = kids.start(name, [SYSMONSTM, "aggregator"], env)
    listen = str(child.wait_json("aggregator listening", timeout=60.0)["listen"])
    return child, listen
