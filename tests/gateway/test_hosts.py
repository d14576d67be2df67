"""GET /api/v1/hosts and /api/v1/hosts/{id}: latest state from the hot tier, warm fallback."""

from __future__ import annotations

import httpx

from sysmonstm.runtime import Core
from tests.gateway.support import SERIES, batch, now_ms, ramp, seed


async def test_hosts_list_is_newest_first_with_latest_values(
    core: Core, client: httpx.AsyncClient
) -> None:
    """Each host carries identity, labels, ages and its latest values; newest host first."""
    t = now_ms()
    await seed(core, [ramp("m-old", t - 60_000, 5, labels={"env": "prod"})])
    await seed(core, [ramp("m-new", t - 10_000, 5)])

    res = await client.get("/api/v1/hosts")

    assert res.status_code == 200
    hosts = res.json()
    assert [h["id"] for h in hosts] == ["m-new", "m-old"]
    old = hosts[1]
    assert old["hostname"] == "m-old.example"
    assert old["labels"] == {"env": "prod"}
    assert old["first_seen_ms"] == t - 60_000
    assert old["last_seen_ms"] == t - 56_000
    assert old["interval_ms"] == 1000
    assert old["age_s"] >= 56
    assert set(old["values"]) == set(SERIES)
    assert old["values"]["cpu.used"] == {"t": t - 56_000, "v": 4.0}


async def test_hosts_list_falls_back_to_warm_for_hosts_the_hot_tier_lacks(
    core: Core, client: httpx.AsyncClient
) -> None:
    """After a restart (empty hot tier) hosts and latest values still come from the warm tier."""
    t = now_ms()
    await seed(core, [ramp("m-hot", t - 5_000, 3)])
    await seed(core, [ramp("m-warm", t - 3_600_000, 3)], hot=False)

    hosts = (await client.get("/api/v1/hosts")).json()

    assert [h["id"] for h in hosts] == ["m-hot", "m-warm"]
    assert hosts[1]["values"]["cpu.used"] == {"t": t - 3_600_000 + 2000, "v": 2.0}
    assert hosts[1]["hostname"] == "m-warm.example"


async def test_hosts_list_reads_many_hosts_from_both_tiers(
    core: Core, client: httpx.AsyncClient
) -> None:
    """A fleet: hosts in the hot tier and hosts only the warm tier has, each with its own
    newest values, most recently seen first."""
    t = now_ms()
    for i in range(12):
        await seed(core, [ramp(f"m-{i:02d}", t - 600_000 + i * 10_000, 3 + i)], hot=i % 2 == 0)

    hosts = (await client.get("/api/v1/hosts")).json()

    assert [h["id"] for h in hosts] == [f"m-{i:02d}" for i in reversed(range(12))]
    for h in hosts:
        i = int(h["id"][2:])
        last = t - 600_000 + i * 10_000 + (2 + i) * 1000
        assert h["values"]["cpu.used"] == {"t": last, "v": float(2 + i)}
        assert set(h["values"]) == set(SERIES)
        assert h["live"] == "ok"


async def test_hosts_list_is_empty_without_data(client: httpx.AsyncClient) -> None:
    """No source yet: an empty list, not an error."""
    res = await client.get("/api/v1/hosts")
    assert res.status_code == 200
    assert res.json() == []


async def test_host_detail_lists_every_stored_series_and_newest_values(
    core: Core, client: httpx.AsyncClient
) -> None:
    """One host: every key the warm tier knows (also ones no longer sent), hot values win."""
    t = now_ms()
    gone = 'temp.celsius{label="core0",sensor="coretemp"}'
    await seed(core, [batch("m-1", 1, [t - 120_000], [[55.0]], series=[gone])], hot=False)
    await seed(core, [ramp("m-1", t - 3_000, 3, first_seq=2)])

    res = await client.get("/api/v1/hosts/m-1")

    assert res.status_code == 200
    body = res.json()
    assert body["id"] == "m-1"
    assert body["series"] == sorted([*SERIES, gone])
    assert body["values"]["cpu.used"] == {"t": t - 1_000, "v": 2.0}
    assert body["values"][gone] == {"t": t - 120_000, "v": 55.0}
    assert body["first_seen_ms"] == t - 120_000


async def test_unknown_host_is_404_with_a_reason(client: httpx.AsyncClient) -> None:
    """An id no tier knows answers 404 with the JSON error shape."""
    res = await client.get("/api/v1/hosts/nope")

    assert res.status_code == 404
    error = res.json()["error"]
    assert error["code"] == "not_found"
    assert "nope" in error["message"]
    assert "never sent a sample" in error["message"]
