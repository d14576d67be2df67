"""The payment hub's REST API under ``/api/v1/payments`` (docs/payments.md "Gateway API").

Every route needs a bearer token (``auth``) and answers in the shape its caller's role may see
(``masking``). The routes live by concept: ``api_transactions`` (the ledger's transactions
with their decisions), ``api_reviews`` (the review queue and its answers), ``api_lists``
(allow and block lists), ``api_audit`` (the audit trail, whose reads are themselves audited).
This module holds what they share: the guard, the ledger, the masker and JSON responses.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response

from sysmonstm.domains.payments.auth import Guard, TokenBook
from sysmonstm.domains.payments.ledger import Ledger
from sysmonstm.domains.payments.masking import Masker
from sysmonstm.domains.payments.tokens import Principal
from sysmonstm.runtime import Core

PREFIX = "/payments"
_ENCODER = msgspec.json.Encoder()
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token, or a token the tokens file does not hold"},
    403: {"description": "The token's role may not do this"},
}


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_ENCODER.encode(body), status_code=status, media_type="application/json")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class PaymentsApi:
    """What the routes share: the core, the token guard, the ledger (opened on first use)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.guard = Guard(TokenBook(core.settings.payments.tokens_file))

    async def ledger(self) -> Ledger:
        from sysmonstm.domains.payments.resources import ledger

        return await ledger(self.core)

    def masker(self, who: Principal) -> Masker:
        """The view of ``who``'s role."""
        return Masker(who.role)


def routers(core: Core) -> list[APIRouter]:
    """The payment hub's routers, mounted by the gateway under ``/api/v1``."""
    from sysmonstm.domains.payments.api_audit import audit_router
    from sysmonstm.domains.payments.api_lists import lists_router
    from sysmonstm.domains.payments.api_reviews import reviews_router
    from sysmonstm.domains.payments.api_transactions import transactions_router

    api = PaymentsApi(core)
    router = APIRouter(prefix=PREFIX, tags=["payments"], responses=UNAUTHORIZED)

    @router.get("/me", summary="Who the token belongs to")
    async def me(request: Request) -> Response:
        """``{"user", "role"}`` of the request's token (any role; 401 without one)."""
        who = api.guard.principal(request)
        return json_response({"user": who.user, "role": who.role.value})

    for part in (transactions_router, reviews_router, lists_router, audit_router):
        router.include_router(part(api))
    return [router]
