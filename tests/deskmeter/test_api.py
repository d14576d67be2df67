"""Deskmeter REST questions over a real interval store (SQLite and PostgreSQL): machines,
the open intervals, instants, ranges, summaries; exact answers, and 400s for bad input.

The data: machine ``m-a`` (Berlin) across the spring DST change of 2026-03-29 (02:00 CET
became 03:00 CEST) and across midnight before it; machine ``m-b`` (UTC) for an hour and a
half that afternoon.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from sysmonstm.domains.deskmeter.humantime import wall_ms
from sysmonstm.runtime import Core
from tests.deskmeter.api_fixtures import (
    M_A_OPEN,
    M_B_OPEN,
    client,
    core,
    get,
    iv,
    refused,
    warm_url,
)
from tests.deskmeter.query_support import (
    BERLIN,
    HB,
    LONG_HEARTBEAT_MS,
    UTC_1200,
    Step,
    batch,
    berlin_ms,
    seed,
)


async def test_machines_lists_each_machine_with_its_open_interval(
    client: httpx.AsyncClient,
) -> None:
    """Every machine with host, zone, last event, watermark and open interval, newest first."""
    found = await get(client, "/machines")
    for m in found:
        assert m.pop("age_s") >= 0
    assert found == [
        {
            "id": "m-a",
            "host": "m-a-host",
            "time_zone": BERLIN,
            "last_seen_ms": berlin_ms("2026-03-29 17:00"),
            "stored_through": 2,
            "current": M_A_OPEN,
        },
        {
            "id": "m-b",
            "host": "m-b-host",
            "time_zone": "UTC",
            "last_seen_ms": UTC_1200 + 5_400_000,
            "stored_through": 1,
            "current": M_B_OPEN,
        },
    ]


async def test_current_gives_the_open_intervals_with_their_host(client: httpx.AsyncClient) -> None:
    """All open intervals, or one machine's."""
    body = await get(client, "/current")
    assert body["current"] == [M_A_OPEN | {"host": "m-a-host"}, M_B_OPEN | {"host": "m-b-host"}]
    body = await get(client, "/current", machine="m-b")
    assert body["current"] == [M_B_OPEN | {"host": "m-b-host"}]


async def test_at_reads_local_time_in_the_zone_given(client: httpx.AsyncClient) -> None:
    """15:00 Berlin on the DST day is 13:00 UTC: m-a is on Project X, m-b on its docs."""
    body = await get(client, "/at", time="2026-03-29 15:00", tz=BERLIN)
    assert body["time_ms"] == berlin_ms("2026-03-29 15:00")
    assert body["time_zone"] == BERLIN
    code = iv(
        "m-a",
        berlin_ms("2026-03-29 14:00"),
        berlin_ms("2026-03-29 15:30"),
        0,
        "Code",
        "Project X",
    )
    assert body["intervals"] == [code, M_B_OPEN]


async def test_at_defaults_to_the_machines_zone(client: httpx.AsyncClient) -> None:
    """Without tz a machine's own zone reads the time; without a machine and with machines
    in different zones, UTC does."""
    body = await get(client, "/at", time="2026-03-29 01:30", machine="m-a")
    assert body["time_zone"] == BERLIN
    assert [i["workspace"] for i in body["intervals"]] == ["Mail"]
    body = await get(client, "/at", time="2026-03-29 13:00")
    assert body["time_zone"] == "UTC"
    assert body["time_ms"] == berlin_ms("2026-03-29 15:00")
    assert [i["machine"] for i in body["intervals"]] == ["m-a", "m-b"]


async def test_at_a_time_nothing_covers_is_empty(client: httpx.AsyncClient) -> None:
    """Before the first event, and after an open interval's last heartbeat, nothing is
    covered."""
    assert (await get(client, "/at", time="2026-03-28 12:00", tz=BERLIN))["intervals"] == []
    t = berlin_ms("2026-03-29 17:01")
    assert (await get(client, "/at", time=str(t), machine="m-a"))["intervals"] == []


