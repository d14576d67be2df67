"""Drive an ActivityWatch server with ActivityWatch's own client (aw-client); print JSON.

Runs in the ActivityWatch venv (``tests/deskmeter/aw_venv.py``), never in ours:

    python aw_client_script.py SCENARIO HOST PORT

``session``: buckets, heartbeats that merge and that do not (pulsetime boundaries, data
equality, sub-millisecond times, durations), inserts, replacements, deletes, range reads,
counts, exports and imports, recording everything the server answers. ``watchers``: what
aw-watcher-window and aw-watcher-afk would have sent over an hour on host ``desk-1``.
The same scenario against aw-server and against sysmonstm must print the same JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from aw_client import ActivityWatchClient
from aw_core.models import Event

T0 = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def events_json(events: list[Event]) -> list[dict[str, Any]]:
    return [e.to_json_dict() for e in events]


def scrub_created(buckets: dict[str, Any]) -> dict[str, Any]:
    """Bucket listings without ``created`` (the servers made them at different instants)."""
    return {k: {f: v for f, v in b.items() if f != "created"} for k, b in buckets.items()}


def session(client: ActivityWatchClient, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bid = "aw-watcher-window_test"
    client.create_bucket(bid, "currentwindow")
    again = requests.post(
        f"{base}/buckets/{bid}",
        json={"client": "x", "type": "currentwindow", "hostname": "h"},
        timeout=10,
    )
    out["create_again_status"] = again.status_code
    code = {"app": "Code", "title": "main.py"}
    firefox = {"app": "Firefox", "title": "docs"}
    # (seconds after T0, data, duration, pulsetime): merges and not, at the boundaries
    beats: list[tuple[float, dict[str, Any], float, float]] = [
        (0, code, 0, 10),  # first: a new event
        (5, code, 0, 10),  # within the window: merged, duration 5
        (15, code, 0, 10),  # exactly at end + pulsetime: merged (inclusive)
        (25.001, code, 0, 10),  # one millisecond past it: a new event
        (26, firefox, 0, 10),  # other data: a new event
        (26.5, firefox, 1.25, 10),  # merged; duration reaches 0.5 + 1.25
        (26.6, firefox, 0, 10),  # merged; ends earlier, so the duration stays 1.75
        (27.1239, firefox, 0, 0.5),  # sub-millisecond time, truncated; within 0.5 s
        (40, firefox, 0, 2.5),  # far past the window: new
        (41.25, firefox, 0.0000015, 2.5),  # a duration that rounds to whole microseconds
        (42, {"title": "docs", "app": "Firefox"}, 0, 2.5),  # same data, keys reordered
        (44, {"app": "Term", "n": 1}, 0, 5),  # new
        (45, {"app": "Term", "n": 1.0}, 0, 5),  # 1 == 1.0: merged, first data kept
        (46, {"app": "Term", "n": 1}, -3, 5),  # negative duration never shortens
    ]
    for seconds, data, duration, pulsetime in beats:
        client.heartbeat(bid, Event(timestamp=at(seconds), duration=duration, data=data), pulsetime)
    raw = requests.post(
        f"{base}/buckets/{bid}/heartbeat",
        params={"pulsetime": "5"},
        json={
            "timestamp": "2024-03-10T14:00:50.5+02:00",
            "duration": 0,
            "data": {"app": "Term", "n": 1},
        },
        timeout=10,
    )
    out["raw_heartbeat"] = [raw.status_code, raw.json()]
    out["after_heartbeats"] = events_json(client.get_events(bid))
    out["limit_2"] = events_json(client.get_events(bid, limit=2))
    out["range"] = events_json(client.get_events(bid, start=at(10), end=at(26.3)))
    out["range_sub_ms"] = events_json(client.get_events(bid, start=at(3.0004), end=at(40.0002)))
    out["count"] = client.get_eventcount(bid)
    out["count_range"] = client.get_eventcount(bid, start=at(10), end=at(26.3))
    first_id = out["after_heartbeats"][-1]["id"]
    out["one"] = client.get_event(bid, first_id).to_json_dict()
    missing = requests.get(f"{base}/buckets/{bid}/events/999999", timeout=10)
    out["missing_event_status"] = missing.status_code
    client.delete_event(bid, out["after_heartbeats"][0]["id"])
    gone = requests.delete(f"{base}/buckets/{bid}/events/999999", timeout=10)
    out["delete_missing"] = gone.json()
    client.insert_events(
        bid,
        [
            Event(timestamp=at(100), duration=2, data={"app": "Mail"}),
            Event(timestamp=at(90), duration=3.5, data={"app": "Chat", "u": "ü"}),
        ],
    )
    client.insert_event(bid, Event(timestamp=at(95), duration=0, data={"single": True}))
    posted = requests.post(
        f"{base}/buckets/{bid}/events",
        json={"timestamp": "2024-03-10T12:02:00Z", "duration": 1},
        timeout=10,
    )
    out["post_one"] = [posted.status_code, posted.json()]
    out["after_inserts"] = events_json(client.get_events(bid))
    replace = out["after_inserts"][0]
    client.insert_event(
        bid, Event(id=replace["id"], timestamp=at(120), duration=9, data={"app": "Replaced"})
    )
    out["after_replace"] = events_json(client.get_events(bid))
    out["buckets"] = scrub_created(client.get_buckets())
    export = client.export_bucket(bid)
    out["export_bucket"] = {k: scrub_created(v) for k, v in export.items()}
    imported = dict(export["buckets"][bid])
    imported["id"] = "imported-copy"
    client.import_bucket(imported)
    out["imported_events"] = events_json(client.get_events("imported-copy"))
    out["export_all"] = {k: scrub_created(v) for k, v in client.export_all().items()}
    client.delete_bucket(bid, force=True)
    out["buckets_after_delete"] = sorted(client.get_buckets())
    out["info_keys"] = sorted(client.get_info())
    # an older heartbeat never merges: it is stored as an event of its own
    client.create_bucket("older", "test")
    client.heartbeat("older", Event(timestamp=at(10), duration=1, data={"a": 1}), 5)
    client.heartbeat("older", Event(timestamp=at(5), duration=1, data={"a": 1}), 5)
    out["older"] = events_json(client.get_events("older"))
    return out


def watchers(client: ActivityWatchClient, base: str) -> dict[str, Any]:
    """An hour of desk-1 as aw-watcher-window and aw-watcher-afk report it (heartbeats with
    their pulsetimes), plus a bucket Deskmeter does not read."""
    client.client_hostname = "desk-1"
    window, afk = "aw-watcher-window_desk-1", "aw-watcher-afk_desk-1"
    client.create_bucket(window, "currentwindow")
    client.create_bucket(afk, "afkstatus")
    client.create_bucket("aw-watcher-web-chrome", "web.tab.current")
    start = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)

    def beat(bucket: str, minutes: float, data: dict[str, Any], pulsetime: float) -> None:
        stamp = start + timedelta(minutes=minutes)
        client.heartbeat(bucket, Event(timestamp=stamp, duration=0, data=data), pulsetime)

    code, firefox = {"app": "Code", "title": "x.py"}, {"app": "firefox", "title": "docs"}
    for minutes in (0, 10, 20):  # Code 10:00-10:20, heartbeats merged within pulsetime
        beat(window, minutes, code, 601)
    for minutes in (20, 25, 30):  # firefox 10:20-10:30
        beat(window, minutes, firefox, 301)
    for minutes in (60, 70):  # Code again 11:00-11:10, after the machine slept
        beat(window, minutes, code, 601)
    for minutes in (0, 25):  # at the keyboard 10:00-10:25, away 10:25-10:30
        beat(afk, minutes, {"status": "not-afk"}, 1501)
    for minutes in (25, 30):
        beat(afk, minutes, {"status": "afk"}, 301)
    for minutes in (60, 70):
        beat(afk, minutes, {"status": "not-afk"}, 601)
    client.heartbeat(
        "aw-watcher-web-chrome",
        Event(timestamp=start, duration=60, data={"url": "https://example.org"}),
        1,
    )
    export = requests.get(f"{base}/export", timeout=30)
    return {"export": export.json()}


def main() -> None:
    scenario, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = ActivityWatchClient(f"sysmonstm-{scenario}", host=host, port=port)
    base = f"http://{host}:{port}/api/0"
    result = {"session": session, "watchers": watchers}[scenario](client, base)
    json.dump(result, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
