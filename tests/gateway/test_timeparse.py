"""parse_time: Unix ms, ISO 8601, now and relative times; unreadable text is refused."""

from __future__ import annotations

import pytest

from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.timeparse import parse_time

NOW = 1_796_400_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        (" NOW ", NOW),
        ("1733300000000", 1_733_300_000_000),
        ("-15m", NOW - 15 * 60_000),
        ("now-24h", NOW - 86_400_000),
        ("now - 7d", NOW - 7 * 86_400_000),
        ("-1.5h", NOW - 5_400_000),
        ("-30s", NOW - 30_000),
        ("-250ms", NOW - 250),
        ("-2w", NOW - 14 * 86_400_000),
        ("2026-12-04T10:00:00Z", 1_796_378_400_000),
        ("2026-12-04T11:00:00+01:00", 1_796_378_400_000),
        ("2026-12-04T10:00:00", 1_796_378_400_000),
        ("2026-12-04", 1_796_342_400_000),
    ],
)
def test_parse_time_reads_each_form(text: str, expected: int) -> None:
    """Every documented form gives Unix milliseconds (no offset means UTC)."""
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "soon", "-15", "15m", "-15x", "now+5m", "1e12"])
def test_parse_time_refuses_unreadable_text_naming_the_parameter(text: str) -> None:
    """The error names the parameter and the accepted forms."""
    with pytest.raises(InvalidInputError, match=r"^from: cannot read .*-15m"):
        parse_time(text, NOW, name="from")