async def test_at_yesterday_1500_finds_yesterdays_interval(
    core: Core, client: httpx.AsyncClient
) -> None:
    """'yesterday 15:00' is read on the local calendar of the zone, relative to now."""
    zone = ZoneInfo(BERLIN)
    yesterday = datetime.now(zone).date() - timedelta(days=1)
    start = wall_ms(yesterday, datetime.min.time().replace(hour=14), zone)
    end = wall_ms(yesterday, datetime.min.time().replace(hour=16), zone)
    await seed(
        core,
        [
            batch(
                "m-y",
                1,
                [Step(start, "Write", "Report"), Step(end, "Write", "Report", kind=HB)],
                heartbeat_ms=LONG_HEARTBEAT_MS,
            )
        ],
    )
    body = await get(client, "/at", time="yesterday 15:00", machine="m-y")
    assert body["time_ms"] == wall_ms(yesterday, datetime.min.time().replace(hour=15), zone)
    assert body["intervals"] == [iv("m-y", start, end, 0, "Write", "Report", open_=True)]


async def test_intervals_are_clipped_to_the_range(client: httpx.AsyncClient) -> None:
    """The local day of 2026-03-29 (23 hours long): the interval from the day before starts
    at midnight, the others are whole; by start."""
    body = await get(
        client, "/intervals", **{"from": "2026-03-29", "to": "2026-03-30", "tz": BERLIN}
    )
    assert body["from_ms"] == berlin_ms("2026-03-29 00:00")
    assert body["to_ms"] - body["from_ms"] == 23 * 3_600_000
    assert body["truncated"] is False
    assert body["intervals"] == [
        iv(
            "m-a",
            berlin_ms("2026-03-29 00:00"),
            berlin_ms("2026-03-29 01:00"),
            0,
            "Code",
            "Project X",
        ),
        iv("m-a", berlin_ms("2026-03-29 01:00"), berlin_ms("2026-03-29 14:00"), 1, "Mail", ""),
        iv(
            "m-a",
            berlin_ms("2026-03-29 14:00"),
            berlin_ms("2026-03-29 15:30"),
            0,
            "Code",
            "Project X",
        ),
        M_B_OPEN,
        iv(
            "m-a",
            berlin_ms("2026-03-29 15:30"),
            berlin_ms("2026-03-29 16:00"),
            0,
            "Code",
            "Project X",
            idle=True,
        ),
        M_A_OPEN,
    ]
    assert body["intervals"][1]["duration_s"] == 12 * 3600  # 01:00 CET to 14:00 CEST


async def test_intervals_limit_truncates_and_says_so(client: httpx.AsyncClient) -> None:
    """``limit`` caps the answer; ``truncated`` tells there is more."""
    body = await get(
        client, "/intervals", **{"from": "2026-03-28", "to": "2026-03-30", "tz": BERLIN, "limit": 2}
    )
    assert [i["workspace"] for i in body["intervals"]] == ["Code", "Mail"]
    assert body["truncated"] is True


async def test_summary_of_a_day_by_task_keeps_idle_apart(client: httpx.AsyncClient) -> None:
    """The DST day in Berlin for m-a: totals in seconds, largest active first, idle apart."""
    body = await get(
        client, "/summary", period="day", at="2026-03-29 12:00", machine="m-a", tz=BERLIN
    )
    assert body["from_ms"] == berlin_ms("2026-03-29 00:00")
    assert body["to_ms"] == berlin_ms("2026-03-30 00:00")
    assert (body["period"], body["time_zone"], body["by"], body["machine"]) == (
        "day",
        BERLIN,
        "task",
        "m-a",
    )
    assert [(t["key"], t["active_s"], t["idle_s"]) for t in body["totals"]] == [
        ("", 43200.0, 0.0),
        ("Project X", 9000.0, 1800.0),
        ("Project Y", 3600.0, 0.0),
    ]
    assert (body["active_s"], body["idle_s"]) == (55800.0, 1800.0)


