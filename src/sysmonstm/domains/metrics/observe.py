"""Metrics envelopes (``metrics.<machine>``) as rule observations.

Per frame of a batch, series sharing a tag set become one observation: host-wide metrics
(no tags) one per frame, per-core ones one per core, per-mount ones one per mount. Its key is
the source id for the untagged set and ``f"{source}|{tags}"`` otherwise (``tags`` in
canonical form, e.g. ``cpu="0"``); its fields are the metric values by name, the tags, plus
``source``, ``host`` and each source label as ``label.<name>`` (so a label never shadows a
metric or a tag). Tags never override ``source`` or ``host``. Missing (``None``) and NaN
values are left out.

Cheap by construction: how a series list splits into tag sets is computed once per
(source, series list) and cached, so a batch costs one dict per tag set per frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sysmonstm.errors import InvalidInputError
from sysmonstm.events.envelope import Envelope
from sysmonstm.rules.model import Observation
from sysmonstm.store.series import format_series, parse_series

TOPIC_PATTERN = "metrics.>"


@dataclass(frozen=True, slots=True)
class _TagSet:
    key: str
    tags: tuple[tuple[str, str], ...]
    columns: tuple[tuple[int, str], ...]  # (index in the series list, metric name)


@lru_cache(maxsize=4096)
def _layout(source: str, series: tuple[str, ...]) -> tuple[_TagSet, ...]:
    """How ``series`` split into tag sets; raises ``InvalidInputError`` on a bad key."""
    columns: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    for index, key in enumerate(series):
        metric, tags = parse_series(key)
        columns.setdefault(tags, []).append((index, metric))
    out = []
    for tags, cols in columns.items():
        # format_series gives 'm{k="v"}'; the part inside the braces names the tag set.
        key = source if not tags else f"{source}|{format_series('_', dict(tags))[2:-1]}"
        out.append(_TagSet(key, tags, tuple(cols)))
    return tuple(out)


def _require(payload: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind):
        raise InvalidInputError(f"metrics payload: {name!r} is missing or of the wrong type")
    return value


def metrics_observations(envelope: Envelope) -> list[Observation]:
    """The observations of one metrics envelope; ``InvalidInputError`` if it is malformed."""
    payload = envelope.payload
    if not isinstance(payload, Mapping):
        raise InvalidInputError("metrics payload: expected a mapping")
    source: str = _require(payload, "source", str)
    series: Sequence[str] = _require(payload, "series", list)
    times: Sequence[int] = _require(payload, "times_ms", list)
    rows: Sequence[Sequence[Any]] = _require(payload, "values", list)
    if len(times) != len(rows):
        raise InvalidInputError("metrics payload: times_ms and values differ in length")
    base: dict[str, Any] = {"source": source, "host": payload.get("host") or source}
    labels = payload.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise InvalidInputError("metrics payload: 'labels' must be a mapping")
    for name, value in labels.items():
        base[f"label.{name}"] = value
    layout = _layout(source, tuple(series))
    width = len(series)
    out: list[Observation] = []
    for time_ms, row in zip(times, rows, strict=True):
        if not isinstance(row, list | tuple) or len(row) != width:
            raise InvalidInputError("metrics payload: each values row needs one value per series")
        if not isinstance(time_ms, int) or isinstance(time_ms, bool):
            raise InvalidInputError("metrics payload: times_ms must be integers")
        for tag_set in layout:
            fields = dict(tag_set.tags)
            fields.update(base)
            found = False
            for index, metric in tag_set.columns:
                value = row[index]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                fields[metric] = value
                found = True
            if found:
                out.append(Observation(tag_set.key, time_ms, fields))
    return out


EXTRACTORS = {TOPIC_PATTERN: metrics_observations}
"""The metrics domain's extractors, keyed by the topic pattern they read."""
