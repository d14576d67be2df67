"""History archived to S3 (moto's server mode: a real HTTP endpoint) or a folder reads back
through the series API bit for bit; a crash mid-archive loses nothing and a rerun finishes;
the aggregator's maintenance archives what retention would drop."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmonstm.config import ArchiveSettings, load_settings
from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core
from sysmonstm.services.aggregator import maintain_warm
from sysmonstm.store.archive import Archive, ArchiveError
from sysmonstm.store.archive_store import ObjectArchive
from sysmonstm.store.archiving import Archiver, Status, archive_then_expire, read_partition
from sysmonstm.store.model import Tier
from tests.conformance.archive_backends import (  # noqa: F401  (fixtures SETTINGS asks for)
    SETTINGS,
    moto_s3_endpoint,
    s3_bucket,
    s3_credentials,
    s3_keys,
)
from tests.store.archive_support import ALL_DUE, HOUR, MIN, SERIES, history

pytestmark = pytest.mark.e2e

DAY = 86_400_000
PAST = 1_740_960_000_000  # 2025-03-03 00:00 UTC: long past every default retention
HOSTS = ("web-1", "web-2")
QUERIES = [  # (from, to, points): a raw hour, 30 h of minutes, 47 h of hours
    (PAST + 5 * HOUR, PAST + 6 * HOUR, 1000),
    (PAST + DAY - 30 * MIN, PAST + DAY + 30 * MIN, 1000),
    (PAST + 3 * HOUR, PAST + 33 * HOUR, 1000),
    (PAST, PAST + 47 * HOUR, 40),
]
LONG = {"retention_raw_s": "2000d", "retention_1m_s": "2000d", "retention_1h_s": "2000d"}


@pytest.fixture(params=sorted(SETTINGS), ids=lambda kind: f"archive={kind}")
def archive_settings(request: pytest.FixtureRequest, tmp_path: Path) -> ArchiveSettings:
    return SETTINGS[request.param](request, tmp_path)


async def open_core(
    data_dir: Path, archive: ArchiveSettings, warm: dict[str, str] | None = None
) -> Core:
    return await Core.open(
        load_settings(
            {
                "data_dir": str(data_dir),
                "gateway": {"listen": "127.0.0.1:0"},
                "warm": warm or {},
                "archive": archive.model_dump(),
            }
        )
    )


@pytest.fixture
async def core(data_dir: Path, archive_settings: ArchiveSettings) -> AsyncIterator[Core]:
    """A core whose tiers keep everything (so the same ranges read the same tiers before
    and after archiving), holding two days of two hosts from March 2025, rolled up."""
    opened = await open_core(data_dir, archive_settings, LONG)
    try:
        for i, host in enumerate(HOSTS):
            await opened.warm.write([history(host, PAST, 2 * DAY // 10_000, 10_000, seed=i)])
        await opened.warm.rollup()
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


def exact(body: dict[str, Any]) -> tuple[Any, ...]:
    """A series answer with every float as its IEEE 754 bit pattern."""

    def bits(values: list[float]) -> list[int]:
        return [struct.unpack("<Q", struct.pack("<d", v))[0] for v in values]

    return (
        body["tier"],
        body["step_ms"],
        body["t"],
        bits(body["avg"]),
        bits(body["min"]),
        bits(body["max"]),
    )


async def answers(client: httpx.AsyncClient, core: Core) -> list[tuple[Any, ...]]:
    """Every query of every series of one host, through HTTP and through the router."""
    out: list[tuple[Any, ...]] = []
    for start, end, points in QUERIES:
        for series in SERIES:
            params = {"host": HOSTS[1], "series": series, "from": start, "to": end}
            res = await client.get("/api/v1/series", params={**params, "points": points})
            assert res.status_code == 200, res.text
            out.append(exact(res.json()))
            pts = await core.queries.range("metrics", HOSTS[1], series, start, end, points)
            out.append((pts.avg.tobytes(), pts.min.tobytes(), pts.max.tobytes()))
    return out


async def stored_keys(archive: Archive) -> list[str]:
    assert isinstance(archive, ObjectArchive)
    return [o.key for o in await archive.store.list("")]


async def test_archived_history_reads_back_bit_for_bit(
    core: Core, client: httpx.AsyncClient, archive_settings: ArchiveSettings
) -> None:
    before = await answers(client, core)
    assert [a[0] for a in before[::2]] == ["raw"] * 6 + ["1m"] * 3 + ["1h"] * 3
    assert core.archive is not None
    outcomes = await Archiver(core.warm, core.archive, ALL_DUE).run()
    assert [o.status for o in outcomes] == [Status.ARCHIVED] * 4
    assert await core.warm.partitions() == []
    assert await answers(client, core) == before
    if archive_settings.s3_endpoint_url is not None:  # the objects really are in the bucket
        bucket = archive_settings.url.removeprefix("s3://").split("/")[0]
        keys = s3_keys(archive_settings.s3_endpoint_url, bucket)
        assert [k for k in keys if k.endswith(".json")] == [
            "sysmonstm/archive/h1/h1_2025.json",
            "sysmonstm/archive/m1/m1_202503.json",
            "sysmonstm/archive/raw/raw_20250303.json",
            "sysmonstm/archive/raw/raw_20250304.json",
        ]
        assert sum(k.endswith(".parquet") for k in keys) == 4


async def test_a_crash_mid_archive_keeps_the_warm_data_and_a_rerun_completes(
    core: Core, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await answers(client, core)
    archive = core.archive
    assert archive is not None
    partitions = await core.warm.partitions()

    async def crash(*_args: object) -> None:
        raise ArchiveError("injected: killed after the upload, before the verification")

    monkeypatch.setattr(archive, "verify", crash)
    now = time.time_ns() // 1_000_000
    outcomes, dropped = await archive_then_expire(core.warm, archive, ALL_DUE, now)
    assert [o.status for o in outcomes] == [Status.FAILED] * 4
    assert dropped is None  # retention refused to drop what is not archived
    assert await core.warm.partitions() == partitions
    assert await archive.manifests() == []
    assert all(k.endswith(".parquet") for k in await stored_keys(archive))  # orphans only
    assert await answers(client, core) == before

    monkeypatch.undo()
    outcomes, dropped = await archive_then_expire(core.warm, archive, ALL_DUE, now)
    assert [o.status for o in outcomes] == [Status.ARCHIVED] * 4
    assert dropped is not None
    assert await core.warm.partitions() == []
    manifests = await archive.manifests()
    named = sorted(
        [f"{m.name.split('_')[0]}/{m.name}.json" for m in manifests]
        + [p.key for m in manifests for p in m.parts]
    )
    assert await stored_keys(archive) == named  # no orphan left behind
    assert await answers(client, core) == before


async def test_the_aggregator_archives_what_retention_would_drop(
    data_dir: Path, archive_settings: ArchiveSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = await open_core(data_dir, archive_settings)  # default retention: 7 d, 90 d, 2 y
    try:
        await core.warm.write([history(HOSTS[0], PAST, 2 * DAY // 60_000, 60_000)])
        expected = await core.warm.export_partition("raw_20250303")
        expired = asyncio.Event()
        enforce = core.warm.enforce_retention

        async def enforce_and_tell(now_ms: int) -> dict[Tier, int]:
            try:
                return await enforce(now_ms)
            finally:
                expired.set()

        monkeypatch.setattr(core.warm, "enforce_retention", enforce_and_tell)
        stop = asyncio.Event()
        keeper = asyncio.create_task(maintain_warm(core, stop))
        try:
            await expired.wait()  # the first pass: archive, then retention
        finally:
            stop.set()
            await keeper
        assert [p.name for p in await core.warm.partitions()] == ["h1_2025"]
        assert core.archive is not None
        names = [m.name for m in await core.archive.manifests()]
        assert names == ["m1_202503", "raw_20250303", "raw_20250304"]
        manifest = await core.archive.manifest("raw_20250303")
        assert manifest is not None
        assert (await read_partition(core.archive, manifest)).equals(expected)
    finally:
        await core.close()
