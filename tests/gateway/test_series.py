"""GET /api/v1/series: columnar history, every time syntax, validation that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from sysmonstm.runtime import Core
from tests.gateway.support import now_ms, ramp, seed


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def history(core: Core) -> int:
    """Two hours of cpu.used = i % 100 for m-1, one sample a minute, ending a minute ago."""
    t_end = now_ms() - 60_000
    t_end -= t_end % 60_000
    await seed(core, [ramp("m-1", t_end - 119 * 60_000, 120, step_ms=60_000)], hot=False)
    return t_end


async def test_series_reads_unix_ms_bounds_columnar(
    history: int, client: httpx.AsyncClient
) -> None:
    """from/to in Unix ms select [from, to); the answer is columnar t/avg/min/max."""
    start = history - 9 * 60_000
    res = await client.get(
        "/api/v1/series",
        params={"host": "m-1", "series": "cpu.used", "from": start, "to": history + 1},
    )

    assert res.status_code == 200
    body = res.json()
    assert body["host"] == "m-1"
    assert body["series"] == "cpu.used"
    assert body["t"] == [start + i * 60_000 for i in range(10)]
    assert body["avg"] == [float(i % 100) for i in range(110, 120)]
    assert body["min"] == body["avg"] == body["max"]
    assert body["tier"] == "raw"
    assert (body["from_ms"], body["to_ms"]) == (start, history + 1)


async def test_series_reads_iso_8601_bounds(history: int, client: httpx.AsyncClient) -> None:
    """ISO 8601 bounds with a Z (or no offset: UTC) give the same points as Unix ms."""
    start = history - 4 * 60_000
    by_ms = await client.get(
        "/api/v1/series",
        params={"host": "m-1", "series": "cpu.used", "from": start, "to": history + 1},
    )
    by_iso = await client.get(
        "/api/v1/series",
        params={
            "host": "m-1",
            "series": "cpu.used",
            "from": iso(start),
            "to": iso(history + 1000).removesuffix("Z"),
        },
    )

    assert by_iso.status_code == 200
    assert by_iso.json()["t"] == by_ms.json()["t"]
    assert len(by_ms.json()["t"]) == 5


async def test_series_reads_relative_bounds(history: int, client: httpx.AsyncClient) -> None:
    """-3h .. now covers all two hours of history, bucketed within the point budget."""
    res = await client.get(
        "/api/v1/series",
        params={"host": "m-1", "series": "cpu.used", "from": "-3h", "to": "now", "points": 30},
    )

    assert res.status_code == 200
    body = res.json()
    assert 1 <= len(body["t"]) <= 30
    assert body["step_ms"] >= 6 * 60_000
    assert body["t"] == sorted(body["t"])
    assert min(body["min"]) == 0.0
    assert max(body["max"]) == 99.0


async def test_series_default_range_is_the_last_hour(
    history: int, client: httpx.AsyncClient
) -> None:
    """Without from/to the last hour is read."""
    body = (await client.get("/api/v1/series", params={"host": "m-1", "series": "cpu.used"})).json()
    assert body["to_ms"] - body["from_ms"] == 3_600_000
    assert all(t >= body["from_ms"] - body["step_ms"] for t in body["t"])


async def test_series_recent_range_comes_from_the_hot_tier(
    core: Core, client: httpx.AsyncClient
) -> None:
    """A range within the hot window is answered by the hot tier, at full resolution."""
    t = now_ms()
    await seed(core, [ramp("m-2", t - 30_000, 30)])

    body = (
        await client.get(
            "/api/v1/series",
            params={"host": "m-2", "series": 'disk.used_pct{mount="/"}', "from": "-1m"},
        )
    ).json()

    assert body["tier"] == "hot"
    assert len(body["t"]) == 30
    assert set(body["avg"]) == {70.0}


async def test_series_of_unknown_host_is_empty(client: httpx.AsyncClient) -> None:
    """Nothing stored: empty columns, not an error."""
    res = await client.get("/api/v1/series", params={"host": "ghost", "series": "cpu.used"})
    assert res.status_code == 200
    assert res.json()["t"] == res.json()["avg"] == []


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"from": "-1h", "to": "-2h"}, 400, "must be before"),
        ({"from": "now", "to": "now"}, 400, "must be before"),
        ({"from": "yesterday-ish"}, 400, "from: cannot read"),
        ({"to": "12:00"}, 400, "to: cannot read"),
        ({"from": "99999999999999999"}, 400, "beyond year 9999"),
        ({"series": "cpu used"}, 400, "bad metric name"),
        ({"series": 'disk.used_pct{mount="/",a="b"}'}, 400, "sorted"),
        ({"points": "0"}, 422, "points"),
        ({"points": "10001"}, 422, "points"),
        ({"points": "many"}, 422, "points"),
        ({"host": None}, 422, "host"),
    ],
    ids=[
        "reversed",
        "empty",
        "bad-from",
        "bad-to",
        "huge-ms",
        "bad-key",
        "unsorted-tags",
        "zero-points",
        "too-many-points",
        "points-not-int",
        "no-host",
    ],
)
async def test_series_rejects_bad_input_with_a_reason(
    client: httpx.AsyncClient, params: dict[str, str | None], status: int, needle: str
) -> None:
    """Unreadable or inconsistent parameters get a 4xx JSON error naming the problem."""
    query = {"host": "m-1", "series": "cpu.used", **params}
    res = await client.get(
        "/api/v1/series", params={k: v for k, v in query.items() if v is not None}
    )

    assert res.status_code == status
    error = res.json()["error"]
    assert needle in error["message"]
    assert error["code"] in {"invalid_argument", "invalid_request"}
