"""The alert board: which alerts are active now, kept by the gateway for dashboards.

Seeded from the warm tier's ``alert`` records (an instance whose newest transition is
``pending`` or ``firing`` is active), then kept current from ``alerts.>`` on the bus. It
subscribes before it reads the records, so no transition falls between the two; each
instance keeps its newest transition by ``time_ms``, so replays and stragglers are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request

from sysmonstm.errors import SysmonstmError
from sysmonstm.events.bus import Bus, Subscription
from sysmonstm.store.warm import WarmTier

log = structlog.get_logger(__name__)

ACTIVE_STATES = frozenset({"pending", "firing"})
ENDED_STATES = frozenset({"resolved", "cancelled"})
SEED_RECORDS = 10_000  # newest transitions read at start
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2, "success": 3}
_ENDED_MEMORY = 10_000  # ended instances remembered to refuse their stragglers


def _sort_key(alert: dict[str, Any]) -> tuple[int, int, int]:
    return (
        0 if alert.get("state") == "firing" else 1,
        _SEVERITY_RANK.get(str(alert.get("severity")), 9),
        -int(alert.get("started_ms") or 0),
    )


class AlertBoard:
    """Active alert instances by id (see the module docstring)."""

    def __init__(self, bus: Bus, warm: WarmTier) -> None:
        self.bus = bus
        self.warm = warm
        self.ignored = 0
        self._active: dict[str, dict[str, Any]] = {}
        self._ended: OrderedDict[str, int] = OrderedDict()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, seed from the warm tier, then follow the bus in the background."""
        self._sub = await self.bus.subscribe("alerts.>", maxsize=10_000)
        records = await self.warm.records("alert", limit=SEED_RECORDS)
        for record in reversed(records):  # oldest first, so the newest transition wins
            self.apply(record.body)
        self._task = asyncio.create_task(self._follow(self._sub), name="alert-board")

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(SysmonstmError):
                await self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, sub: Subscription) -> None:
        try:
            async for env in sub:
                self.apply(env.payload)
        except SysmonstmError as exc:
            log.warning("alert board stopped following the bus", error=str(exc))

    def apply(self, alert: Any) -> bool:
        """Take one transition; False if stale or malformed (malformed ones add to ``ignored``)."""
        if not (
            isinstance(alert, dict)
            and isinstance(alert.get("id"), str)
            and alert.get("state") in ACTIVE_STATES | ENDED_STATES
        ):
            self.ignored += 1
            return False
        aid: str = alert["id"]
        t = alert.get("time_ms")
        t = t if isinstance(t, int) else 0
        current = self._active.get(aid)
        newest = max(int(current.get("time_ms") or 0) if current else -1, self._ended.get(aid, -1))
        if t < newest:
            return False
        if alert["state"] in ENDED_STATES:
            self._active.pop(aid, None)
            self._ended[aid] = t
            self._ended.move_to_end(aid)
            while len(self._ended) > _ENDED_MEMORY:
                self._ended.popitem(last=False)
        else:
            self._active[aid] = alert
            self._ended.pop(aid, None)
        return True

    def active(self) -> list[dict[str, Any]]:
        """Active alerts: firing before pending, most severe first, newest first."""
        return sorted(self._active.values(), key=_sort_key)


def alerts_router() -> APIRouter:
    """``GET /alerts``: the board's active alerts plus recent transitions from the warm tier."""
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", summary="Active alerts and recent alert history")
    async def list_alerts(
        request: Request,
        history_limit: Annotated[
            int, Query(ge=0, le=1000, description="Newest transitions to return")
        ] = 100,
    ) -> dict[str, list[dict[str, Any]]]:
        """``active``: alerts pending or firing now (see AlertBoard); ``history``: the newest
        ``history_limit`` transitions (every state), newest first."""
        board: AlertBoard = request.app.state.alerts
        history = []
        if history_limit:
            records = await board.warm.records("alert", limit=history_limit)
            history = [r.body for r in records]
        return {"active": board.active(), "history": history}

    return router
