"""Intervals as the outside sees them: JSON objects, and CSV or JSON exports of a range.

An export walks the store page by page (``iter_intervals``) so a year of intervals streams
in constant memory; each interval appears once, clipped to the range, in the store's order
(start, then machine).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from sysmonstm.domains.deskmeter.humantime import local_datetime, zone_of
from sysmonstm.domains.deskmeter.model import Interval
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.errors import InvalidInputError

PAGE = 5_000
FORMATS = ("csv", "json")
CSV_COLUMNS = (
    "machine",
    "start_ms",
    "end_ms",
    "start_local",
    "end_local",
    "time_zone",
    "duration_s",
    "workspace_index",
    "workspace",
    "task",
    "idle",
    "open",
)
_ENCODER = msgspec.json.Encoder()


def interval_json(iv: Interval) -> dict[str, Any]:
    """An interval as REST and exports give it (times in UTC ms, duration in seconds)."""
    return {
        "machine": iv.machine,
        "start_ms": iv.start_ms,
        "end_ms": iv.end_ms,
        "duration_s": iv.duration_ms / 1000,
        "workspace_index": iv.workspace_index,
        "workspace": iv.workspace,
        "task": iv.task,
        "idle": iv.idle,
        "open": iv.open,
        "time_zone": iv.time_zone,
    }


def check_format(text: str) -> str:
    """``csv`` or ``json``; ``InvalidInputError`` otherwise."""
    fmt = text.strip().lower()
    if fmt not in FORMATS:
        raise InvalidInputError(f"format: {text[:32]!r} is not one of csv, json")
    return fmt


async def iter_intervals(
    store: IntervalStore,
    from_ms: int,
    to_ms: int,
    machine: str | None = None,
    *,
    page: int = PAGE,
) -> AsyncIterator[Interval]:
    """Every interval overlapping ``[from_ms, to_ms)``, clipped, each once, read ``page`` at
    a time.

    Each next page starts at the last start seen. An interval that began before that cursor
    comes back clipped to it, so it is recognised by its machine: a machine's intervals never
    overlap, so one starting before the end of the machine's last interval given out is that
    same interval again.
    """
    cursor, limit = from_ms, page
    given_end: dict[str, int] = {}
    given_at_cursor: set[tuple[str, int]] = set()
    while cursor < to_ms:
        found = await store.intervals(cursor, to_ms, machine, limit)
        fresh = [
            iv
            for iv in found
            if iv.start_ms >= given_end.get(iv.machine, from_ms)
            and (iv.machine, iv.start_ms) not in given_at_cursor
        ]
        for iv in fresh:
            given_end[iv.machine] = iv.end_ms
            yield iv
        if len(found) < limit:
            return
        last = found[-1].start_ms
        if not fresh and last == cursor:
            limit *= 2  # a full page of intervals that all start at the cursor: look further
            continue
        if last != cursor:
            given_at_cursor.clear()
        given_at_cursor.update((iv.machine, iv.start_ms) for iv in fresh if iv.start_ms == last)
        cursor, limit = last, page


def _csv_row(iv: Interval) -> list[object]:
    zone = zone_of(iv.time_zone) if iv.time_zone else zone_of("UTC")
    return [
        iv.machine,
        iv.start_ms,
        iv.end_ms,
        local_datetime(iv.start_ms, zone).isoformat(timespec="milliseconds"),
        local_datetime(iv.end_ms, zone).isoformat(timespec="milliseconds"),
        iv.time_zone,
        f"{iv.duration_ms / 1000:.3f}",
        iv.workspace_index,
        iv.workspace,
        iv.task,
        "true" if iv.idle else "false",
        "true" if iv.open else "false",
    ]


async def csv_chunks(
    intervals: AsyncIterator[Interval], rows_per_chunk: int = 500
) -> AsyncIterator[bytes]:
    """RFC 4180 CSV (a header, then one row per interval; local times in the machine's zone)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    async for iv in intervals:
        writer.writerow(_csv_row(iv))
        rows += 1
        if rows % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def json_chunks(
    intervals: AsyncIterator[Interval], header: dict[str, Any], rows_per_chunk: int = 500
) -> AsyncIterator[bytes]:
    """One JSON object: ``header``'s fields, then ``"intervals": [...]``."""
    head = _ENCODER.encode(header)
    opening = head[:-1] + (b"," if header else b"") + b'"intervals":['
    parts: list[bytes] = [opening]
    first = True
    async for iv in intervals:
        parts.append((b"" if first else b",") + _ENCODER.encode(interval_json(iv)))
        first = False
        if len(parts) >= rows_per_chunk:
            yield b"".join(parts)
            parts = []
    parts.append(b"]}")
    yield b"".join(parts)
