"""Canonical series keys: one spelling per series, clear errors for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysmonstm.errors import InvalidInputError
from sysmonstm.store.series import format_series, parse_series, series_metric

names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.]{0,20}", fullmatch=True)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(metric=names, tags=st.dictionaries(names, values, max_size=5))
def test_format_then_parse_round_trips(metric: str, tags: dict[str, str]) -> None:
    key = format_series(metric, tags)
    assert parse_series(key) == (metric, tuple(sorted(tags.items())))
    assert series_metric(key) == metric


def test_tags_are_written_sorted_and_escaped() -> None:
    key = format_series("temp.celsius", {"sensor": "core", "label": 'Core "0"\n\\'})
    assert key == 'temp.celsius{label="Core \\"0\\"\\n\\\\",sensor="core"}'


@pytest.mark.parametrize(
    "key",
    [
        "",
        "9cpu",
        "cpu used",
        "cpu{}",
        'cpu{a="1"',
        'cpu{b="1",a="2"}',
        'cpu{a="1",a="2"}',
        "cpu{a=1}",
        'cpu{a="1",}',
        'cpu{a="x"y}',
        'cpu{a="\\q"}',
        "x" * 200,
        "cpu{" + ",".join(f't{i:02d}="v"' for i in range(17)) + "}",
    ],
)
def test_malformed_or_non_canonical_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_series(key)
