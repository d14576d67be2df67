"""Start and stop sysmonstm processes for end-to-end tests, as a user would run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SYSMONSTM = str(Path(sys.executable).with_name("sysmonstm"))


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path
    started: float

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def wait_log(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.get("event") == event:
                    return line
            if self.popen.poll() is not None:
                raise AssertionError(f"process ended ({self.popen.returncode}):\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} log line in {timeout} s:\n{self.text()[-3000:]}")


def base_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMONSTM_")}
    env["SYSMONSTM_CONFIG"] = str(data_dir / "absent.toml")
    env["SYSMONSTM_DATA_DIR"] = str(data_dir)
    env["SYSMONSTM_LOG__FORMAT"] = "json"
    env.update({f"SYSMONSTM_{k.upper()}": v for k, v in settings.items()})
    return env


def spawn(args: list[str], env: Mapping[str, str], log: Path) -> Proc:
    """Start ``args`` in its own process group, output to ``log``."""
    handle = log.open("wb")
    popen = subprocess.Popen(
        args,
        cwd=ROOT,
        env=dict(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return Proc(popen, log, time.monotonic())


def stop(proc: Proc, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Signal the whole process group and wait; returns the exit code."""
    if proc.popen.poll() is None:
        os.killpg(proc.popen.pid, sig)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(10)
            raise AssertionError(
                f"did not stop within {timeout} s:\n{proc.text()[-3000:]}"
            ) from None
    return proc.popen.returncode


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - test URLs
        return json.load(response)


def poll(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Call ``probe`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception as exc:
            last = exc
        else:
            if found:
                return found
            last = found
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
