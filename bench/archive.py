"""Bytes per sample of the cold tier (Parquet archive) against the warm tier, on the same data.

    python -m bench.archive                              every data set below
    python -m bench.archive --recording FILE             (a) from a recording of this machine
    python -m bench.archive record --seconds 3600 --out FILE
                                                         record this machine (1 sample a second)

Data sets:

- ``recorded``: this machine's real collector (``HostSampler``) sampled at its real cadence,
  one frame a second, as recorded by ``record`` (JSON lines, optionally xz-compressed); with
  ``--recording``, or else the recording kept in the repository (``RECORDING``,
  ``RECORDING_NOTE``).
- ``demo``: simulated hosts (``domains/metrics/demo.py``: per-core CPU, memory, disks, NICs
  as mean-reverting walks, counters as rates), a day at 1 s.
- ``walks``: full-precision random walks (``bench.workload.random_walk``, the ingest
  benchmark's values), 100 series, a day at 1 s.

Each data set goes through the real path: ``SqliteWarm.write`` and ``rollup`` (warm bytes per
sample: the database file after a checkpoint, and its raw tables alone from ``dbstat``),
then the real ``Archiver`` into a folder archive (Parquet bytes per sample: the raw parts,
and raw plus rollup parts). Bytes per sample always divide by raw samples. Given a
PostgreSQL server, the same batches also go through ``PgWarm.write`` and ``rollup`` in a
fresh database (the warm tier's bytes there, from ``pg_total_relation_size``).

``bench/__main__.py`` (suite ``archive``) runs ``archive_run`` per data set beside
``parquet_ceiling_run``: the same partitions (raw and rollups), exported from the warm tier,
written by a bare ``pyarrow.parquet.write_table(compression="zstd")`` with pyarrow's
defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import lzma
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow.parquet as pq

from bench.model import Run
from bench.workload import host_series, random_walk
from sysmonstm.store.archive_file import FileStore
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import Archiver
from sysmonstm.store.model import Retention, SeriesBatch, SourceInfo, Tier
from sysmonstm.store.warm_sqlite import SqliteWarm

DAY_S = 86_400
#: a real recording kept in the repository (``record --seconds 9300``, cut, then ``xz -9``)
RECORDING = Path(__file__).resolve().parent / "data" / "host-recording.jsonl.xz"
RECORDING_NOTE = (
    "1.7 h of a 2-core VM of the reference kind on 2026-12-05, while a working session's "
    "tests and benchmarks ran beside it; 57 series; 390 KB"
)
T0_MS = 1_780_272_000_000  # 2026-06-01 00:00 UTC, so a simulated day is one raw partition
_FRAMES_PER_BATCH = 3600
_EVERYTHING_DUE = Retention(raw_ms=1, m1_ms=1, h1_ms=1)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    description: str
    batches: list[SeriesBatch]

    @property
    def samples(self) -> int:
        return sum(b.size for b in self.batches)


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """One data set: bytes in each tier, divided by raw samples."""

    dataset: str
    description: str
    samples: int
    warm_bytes: int  # the SQLite file: raw, rollups, series dictionary, indexes
    warm_raw_bytes: int  # its raw partition tables alone (dbstat)
    archive_raw_bytes: int  # the Parquet parts of the raw partitions
    archive_bytes: int  # every Parquet part: raw and rollups
    encodings: dict[str, str] = field(default_factory=dict)  # chosen for raw values
    archive_seconds: float = 0.0
    span_s: float = 0.0  # first to last sample
    pg: PgBytes | None = None  # the PostgreSQL warm tier, given a server

    def pg_day(self) -> float | None:
        """PostgreSQL bytes per sample of a day of this data (``pg_warm_bytes``)."""
        pg = self.pg
        if pg is None:
            return None
        if pg.day is None:
            return pg.total / self.samples if self.samples else None
        return pg.day / pg.day_samples if pg.day_samples else None

    def _pg(self, nbytes: int | None) -> float | None:
        return None if nbytes is None else self.per_sample(nbytes)

    def per_sample(self, nbytes: int) -> float:
        return nbytes / self.samples if self.samples else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "description": self.description,
            "samples": self.samples,
            "warm_bytes_per_sample": self.per_sample(self.warm_bytes),
            "warm_raw_bytes_per_sample": self.per_sample(self.warm_raw_bytes),
            "archive_raw_bytes_per_sample": self.per_sample(self.archive_raw_bytes),
            "archive_bytes_per_sample": self.per_sample(self.archive_bytes),
            "encodings": self.encodings,
            "archive_seconds": self.archive_seconds,
            "pg_bytes_per_sample": self._pg(self.pg and self.pg.total),
            "pg_raw_bytes_per_sample": self._pg(self.pg and self.pg.raw),
            "pg_rollup_bytes_per_sample": self._pg(self.pg and self.pg.rollups),
            "pg_day_bytes_per_sample": self.pg_day(),
            "hours": self.span_s / 3600,
        }


def _batches(
    source: SourceInfo, series: tuple[str, ...], times: np.ndarray, values: np.ndarray
) -> Iterator[SeriesBatch]:
    for seq, i in enumerate(range(0, len(times), _FRAMES_PER_BATCH), start=1):
        j = i + _FRAMES_PER_BATCH
        yield SeriesBatch(source, seq, series, times[i:j], values[i:j], 1000)


def _span(seconds: int) -> str:
    return "1 day" if seconds == DAY_S else f"{seconds / 3600:g} h"


def walks(hosts: int = 1, seed: int = 0, seconds: int = DAY_S) -> Dataset:
    """(b) Full-precision random walks, 100 series per host, ``seconds`` (a day) at 1 s."""
    rng = np.random.default_rng(seed)
    series = host_series()
    times = T0_MS + np.arange(seconds, dtype=np.int64) * 1000
    out: list[SeriesBatch] = []
    for h in range(hosts):
        values = random_walk(rng, seconds, len(series))
        out += _batches(SourceInfo("metrics", f"walk-{h}"), series, times, values)
    return Dataset(
        "walks", f"random walks, {hosts} host(s) x 100 series x {_span(seconds)} at 1 s", out
    )


def demo(hosts: int = 2, seed: int = 0, seconds: int = DAY_S) -> Dataset:
    """(a') Demo hosts (``DemoHost``), ``seconds`` (a day) at 1 s each."""
    from sysmonstm.domains.metrics.demo import DemoHost

    times = T0_MS + np.arange(seconds, dtype=np.int64) * 1000
    out: list[SeriesBatch] = []
    width = 0
    for i in range(1, hosts + 1):
        host = DemoHost(i, seed)
        values = np.asarray([host.sample(1.0)[1] for _ in range(seconds)], dtype=np.float64)
        width += len(host.series)
        out += _batches(SourceInfo("metrics", host.machine_id), host.series, times, values)
    return Dataset(
        "demo", f"demo hosts, {hosts} host(s), {width} series, {_span(seconds)} at 1 s", out
    )


def record(path: Path, seconds: float) -> int:
    """Sample this machine with the real ``HostSampler`` once a second for ``seconds``,
    appending JSON lines ``{"t": ms, "series": [...], "values": [...]}``; frames written."""
    from sysmonstm.domains.metrics.sampler import HostSampler

    sampler = HostSampler()
    sampler.sample()  # primes the rates
    frames = 0
    start = time.monotonic()
    with path.open("a") as out:
        while (elapsed := time.monotonic() - start) < seconds:
            time.sleep(max(0.0, frames + 1 - elapsed))
            keys, values = sampler.sample()
            row = {"t": time.time_ns() // 1_000_000, "series": list(keys), "values": values}
            out.write(json.dumps(row) + "\n")
            out.flush()
            frames += 1
    return frames


def _open_recording(path: Path) -> IO[str]:
    if path.suffix == ".xz":
        return lzma.open(path, "rt")
    return path.open()


def recorded(path: Path = RECORDING) -> Dataset:
    """(a) A recording made by ``record`` (``.xz`` is read as such): each run of frames with
    the same series is one or more batches."""
    source = SourceInfo("metrics", "recorded")
    out: list[SeriesBatch] = []
    series: tuple[str, ...] = ()
    times: list[int] = []
    rows: list[list[float]] = []

    def flush() -> None:
        if times:
            t = np.asarray(times, dtype=np.int64)
            v = np.asarray(rows, dtype=np.float64)
            for b in _batches(source, series, t, v):
                out.append(SeriesBatch(source, len(out) + 1, series, b.times_ms, b.values))
            times.clear()
            rows.clear()

    with _open_recording(path) as f:
        for line in f:
            frame = json.loads(line)
            if tuple(frame["series"]) != series:
                flush()
                series = tuple(frame["series"])
            times.append(int(frame["t"]))
            rows.append([float(x) for x in frame["values"]])
    flush()
    hours = sum(b.times_ms.size for b in out) / 3600
    width = max((len(b.series) for b in out), default=0)
    return Dataset(
        "recorded", f"this machine's HostSampler at 1 s, {hours:.1f} h, {width} series", out
    )


def _raw_table_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'raw\\_%' ESCAPE '\\'"
        ).fetchone()
    return int(rows[0] or 0)


async def _store(data: Dataset, db: Path) -> None:
    """``data`` into a fresh SQLite warm tier at ``db``, rolled up and checkpointed."""
    warm = SqliteWarm(f"sqlite:///{db}", retention=_EVERYTHING_DUE)
    await warm.open()
    try:
        await warm.write(data.batches)
        await warm.rollup()
    finally:
        await warm.close()  # checkpoints the WAL into the file


@dataclass(frozen=True, slots=True)
class PgBytes:
    """The PostgreSQL warm tier's bytes for a data set: every table with its indexes, the raw
    partitions, the rollup partitions; and every table for the data set repeated to fill a
    day (``day``, ``day_samples``), when it is shorter."""

    total: int
    raw: int
    rollups: int
    day: int | None = None
    day_samples: int = 0


def repeated_to_a_day(data: Dataset) -> Dataset | None:
    """``data`` again and again, each copy right after the previous one, cut at a day from
    its first sample; None if ``data`` spans a day already."""
    first_ms = min(int(b.times_ms.min()) for b in data.batches)
    last_ms = max(int(b.times_ms.max()) for b in data.batches)
    period = last_ms - first_ms + 1000
    if period >= DAY_S * 1000:
        return None
    end = first_ms + DAY_S * 1000
    out: list[SeriesBatch] = []
    for k in range(-(-DAY_S * 1000 // period)):
        for b in data.batches:
            times = b.times_ms + k * period
            keep = times < end
            if keep.any():
                values = b.values[keep]
                out.append(SeriesBatch(b.source, len(out) + 1, b.series, times[keep], values))
    return Dataset(data.name, f"{data.description}, repeated to fill a day", out)


async def _pg_bytes(data: Dataset, server_dsn: str) -> tuple[int, int, int]:
    from bench.pg import fresh_database, raw_bytes, rollup_bytes, tier_bytes
    from sysmonstm.store.warm_pg import PgWarm

    first_ms = min(int(b.times_ms.min()) for b in data.batches)
    last_ms = max(int(b.times_ms.max()) for b in data.batches)
    async with fresh_database(server_dsn) as dsn:
        warm = PgWarm(dsn, retention=_EVERYTHING_DUE, clock=lambda: first_ms)
        await warm.open()
        try:
            for k in range(0, len(data.batches), 500):
                await warm.write(data.batches[k : k + 500])
            await warm.rollup(last_ms + DAY_S * 1000)  # long silent: every minute rolled up
            async with warm.db.tx("sizes", readonly=True) as conn:
                return await tier_bytes(conn), await raw_bytes(conn), await rollup_bytes(conn)
        finally:
            await warm.close()


_PG_MEASURED: dict[tuple[str, int, str], PgBytes] = {}


async def _pg_bytes_once(data: Dataset, server_dsn: str) -> PgBytes:
    """``pg_warm_bytes``, measured once per data set and server: bytes do not vary from run
    to run (the same rows, the same server), and a day of PostgreSQL writes is the suite's
    slowest part."""
    key = (data.name, data.samples, server_dsn)
    if key not in _PG_MEASURED:
        _PG_MEASURED[key] = await pg_warm_bytes(data, server_dsn)
    return _PG_MEASURED[key]


async def pg_warm_bytes(data: Dataset, server_dsn: str) -> PgBytes:
    """``data`` through ``PgWarm.write`` and ``rollup`` in a fresh database (dropped
    afterwards), every minute rolled up; and, if it spans less than a day, the same for it
    repeated to fill a day (``repeated_to_a_day``): PostgreSQL compresses nothing across
    rows, so a day's bytes depend on the values and the series, which are the recording's,
    and on how many rows share the fixed costs (dictionaries, other domains' empty tables,
    partitions made ahead), which are a day's."""
    total, raw, rollups = await _pg_bytes(data, server_dsn)
    day = repeated_to_a_day(data)
    if day is None:
        return PgBytes(total, raw, rollups)
    return PgBytes(total, raw, rollups, (await _pg_bytes(day, server_dsn))[0], day.samples)


async def measure(data: Dataset, workdir: Path, pg_dsn: str | None = None) -> ArchiveResult:
    """Store ``data`` in a fresh warm tier, then archive all of it (see the module doc);
    with ``pg_dsn`` (a server), the PostgreSQL warm tier's bytes for the same data too."""
    db = workdir / f"{data.name}.db"
    await _store(data, db)
    warm_bytes, warm_raw = db.stat().st_size, _raw_table_bytes(db)
    last_ms = max(int(b.times_ms.max()) for b in data.batches)
    archive = ObjectArchive(FileStore(f"file://{workdir / (data.name + '-archive')}"))
    warm = SqliteWarm(f"sqlite:///{db}", retention=_EVERYTHING_DUE)
    await warm.open()
    await archive.open()
    try:
        started = time.perf_counter()
        await Archiver(warm, archive, _EVERYTHING_DUE).run(now_ms=last_ms + 3 * 366 * 86_400_000)
        seconds = time.perf_counter() - started
        manifests = await archive.manifests()
    finally:
        await archive.close()
        await warm.close()
    raw = [m for m in manifests if m.tier is Tier.RAW]
    encodings = raw[0].encodings if raw else {}
    pg = await _pg_bytes_once(data, pg_dsn) if pg_dsn else None
    first_ms = min(int(b.times_ms.min()) for b in data.batches)
    return ArchiveResult(
        data.name,
        data.description,
        data.samples,
        warm_bytes,
        warm_raw,
        sum(m.bytes for m in raw),
        sum(m.bytes for m in manifests),
        encodings,
        seconds,
        (last_ms - first_ms) / 1000 + 1,
        pg,
    )


async def parquet_ceiling(data: Dataset, workdir: Path) -> tuple[int, int, float]:
    """Every partition of ``data`` (raw and rollups), exported from a warm tier as the
    ``Archiver`` gets them, written by a bare ``pq.write_table(compression="zstd")``:
    (bytes of all, bytes of the raw partitions, seconds spent writing). Only the writes are
    timed."""
    db = workdir / f"{data.name}.db"
    await _store(data, db)
    warm = SqliteWarm(f"sqlite:///{db}", retention=_EVERYTHING_DUE)
    await warm.open()
    try:
        parts = await warm.partitions()
        tables = [(p, await warm.export_partition(p.name)) for p in parts]
    finally:
        await warm.close()
    nbytes, raw, seconds = 0, 0, 0.0
    for part, table in tables:
        path = workdir / f"{part.name}.parquet"
        start = time.perf_counter()
        pq.write_table(table, path, compression="zstd")
        seconds += time.perf_counter() - start
        size = path.stat().st_size
        nbytes += size
        raw += size if part.tier is Tier.RAW else 0
        path.unlink()
    return nbytes, raw, seconds


# -- for bench/__main__.py: one run of a data set in a fresh directory ----------------------


def archive_run(data: Dataset, workdir: Path, pg_dsn: str | None = None) -> Run:
    """The real path for ``data``; the rate is raw samples archived (export, Parquet,
    upload, verification) per second of ``Archiver.run``."""
    r = asyncio.run(measure(data, workdir, pg_dsn))
    facts = {k: v for k, v in r.as_dict().items() if k.endswith("_per_sample") and v is not None}
    extra = facts | {
        "bytes_per_sample": r.per_sample(r.archive_bytes),
        "value_encoding": r.encodings.get("value", ""),
        "data": r.description,
        "hours": r.span_s / 3600,
    }
    return Run(r.samples / r.archive_seconds, r.samples, r.archive_seconds, extra)


def parquet_ceiling_run(data: Dataset, workdir: Path) -> Run:
    """``parquet_ceiling`` as a run: raw samples per second of writing (raw and rollup
    partitions, as the archiver's rate), bytes per raw sample."""
    nbytes, raw, seconds = asyncio.run(parquet_ceiling(data, workdir))
    extra = {"bytes_per_sample": nbytes / data.samples, "raw_bytes_per_sample": raw / data.samples}
    return Run(data.samples / seconds, data.samples, seconds, extra)


def run(
    datasets: list[Dataset], workdir: Path | None = None, pg_dsn: str | None = None
) -> list[ArchiveResult]:
    """Measure every data set in a fresh directory each (under ``workdir`` or a temp dir)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sysmonstm-bench-archive-", dir=workdir) as tmp:
        for data in datasets:
            d = Path(tmp) / data.name
            d.mkdir()
            results.append(asyncio.run(measure(data, d, pg_dsn)))
    return results


def print_results(results: list[ArchiveResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="bytes per raw sample, warm tier (SQLite) vs archive (Parquet, zstd)")
    names = ("data", "samples", "warm", "warm raw", "warm PG", "archive raw", "archive all")
    for name in (*names, "values"):
        table.add_column(name, justify="left" if name in ("data", "values") else "right")
    for r in results:
        table.add_row(
            r.dataset,
            f"{r.samples:,}",
            f"{r.per_sample(r.warm_bytes):.2f}",
            f"{r.per_sample(r.warm_raw_bytes):.2f}",
            "" if r.pg is None else f"{r.per_sample(r.pg.total):.2f}",
            f"{r.per_sample(r.archive_raw_bytes):.2f}",
            f"{r.per_sample(r.archive_bytes):.2f}",
            ", ".join(f"{k}: {v}" for k, v in r.encodings.items()),
        )
    console = Console()
    console.print(table)
    for r in results:
        console.print(f"  {r.dataset}: {r.description}; archived in {r.archive_seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("record", help="record this machine's collector, 1 frame a second")
    rec.add_argument("--seconds", type=float, default=3600.0)
    rec.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--recording",
        type=Path,
        default=RECORDING,
        help="(a) a file written by `record` (default: the one in bench/data)",
    )
    parser.add_argument(
        "--pg", action="store_true", help="also the PostgreSQL warm tier's bytes (bench.pg)"
    )
    parser.add_argument("--only", action="append", choices=("recorded", "demo", "walks"))
    parser.add_argument(
        "--hours", type=int, default=24, help="of the demo hosts and random walks (a day)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    from sysmonstm.logs import configure_logging

    configure_logging("warning", "console")
    if args.command == "record":
        print(f"recorded {record(args.out, args.seconds)} frames into {args.out}")
        return
    wanted = set(args.only or ("recorded", "demo", "walks"))
    datasets = []
    if "recorded" in wanted:
        datasets.append(recorded(args.recording))
    if "demo" in wanted:
        datasets.append(demo(seconds=args.hours * 3600))
    if "walks" in wanted:
        datasets.append(walks(seconds=args.hours * 3600))
    if args.pg:
        from bench.pg import pg_server

        with pg_server() as server:
            results = run(datasets, pg_dsn=server.dsn)
    else:
        results = run(datasets)
    print_results(results)
    if args.json is not None:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=1) + "\n")


if __name__ == "__main__":
    main()
