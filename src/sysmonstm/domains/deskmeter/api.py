"""Deskmeter's REST API under ``/api/v1/deskmeter`` (the contract: docs/deskmeter.md "REST").

The routes live by concept: ``api_read`` (machines, the open intervals, questions about the
past, summaries, exports) and ``api_write`` (setting a task, events from the GNOME Shell
extension). This module holds what they share: JSON responses, the machine lists, and how
a request's times, range and time zone are read.

Machines come from the interval store (every machine that ever reported); what is open now
from the hot tier's states (``hot.machines_now``: the store when the hot tier is degraded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from fastapi import APIRouter, Response

from sysmonstm.domains.deskmeter.hot import machines_now
from sysmonstm.domains.deskmeter.humantime import (
    parse_instant,
    parse_period,
    period_range,
    zone_of,
)
from sysmonstm.domains.deskmeter.model import MachineInfo
from sysmonstm.domains.deskmeter.resources import interval_store
from sysmonstm.domains.deskmeter.store import IntervalStore
from sysmonstm.errors import InvalidInputError
from sysmonstm.runtime import Core
from sysmonstm.transport.identity import MACHINE_ID, MACHINE_ID_RULE

PREFIX = "/deskmeter"
_ENCODER = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_ENCODER.encode(body), status_code=status, media_type="application/json")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_machine(machine: str | None, *, what: str = "machine") -> str | None:
    """``machine`` if it is a valid machine id (or None); ``InvalidInputError`` otherwise."""
    if machine is None:
        return None
    if not MACHINE_ID.fullmatch(machine):
        raise InvalidInputError(f"{what}: {machine[:64]!r} is not a machine id ({MACHINE_ID_RULE})")
    return machine


@dataclass(frozen=True, slots=True)
class Span:
    """A request's range ``[from_ms, to_ms)``, the zone its local times were read in, and
    the calendar period it names (if it named one)."""

    from_ms: int
    to_ms: int
    zone: str
    period: str | None = None


class Questions:
    """What the routes read from: the interval store (opened on first use) and the machines."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def store(self) -> IntervalStore:
        return await interval_store(self.core)

    async def machines(self) -> list[MachineInfo]:
        """Every machine that ever reported, most recently heard first, from the interval
        store (it lists them all; the hot tier may have lost some in an outage)."""
        found = await (await self.store()).machines()
        return sorted(found, key=lambda m: (-m.last_event_ms, m.machine.id))

    async def now(self) -> list[MachineInfo]:
        """Machines with their open intervals as the hot tier has them (the store's while
        it is degraded or empty), most recently heard first."""
        return await machines_now(self.core)

    async def zone(self, tz: str | None, machine: str | None) -> str:
        """The zone to read local times in: ``tz``; else the machine's; else the one zone all
        machines share; else UTC."""
        if tz is not None:
            zone_of(tz)
            return tz
        zones = {
            m.machine.time_zone for m in await self.machines() if machine in (None, m.machine.id)
        }
        return zones.pop() if len(zones) == 1 else "UTC"

    async def instant(
        self, text: str, tz: str | None, machine: str | None, name: str
    ) -> tuple[int, str]:
        zone = await self.zone(tz, machine)
        return parse_instant(text, now_ms(), ZoneInfo(zone), name=name), zone

    async def span(
        self,
        from_: str | None,
        to: str | None,
        tz: str | None,
        machine: str | None,
        *,
        period: str | None = None,
        at: str | None = None,
        default_from: str | None = None,
    ) -> Span:
        """A range from ``from``/``to`` (``to`` defaults to now) or from a calendar
        ``period`` holding ``at`` (default now); one of the two ways, not both."""
        zone_name = await self.zone(tz, machine)
        zone = ZoneInfo(zone_name)
        now = now_ms()
        if period is not None:
            if from_ is not None or to is not None:
                raise InvalidInputError("give either period (with at) or from/to, not both")
            kind = parse_period(period)
            at_ms = now if at is None else parse_instant(at, now, zone, name="at")
            start, end = period_range(kind, at_ms, zone)
            return Span(start, end, zone_name, kind.value)
        if at is not None:
            raise InvalidInputError("at only goes with period")
        if from_ is None:
            if default_from is None:
                raise InvalidInputError("from is required (or a period)")
            from_ = default_from
        start = parse_instant(from_, now, zone, name="from")
        end = now if to is None else parse_instant(to, now, zone, name="to")
        if start >= end:
            raise InvalidInputError(f"from ({start}) must be before to ({end})")
        return Span(start, end, zone_name)


def routers(core: Core) -> list[APIRouter]:
    """Deskmeter's routers, mounted by the gateway under ``/api/v1``."""
    from sysmonstm.domains.deskmeter.api_read import read_router
    from sysmonstm.domains.deskmeter.api_write import write_router

    questions = Questions(core)
    router = APIRouter(prefix=PREFIX, tags=["deskmeter"])
    router.include_router(read_router(questions))
    router.include_router(write_router(questions))
    return [router]
