"""Fixtures shared by every test package."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port nobody listens on right now (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own config file or SYSMONSTM_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("SYSMONSTM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SYSMONSTM_CONFIG", str(tmp_path / "no-such-config.toml"))


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """A test that configures logging (a CLI command run in-process) leaves it as it was, so
    no later test logs into a closed captured stream or misses ``capture_logs``."""
    import logging

    import structlog

    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


pytest_plugins = ["tests.server_fixtures", "tests.conformance.archive_backends"]
