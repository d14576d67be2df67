"""gRPC settings for the long-lived clients on every machine: the metrics collector and the
Deskmeter watcher. They send about one message a second for days, so what each message
wakes costs more than the message itself (issue 6: a collector at most 0.3 % of a core).

gRPC's EventEngine client endpoints (the ``event_engine_client`` experiment, on by default
in grpcio 1.85) hand each write and read to their own threads; the classic endpoints do
not. Side by side, a 1 Hz grpc.aio stream acked every 5 s used 0.05-0.07 % of a core with
the classic ones and 0.09-0.12 % with EventEngine's. gRPC reads its experiments once, when
it is imported, so ``lean_grpc_client()`` must run before anything imports ``grpc``. An
experiment the user set in ``GRPC_EXPERIMENTS`` is left alone; a grpcio that no longer
knows this one logs a line at start and carries on.

This module must not import grpc.
"""

from __future__ import annotations

import os
import sys

EXPERIMENTS = "-event_engine_client"


def lean_grpc_client() -> bool:
    """Turn gRPC's EventEngine client endpoints off for this process unless the user chose
    experiments already; whether the setting takes effect (grpc not imported yet)."""
    if "grpc" in sys.modules:
        return False
    os.environ.setdefault("GRPC_EXPERIMENTS", EXPERIMENTS)
    return True
