"""The collector and the watcher turn gRPC's EventEngine client endpoints off, before grpc
is imported, unless the user chose gRPC experiments. (The e2e and fault tests run the real
``sysmonstm collector`` and ``deskmeter watch`` processes with it.)"""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = (
    "import os, sys\n"
    "from sysmonstm.transport.lean_client import lean_grpc_client\n"
    "{before}"
    "took = lean_grpc_client()\n"
    "print(took, os.environ.get('GRPC_EXPERIMENTS'))\n"
)


def run(before: str = "", **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    out = subprocess.run(
        [sys.executable, "-c", CHECK.format(before=before)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.split()


def test_it_turns_the_event_engine_client_off_before_grpc_is_imported() -> None:
    assert run() == ["True", "-event_engine_client"]


def test_the_users_own_experiments_are_kept() -> None:
    assert run(GRPC_EXPERIMENTS="chaotic_good") == ["True", "chaotic_good"]


def test_once_grpc_is_imported_it_is_too_late_and_says_so() -> None:
    assert run(before="import grpc\n") == ["False", "None"]


def test_the_command_line_imports_no_grpc_before_a_command_runs() -> None:
    """So ``collector`` and ``deskmeter watch`` can still set it."""
    script = (
        "import sys\nfrom sysmonstm import cli\n"
        "from sysmonstm.domains.deskmeter import cli_watch\n"
        "print('grpc' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False"]
