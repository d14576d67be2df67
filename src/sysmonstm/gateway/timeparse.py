"""Read the time bounds of a range query: Unix ms, ISO 8601, or relative to now.

Accepted forms: ``1733300000000`` (Unix milliseconds), ``2026-12-04T10:00:00Z`` or any
ISO 8601 ``datetime.fromisoformat`` reads (a time without offset is UTC), ``now``,
``-15m`` / ``now-15m`` (units ``ms s m h d w``, decimals allowed: ``-1.5h``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sysmonstm.errors import InvalidInputError

_RELATIVE = re.compile(r"^(?:now\s*)?-\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_time(text: str, now_ms: int, *, name: str = "time") -> int:
    """Unix milliseconds for ``text``; ``InvalidInputError`` naming ``name`` when unreadable."""
    s = text.strip().lower()
    if s == "now":
        return now_ms
    if s.isdigit():
        if len(s) > 15 or int(s) > _MAX_MS:
            raise InvalidInputError(f"{name}: {text!r} is beyond year 9999 (Unix ms expected)")
        return int(s)
    m = _RELATIVE.match(s)
    if m is not None:
        return now_ms - round(float(m.group(1)) * _UNIT_MS[m.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"{name}: cannot read {text[:64]!r}; use Unix ms, ISO 8601 "
            "(2026-12-04T10:00:00Z), 'now' or a relative time such as -15m, -24h, -7d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
