"""An aggregator killed with SIGKILL for 10 s loses no sample and stores none twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.processes import SYSMONSTM, base_env, spawn, stop
from tests.e2e.warm_rows import stored

pytestmark = pytest.mark.e2e


def wait_rows(db: Path, machine: str, n: int, timeout: float) -> list[tuple[int, int]]:
    deadline = time.monotonic() + timeout
    rows: list[tuple[int, int]] = []
    while time.monotonic() < deadline:
        if db.exists():
            rows = stored(db, machine)
            if len(rows) >= n:
                return rows
        time.sleep(0.2)
    raise AssertionError(f"only {len(rows)} rows of {machine} after {timeout} s")


def test_sigkill_for_10_s_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    grpc = f"127.0.0.1:{free_port()}"
    env = base_env(tmp_path / "agg", aggregator__listen=grpc)
    db = tmp_path / "agg" / "warm.db"
    agg = spawn([SYSMONSTM, "aggregator"], env, tmp_path / "agg1.log")
    agg.wait_log("aggregator listening")
    col = spawn(
        [
            SYSMONSTM,
            "collector",
            "--aggregator",
            grpc,
            "--machine-id",
            "kill-me",
            "--interval",
            "1",
            "--spool-dir",
            str(tmp_path / "spool"),
        ],
        base_env(tmp_path / "col"),
        tmp_path / "collector.log",
    )
    try:
        before = wait_rows(db, "kill-me", 3, 30)
        stop(agg, signal.SIGKILL)
        killed_ms = time.time_ns() // 1_000_000
        time.sleep(10)
        restarted_ms = time.time_ns() // 1_000_000
        agg = spawn([SYSMONSTM, "aggregator"], env, tmp_path / "agg2.log")
        agg.wait_log("aggregator listening")
        wait_rows(db, "kill-me", len(before) + 14, 30)
    finally:
        assert stop(col) == 0, col.text()[-2000:]
        assert stop(agg) == 0, agg.text()[-2000:]
    rows = stored(db, "kill-me")
    seqs = [s for s, _ in rows]
    times = [t for _, t in rows]
    # one collector run numbers its batches consecutively: any loss or repeat shows here
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a batch is missing or doubled"
    assert times == sorted(set(times))
    outage = [t for t in times if killed_ms <= t <= restarted_ms]
    assert len(outage) >= 5, "the samples taken while the aggregator was down are not there"
    last_ack = [line for line in col.lines() if line.get("event") == "collector stopped"]
    assert last_ack
    assert last_ack[-1]["dropped"] == 0
    assert last_ack[-1]["pending"] == 0
