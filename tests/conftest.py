"""Fixtures shared by every test package."""

from __future__ import annotations

import socket
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


pytest_plugins = ["tests.server_fixtures", "tests.conformance.archive_backends"]
