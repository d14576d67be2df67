"""``sysmonstm archive``: run (with progress), list, restore, and clear errors."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysmonstm.cli_archive import archive_app
from tests.store.archive_support import fill, sqlite_warm


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings from the environment: a warm tier with two days of June 2026 (past the
    default raw and 1-minute retention) and a folder archive."""
    db = tmp_path / "warm.db"

    async def prepare() -> None:
        async with sqlite_warm(db) as warm:
            await fill(warm)

    asyncio.run(prepare())
    monkeypatch.setenv("SYSMONSTM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SYSMONSTM_WARM__URL", f"sqlite:///{db}")
    monkeypatch.setenv("SYSMONSTM_ARCHIVE__URL", f"file://{tmp_path / 'archive'}")
    monkeypatch.setenv("SYSMONSTM_LOG__LEVEL", "warning")
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(archive_app, list(args))
    return result.exit_code, result.output


def test_run_archives_what_is_due_then_list_and_restore_show_it(env: Path) -> None:
    code, out = invoke("run", "--dry-run")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "m1_202606",
        "raw_20260601",
        "raw_20260602",
    ]
    code, out = invoke("run")
    assert code == 0, out
    assert out.count("archived") == 3
    code, out = invoke("list")
    assert code == 0, out
    row = r"raw_20260601\s+raw\s+2026-06-01\s+51,840\s+[\d.]+ KiB\s+[\d.]+\s*$"
    assert re.search(row, out, re.MULTILINE)
    assert "3 partitions" in out
    code, out = invoke("run")
    assert (code, out.strip()) == (0, "nothing is due for archiving")
    code, out = invoke("restore", "raw_20260601")
    assert code == 0, out
    assert "restored raw_20260601: 51,840 rows" in out


def test_errors_are_one_clear_line(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = invoke("restore", "raw_20990101")
    assert code == 1
    assert "not in the archive" in out
    monkeypatch.setenv("SYSMONSTM_ARCHIVE__URL", "")
    code, out = invoke("list")
    assert code == 1
    assert "no archive is configured" in out
    monkeypatch.setenv("SYSMONSTM_ARCHIVE__URL", "ftp://somewhere/archive")
    code, out = invoke("list")
    assert code == 1
    assert "no archive backend" in out