async def test_summary_by_day_splits_at_local_midnight(client: httpx.AsyncClient) -> None:
    """The month of March in the machine's zone, by local day: the interval across midnight
    counts toward both days."""
    body = await get(client, "/summary", period="month", at="2026-03-15", by="day", machine="m-a")
    assert body["time_zone"] == BERLIN
    assert body["from_ms"] == berlin_ms("2026-03-01 00:00")
    assert body["to_ms"] == berlin_ms("2026-04-01 00:00")
    totals = {t["key"]: (t["active_s"], t["idle_s"]) for t in body["totals"]}
    assert totals == {"2026-03-28": (3600.0, 0.0), "2026-03-29": (55800.0, 1800.0)}


async def test_summary_by_machine_over_a_partial_range(client: httpx.AsyncClient) -> None:
    """From 14:30 to 16:30 Berlin: m-a has an hour and a half active (an hour on Code, half
    an hour on Web) and half an hour idle; m-b an hour (its interval ends at 15:30 Berlin)."""
    body = await get(
        client,
        "/summary",
        **{"from": "2026-03-29 14:30", "to": "2026-03-29 16:30", "tz": BERLIN, "by": "machine"},
    )
    assert body["period"] is None
    totals = {t["key"]: (t["active_s"], t["idle_s"]) for t in body["totals"]}
    assert totals == {"m-a": (5400.0, 1800.0), "m-b": (3600.0, 0.0)}


async def test_summary_by_workspace_of_a_week(client: httpx.AsyncClient) -> None:
    """The ISO week (Monday 2026-03-23 to Monday 2026-03-30) holding the DST day."""
    body = await get(client, "/summary", period="week", at="2026-03-29", by="workspace", tz=BERLIN)
    assert body["from_ms"] == berlin_ms("2026-03-23 00:00")
    assert body["to_ms"] == berlin_ms("2026-03-30 00:00")
    totals = {t["key"]: (t["active_s"], t["idle_s"]) for t in body["totals"]}
    assert totals == {
        "Mail": (43200.0, 0.0),
        "Code": (12600.0, 1800.0),
        "Docs": (5400.0, 0.0),
        "Web": (3600.0, 0.0),
    }


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/at", {"time": "teatime"}, r"^time: cannot read 'teatime'; use e\.g\. 'yesterday 15:00'"),
        ("/at", {"time": "15:00", "tz": "Mars/Olympus"}, r"^tz: 'Mars/Olympus' is not an IANA"),
        ("/at", {"time": "1", "machine": "../etc"}, r"^machine: '\.\./etc' is not a machine id"),
        ("/intervals", {"from": "2026-03-30", "to": "2026-03-29"}, r"^from \(\d+\) must be before"),
        ("/intervals", {"from": "yesterday 25:00"}, r"^from: cannot read"),
        ("/summary", {"by": "mood"}, r"^by: 'mood' is not one of task, workspace, machine, day"),
        ("/summary", {"period": "fortnight"}, r"^period: 'fortnight' is not one of day, week"),
        ("/summary", {"period": "day", "from": "-2h"}, r"^give either period \(with at\) or"),
        ("/summary", {"at": "monday", "from": "-2h"}, r"^at only goes with period"),
        ("/export", {"from": "-1d", "format": "xml"}, r"^format: 'xml' is not one of csv, json"),
        ("/export", {"format": "csv"}, r"^from is required"),
    ],
)
async def test_bad_parameters_are_refused_with_a_message(
    client: httpx.AsyncClient, path: str, params: dict[str, str], message: str
) -> None:
    """Unreadable times, zones, groupings, periods and formats answer 400 naming the problem."""
    assert re.search(message, await refused(client, path, **params))


__all__ = ["client", "core", "warm_url"]  # fixtures used by the tests above
