"""REST for the metrics domain: hosts (latest state) and series (history), under /api/v1.

Hosts come from the hot tier, and from the warm tier for sources the hot tier does not know
(after a restart, or quiet longer than its window) and for every source while the hot tier
is degraded (down): then each host says ``"live": "degraded"`` and responses carry the
header ``Sysmonstm-Live: degraded``. Range reads go through the query router, which picks
the tier by time range and point budget (a degraded hot tier reads as empty, so the warm
tier answers). Responses are encoded with msgspec; the pydantic models below only document
them in OpenAPI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.timeparse import parse_time
from sysmonstm.runtime import Core
from sysmonstm.store.hot import LatestPoint
from sysmonstm.store.model import LatestValue, SourceState
from sysmonstm.store.query import MAX_POINTS
from sysmonstm.store.series import parse_series

DOMAIN = "metrics"
LIVE_HEADER = "Sysmonstm-Live"
_ENCODER = msgspec.json.Encoder()


class Point(BaseModel):
    t: int = Field(description="Unix ms of the sample")
    v: float


class Host(BaseModel):
    id: str = Field(description="machine id: stable across restarts and renames")
    hostname: str
    labels: dict[str, str]
    first_seen_ms: int
    last_seen_ms: int
    age_s: float = Field(description="seconds since the newest sample, by the gateway's clock")
    interval_ms: int = Field(description="the collector's sampling interval")
    values: dict[str, Point] = Field(description="latest value of each series by key")
    live: str = Field(
        description="ok: latest values come from the live (hot) tier; degraded: the hot tier "
        "is down and they come from stored (warm) data"
    )


class HostDetail(Host):
    series: list[str] = Field(description="every series key stored for the host, sorted")


class Series(BaseModel):
    host: str
    series: str
    tier: str = Field(description="hot, raw, 1m or 1h: where the points came from")
    step_ms: int = Field(description="bucket width (the sampling interval for raw points)")
    from_ms: int
    to_ms: int
    t: list[int] = Field(description="bucket start (Unix ms) per point, ascending")
    avg: list[float]
    min: list[float]
    max: list[float]


def _json(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_ENCODER.encode(body), media_type="application/json", headers=headers)


def _live(core: Core) -> str:
    """``degraded`` while the hot tier is down (asked after the reads, which may flip it)."""
    return "degraded" if core.hot.degraded else "ok"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


Latest = Mapping[str, LatestPoint]  # series key -> newest point


def _pairs(values: list[LatestValue]) -> dict[str, LatestPoint]:
    return {lv.series: LatestPoint(lv.time_ms, lv.value) for lv in values}


def _host(
    state: SourceState, values: Latest, now_ms: int, first_seen_ms: int | None = None
) -> dict[str, Any]:
    info = state.source
    return {
        "id": info.id,
        "hostname": info.name or info.id,
        "labels": dict(info.labels),
        "first_seen_ms": min(state.first_seen_ms, first_seen_ms or state.first_seen_ms),
        "last_seen_ms": state.last_seen_ms,
        "age_s": round(max(0, now_ms - state.last_seen_ms) / 1000, 3),
        "interval_ms": state.interval_ms,
        "values": dict(values),  # points encode as {"t": ..., "v": ...}
    }


def _merge_latest(older: list[LatestValue], newer: list[LatestValue]) -> Latest:
    merged = _pairs(older)
    for lv in newer:
        seen = merged.get(lv.series)
        if seen is None or lv.time_ms >= seen.t:
            merged[lv.series] = LatestPoint(lv.time_ms, lv.value)
    return {k: merged[k] for k in sorted(merged)}


async def hosts_overview(core: Core) -> tuple[list[dict[str, Any]], str]:
    """The fleet overview ``GET /hosts`` answers, and its ``live`` state: every host with
    its latest values, the hot tier's (one read for all hosts), then the warm tier's for
    hosts the hot tier does not know or has no values of (all of them while it is
    degraded; those reads run side by side); most recently seen first."""
    now = _now_ms()
    hot = await core.hot.sources(DOMAIN)
    warm = {s.source.id: s for s in await core.warm.sources(DOMAIN)}
    ids = [s.source.id for s in hot]
    latest: dict[str, Latest] = dict(await core.hot.latest_values(DOMAIN, ids)) if hot else {}
    # hosts the hot tier lists without values (it went down meanwhile), and those it lacks
    listed = set(ids)
    missing = [i for i in ids if not latest.get(i) and i in warm]
    missing += [i for i in warm if i not in listed]
    stored = await asyncio.gather(*(core.warm.latest(DOMAIN, i) for i in missing))
    latest.update((i, _pairs(values)) for i, values in zip(missing, stored, strict=True))
    out = []
    for state in hot:
        found = warm.pop(state.source.id, None)
        first = found.first_seen_ms if found else None
        out.append(_host(state, latest.get(state.source.id, {}), now, first))
    out.extend(_host(s, latest[s.source.id], now) for s in warm.values())
    out.sort(key=lambda h: h["last_seen_ms"], reverse=True)
    live = _live(core)
    for host in out:
        host["live"] = live
    return out, live


def routers(core: Core) -> list[APIRouter]:
    """The metrics domain's routers (mounted by the gateway under ``/api/v1``)."""
    router = APIRouter(tags=["metrics"])

    @router.get("/hosts", response_model=list[Host], summary="Every known host, newest first")
    async def list_hosts() -> Response:
        """Hosts with their latest values: the hot tier's, then the warm tier's for hosts
        the hot tier does not know (all of them while it is degraded); most recently seen
        first. ``live`` (and the ``Sysmonstm-Live`` header) says which."""
        out, live = await hosts_overview(core)
        return _json(out, {LIVE_HEADER: live})

    @router.get(
        "/hosts/{host_id:path}",
        response_model=HostDetail,
        summary="One host with every latest value and series key",
        responses={404: {"description": "No such host"}},
    )
    async def get_host(host_id: str) -> Response:
        """The host's latest value per series (hot tier over warm; warm alone while the hot
        tier is degraded) and every stored key."""
        now = _now_ms()
        hot = next((s for s in await core.hot.sources(DOMAIN) if s.source.id == host_id), None)
        stored = next((s for s in await core.warm.sources(DOMAIN) if s.source.id == host_id), None)
        if hot is None and stored is None:
            raise HTTPException(
                404,
                f"no host {host_id[:200]!r}: it has never sent a sample or its data has expired",
            )
        hot_values = await core.hot.latest(DOMAIN, host_id) if hot else []
        warm_values = await core.warm.latest(DOMAIN, host_id) if stored else []
        keys = set(await core.warm.series(DOMAIN, host_id)) if stored else set()
        keys.update(lv.series for lv in hot_values)
        state = hot or stored
        assert state is not None
        body = _host(
            state,
            _merge_latest(warm_values, hot_values),
            now,
            stored.first_seen_ms if stored else None,
        )
        body["series"] = sorted(keys)
        body["live"] = _live(core)
        return _json(body, {LIVE_HEADER: body["live"]})

    @router.get(
        "/series",
        response_model=Series,
        summary="History of one series",
        responses={400: {"description": "Unreadable time, bad key or empty range"}},
    )
    async def get_series(
        host: Annotated[str, Query(min_length=1, max_length=256, description="host id")],
        series: Annotated[
            str,
            Query(
                min_length=1,
                max_length=2048,
                description='canonical key, e.g. disk.used_pct{mount="/"}',
            ),
        ],
        from_: Annotated[
            str, Query(alias="from", max_length=64, description="Unix ms, ISO 8601, now, or -15m")
        ] = "-1h",
        to: Annotated[str, Query(max_length=64, description="same forms as from")] = "now",
        points: Annotated[int, Query(ge=1, le=MAX_POINTS, description="point budget")] = 1000,
    ) -> Response:
        """Points of one series in ``[from, to)``, at most ``points``, columnar (uPlot-ready).
        Unknown hosts and series give empty columns."""
        parse_series(series)
        now = _now_ms()
        start = parse_time(from_, now, name="from")
        end = parse_time(to, now, name="to")
        if start >= end:
            raise InvalidInputError(f"from ({start}) must be before to ({end})")
        found = await core.queries.range(DOMAIN, host, series, start, end, points)
        return _json(
            {
                "host": host,
                "series": series,
                "tier": str(found.tier),
                "step_ms": found.step_ms,
                "from_ms": start,
                "to_ms": end,
                "t": found.times_ms.tolist(),
                "avg": found.avg.tolist(),
                "min": found.min.tolist(),
                "max": found.max.tolist(),
            }
        )

    return [router]
