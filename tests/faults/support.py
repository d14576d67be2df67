"""What the fault tests share: processes on real servers, and the exactly-once check."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.processes import SYSMONSTM, Proc, base_env, spawn, stop


@dataclass
class Fleet:
    """Collector processes, each with its own machine id and spool."""

    procs: dict[str, Proc]

    def stop(self) -> None:
        for proc in self.procs.values():
            assert stop(proc) == 0, proc.text()[-2000:]


def start_aggregator(tmp: Path, name: str, listen: str, **settings: str) -> Proc:
    env = base_env(tmp / name, aggregator__listen=listen, **settings)
    proc = spawn([SYSMONSTM, "aggregator"], env, tmp / f"{name}.log")
    proc.wait_log("aggregator listening")
    return proc


def start_collectors(
    tmp: Path, aggregators: list[str], n: int, interval: float = 0.2, prefix: str = "fault"
) -> Fleet:
    procs = {}
    for i in range(n):
        machine = f"{prefix}-{i}"
        args = [
            SYSMONSTM,
            "collector",
            "--machine-id",
            machine,
            "--interval",
            str(interval),
            "--spool-dir",
            str(tmp / "spool" / machine),
        ]
        for address in aggregators:
            args += ["--aggregator", address]
        procs[machine] = spawn(args, base_env(tmp / "collector" / machine), tmp / f"{machine}.log")
    for proc in procs.values():
        proc.wait_log("collector started")
    return Fleet(procs)


async def stored_rows(warm_url: str, machine: str) -> list[tuple[int, int]]:
    """(sequence, time) of every raw row the warm tier holds for ``machine``, by time."""
    import asyncpg

    conn = await asyncpg.connect(warm_url)
    try:
        rows = await conn.fetch(
            "SELECT r.seq, r.t FROM raw r JOIN sources s ON s.id = r.source_id"
            " WHERE s.domain = 'metrics' AND s.key = $1 ORDER BY r.t",
            machine,
        )
    finally:
        await conn.close()
    return [(int(r["seq"]), int(r["t"])) for r in rows]


def check_exactly_once(rows: list[tuple[int, int]]) -> None:
    """Every batch once and none missing: one collector run numbers its batches
    consecutively, so the stored sequences must be exactly a contiguous range."""
    seqs = [s for s, _ in rows]
    assert len(rows) > 10, "too few samples to judge"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a batch is missing or doubled"


async def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if await predicate():
                return
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last error: {last!r})")
