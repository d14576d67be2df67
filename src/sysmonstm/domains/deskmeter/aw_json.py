"""ActivityWatch's JSON: events, buckets and exports read and written as aw-server does.

Writing: timestamps are ``datetime.isoformat()`` in UTC (``2024-01-01T12:00:00.123000+00:00``,
no fraction when it is zero), durations ``timedelta.total_seconds()`` (always a float), keys in
aw-server's order. Reading: ISO 8601 timestamps (a time without zone is UTC, as aw-core
assumes), truncated to the millisecond like aw-core; durations in seconds. Input that aw-server
would crash on (a timestamp that is not a date, a duration that is not a number, an event
key it does not know) is refused here with ``InvalidInputError`` naming the field.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sysmonstm.domains.deskmeter.aw_merge import seconds_to_us
from sysmonstm.domains.deskmeter.aw_store import AwBucket, AwBucketExport, AwEvent
from sysmonstm.errors import InvalidInputError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_EVENT_KEYS = frozenset({"id", "timestamp", "duration", "data"})


def now_us() -> int:
    return time.time_ns() // 1000


def _no_constant(name: str) -> Any:
    raise InvalidInputError(f"{name} is not JSON")


def loads(body: bytes | str, what: str = "request body") -> Any:
    """Strict JSON (``NaN`` and ``Infinity`` refused) or ``InvalidInputError``."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidInputError(f"{what} is not valid JSON: {exc}"[:300]) from None


def dumps(value: Any) -> str:
    """JSON text of stored ``data`` (what ``loads`` gives back unchanged)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_time_us(text: object, what: str) -> int:
    """An ISO 8601 date-time as UTC Unix microseconds (no zone: UTC)."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be an ISO 8601 date-time string, got {text!r}")
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{what}: not an ISO 8601 date-time: {text[:100]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _US


def iso(us: int) -> str:
    """UTC microseconds as aw-server writes a timestamp."""
    return (_EPOCH + timedelta(microseconds=us)).isoformat()


def seconds(us: int) -> float:
    """Microseconds as ``timedelta.total_seconds()`` gives them."""
    return us / 1_000_000


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _string(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise InvalidInputError(f"{what}.{key} must be a string, got {value!r}"[:200])
    return value


def parse_event(value: object, what: str = "event", *, keep_id: bool = True) -> AwEvent:
    """An event from its JSON. ``timestamp`` is required; ``duration`` defaults to 0 and
    ``data`` to ``{}``; an ``id`` is kept when ``keep_id`` (it asks to replace that event)."""
    obj = _object(value, what)
    unknown = sorted(set(obj) - _EVENT_KEYS)
    if unknown:
        raise InvalidInputError(f"{what} has unknown keys {unknown}; known: {sorted(_EVENT_KEYS)}")
    if "timestamp" not in obj:
        raise InvalidInputError(f"{what}.timestamp is required")
    timestamp_ms = parse_time_us(obj["timestamp"], f"{what}.timestamp") // 1000
    duration = obj.get("duration", 0)
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise InvalidInputError(f"{what}.duration must be a number of seconds, got {duration!r}")
    data = obj.get("data")
    if data is None:
        data = {}
    data = _object(data, f"{what}.data")
    event_id = obj.get("id") if keep_id else None
    if event_id is not None and (isinstance(event_id, bool) or not isinstance(event_id, int)):
        raise InvalidInputError(f"{what}.id must be an integer, got {event_id!r}")
    return AwEvent(timestamp_ms, seconds_to_us(float(duration), f"{what}.duration"), data, event_id)


def event_json(event: AwEvent, *, with_id: bool = True) -> dict[str, Any]:
    """An event as aw-server returns it (``with_id=False``: as its exports hold it)."""
    out: dict[str, Any] = {"id": event.id} if with_id else {}
    out["timestamp"] = iso(event.timestamp_us)
    out["duration"] = seconds(event.duration_us)
    out["data"] = dict(event.data)
    return out


def bucket_json(bucket: AwBucket) -> dict[str, Any]:
    """A bucket's metadata as aw-server returns it (``last_updated`` when known)."""
    out: dict[str, Any] = {
        "id": bucket.id,
        "created": iso(bucket.created_us),
        "name": bucket.name,
        "type": bucket.type,
        "client": bucket.client,
        "hostname": bucket.hostname,
        "data": dict(bucket.data),
    }
    if bucket.last_updated_us is not None:
        out["last_updated"] = iso(bucket.last_updated_us)
    return out


def parse_new_bucket(bucket_id: str, value: object, created_us: int) -> AwBucket:
    """The body of ``POST /api/0/buckets/<id>``: ``client``, ``type`` and ``hostname`` are
    required; ``name`` and ``data`` are kept when given (as aw-server-rust does)."""
    obj = _object(value, "bucket")
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidInputError(f"bucket.name must be a string, got {name!r}"[:200])
    data = obj.get("data")
    return AwBucket(
        bucket_id,
        _string(obj, "type", "bucket"),
        _string(obj, "client", "bucket"),
        _string(obj, "hostname", "bucket"),
        created_us,
        name,
        _object(data, "bucket.data") if data is not None else {},
    )


def export_json(exports: list[AwBucketExport]) -> dict[str, Any]:
    """``{"buckets": {id: {...metadata, "events": [...]}}}``, events newest first, no ids."""
    buckets: dict[str, Any] = {}
    for export in exports:
        body = bucket_json(export.bucket)
        body.pop("last_updated", None)
        body["events"] = [event_json(e, with_id=False) for e in export.events]
        buckets[export.bucket.id] = body
    return {"buckets": buckets}


def _parse_export_bucket(key: str, value: object) -> AwBucketExport:
    what = f"buckets[{key!r}]"
    # other keys are ignored: aw-server-rust's exports add some (``metadata``, ``last_updated``)
    obj = _object(value, what)
    bucket_id = obj.get("id", key)
    if not isinstance(bucket_id, str) or not bucket_id:
        raise InvalidInputError(f"{what}.id must be a non-empty string")
    events = obj.get("events", [])
    if not isinstance(events, list):
        raise InvalidInputError(f"{what}.events must be a list")
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidInputError(f"{what}.name must be a string or null")
    data = obj.get("data")
    bucket = AwBucket(
        bucket_id,
        _string(obj, "type", what),
        _string(obj, "client", what),
        _string(obj, "hostname", what),
        parse_time_us(obj.get("created"), f"{what}.created"),
        name,
        _object(data, f"{what}.data") if data is not None else {},
    )
    parsed = tuple(
        parse_event(e, f"{what}.events[{i}]", keep_id=False) for i, e in enumerate(events)
    )
    return AwBucketExport(bucket, parsed)


def parse_export(value: object) -> list[AwBucketExport]:
    """An export (``GET /api/0/export``, or the file the web UI saves), validated whole:
    any fault raises ``InvalidInputError`` naming where it is. Event ids are dropped."""
    obj = _object(value, "export")
    buckets = obj.get("buckets")
    if isinstance(buckets, list):  # the export schema allows a list of buckets too
        buckets = {
            b.get("id", str(i)) if isinstance(b, dict) else str(i): b for i, b in enumerate(buckets)
        }
    buckets = _object(buckets, "export.buckets")
    out = [_parse_export_bucket(str(k), v) for k, v in buckets.items()]
    seen = Counter(e.bucket.id for e in out)
    duplicated = sorted(i for i, n in seen.items() if n > 1)
    if duplicated:
        raise InvalidInputError(f"the export holds buckets {duplicated} more than once")
    return out
