"""The payment hub as the core sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysmonstm.domain import Domain, Ingest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import APIRouter

    from sysmonstm.runtime import Core


def _ingest(core: Core) -> Ingest:
    from sysmonstm.domains.payments.ingest import PaymentsIngest

    return PaymentsIngest(core)


def _routers(core: Core) -> Sequence[APIRouter]:
    from sysmonstm.domains.payments.api import routers

    return routers(core)


DOMAIN = Domain(name="payments", ingest=_ingest, api_routers=_routers)
