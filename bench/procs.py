"""Child processes of a benchmark: started in their own process group, always stopped.

``Children`` is a context manager; leaving it (normally, on an exception or on Ctrl-C) stops
every process it started: SIGTERM to the group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SYSMONSTM = str(Path(sys.executable).with_name("sysmonstm"))


class BenchError(RuntimeError):
    """A benchmark could not be carried out (a process failed, a check did not hold)."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    """A started process whose output (stdout and stderr) goes to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def json_lines(self) -> list[dict[str, Any]]:
        """The JSON objects among the output lines so far."""
        found: list[dict[str, Any]] = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def wait_json(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first JSON line whose ``event`` is ``event``; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.json_lines():
                if line.get("event") == event:
                    return line
            if self.popen.poll() is not None:
                raise BenchError(
                    f"{self.name} ended ({self.popen.returncode}) before "
                    f"{event!r}:\n{self.text()[-3000:]}"
                )
            time.sleep(0.02)
        raise BenchError(f"{self.name}: no {event!r} within {timeout} s:\n{self.text()[-3000:]}")

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; fails on timeout or a non-zero exit."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"{self.name} still running after {timeout} s:\n{self.text()[-3000:]}"
            ) from None
        if code != 0:
            raise BenchError(f"{self.name} exited with {code}:\n{self.text()[-3000:]}")
        return code

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 20.0) -> int:
        """Signal the process group and wait; SIGKILL if it outlives ``grace``."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
            except ProcessLookupError:
                pass
        return self.popen.wait()


class Children:
    """Starts processes and guarantees they are gone when the block is left."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: list[Child] = []

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                list(args),
                cwd=ROOT,
                env=dict(env if env is not None else os.environ),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, popen, log)
        self._started.append(child)
        return child

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for child in reversed(self._started):
            child.stop(signal.SIGTERM if kind is None else signal.SIGKILL, grace=20.0)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``SYSMONSTM_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
