"""Canonical text form of a series: ``metric{key="value",...}`` with tags sorted by key.

One string per series keeps batches cheap to decode (no per-sample message objects) and
gives every backend the same key. Parsing is only needed the first time a series is seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from sysmonstm.errors import InvalidInputError

NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.]{0,127}")
_TAG_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_.]{0,63})="((?:[^"\\\n]|\\[\\"n]){0,256})"')
MAX_TAGS = 16


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\\"n])", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def format_series(metric: str, tags: Mapping[str, str] | None = None) -> str:
    """The canonical key of ``metric`` with ``tags``."""
    if not tags:
        return metric
    inner = ",".join(f'{k}="{_escape(tags[k])}"' for k in sorted(tags))
    return f"{metric}{{{inner}}}"


@lru_cache(maxsize=65_536)
def parse_series(key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split a canonical key into its metric and sorted tag pairs.

    Raises ``InvalidInputError`` unless ``key`` is well formed and canonical (tags sorted,
    no duplicates), so two spellings can never name the same series.
    """
    brace = key.find("{")
    metric = key if brace < 0 else key[:brace]
    if not NAME_RE.fullmatch(metric):
        raise InvalidInputError(f"series {key[:80]!r}: bad metric name")
    if brace < 0:
        return metric, ()
    if not key.endswith("}"):
        raise InvalidInputError(f"series {key[:80]!r}: tags must end with '}}'")
    body = key[brace + 1 : -1]
    tags: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        m = _TAG_RE.match(body, pos)
        if m is None:
            raise InvalidInputError(f'series {key[:80]!r}: tags must read key="value",...')
        tags.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ",":
                raise InvalidInputError(f"series {key[:80]!r}: tags are separated by ','")
            pos += 1
            if pos == len(body):
                raise InvalidInputError(f"series {key[:80]!r}: trailing ','")
    if not tags:
        raise InvalidInputError(f"series {key[:80]!r}: empty tag list; drop the braces")
    if len(tags) > MAX_TAGS:
        raise InvalidInputError(f"series {key[:80]!r}: more than {MAX_TAGS} tags")
    keys = [k for k, _ in tags]
    if keys != sorted(set(keys)):
        raise InvalidInputError(f"series {key[:80]!r}: tag keys must be unique and sorted")
    return metric, tuple(tags)


def series_metric(key: str) -> str:
    """The metric name of a canonical key, without parsing its tags."""
    brace = key.find("{")
    return key if brace < 0 else key[:brace]
