"""``GET /payments/transactions`` and ``GET /payments/transactions/{event_id}`` (viewer+)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from sysmonstm.domains.payments.api import PaymentsApi, json_response, now_ms
from sysmonstm.domains.payments.auth import Access
from sysmonstm.domains.payments.model import Action
from sysmonstm.domains.payments.tokens import Principal
from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.timeparse import parse_time

MAX_LIMIT = 1000
DEFAULT_FROM = "-24h"
_ACTIONS = {a.label: a for a in Action}


def parse_action(text: str | None) -> Action | None:
    if text is None:
        return None
    try:
        return _ACTIONS[text.strip().lower()]
    except KeyError:
        raise InvalidInputError(
            f"action: {text[:32]!r} is not one of {', '.join(_ACTIONS)}"
        ) from None


def time_range(from_: str | None, to: str | None) -> tuple[int, int]:
    """``[from, to)`` in Unix ms; ``from`` defaults to 24 h ago, ``to`` to now."""
    now = now_ms()
    start = parse_time(from_ or DEFAULT_FROM, now, name="from")
    end = now + 1 if to is None else parse_time(to, now, name="to")
    if start >= end:
        raise InvalidInputError(f"from ({start}) must be before to ({end})")
    return start, end


def transactions_router(api: PaymentsApi) -> APIRouter:
    router = APIRouter()
    reader = Depends(api.guard.needs(Access.READ_TRANSACTIONS))

    @router.get(
        "/transactions",
        summary="Transactions with their decisions, oldest first",
        responses={400: {"description": "A bad time, action or limit"}},
    )
    async def list_transactions(
        from_: Annotated[
            str | None, Query(alias="from", description="Unix ms, ISO 8601 or -15m; default -24h")
        ] = None,
        to: Annotated[str | None, Query(description="default now")] = None,
        action: Annotated[str | None, Query(description="approve | review | block")] = None,
        card: Annotated[
            str | None, Query(max_length=128, description="a card fingerprint (full)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        after: Annotated[
            str | None, Query(max_length=256, description="the last event_id of the page before")
        ] = None,
        *,
        who: Principal = reader,
    ) -> Response:
        """``{"transactions": [...], "next": event_id | null}``: the transactions in
        ``[from, to)`` (their time), each with its decision, in the caller role's view;
        ``next`` is the ``after`` of the following page (null on the last one)."""
        start, end = time_range(from_, to)
        ledger = await api.ledger()
        found = await ledger.transactions(
            start, end, action=parse_action(action), card=card, limit=limit, after_event=after
        )
        masker = api.masker(who)
        page = [masker.recorded(r) for r in found]
        more = len(found) == limit
        return json_response(
            {"transactions": page, "next": found[-1].tx.event_id if more else None}
        )

    @router.get("/currencies", summary="ISO 4217 minor-unit exponents, by currency code")
    async def currencies(who: Principal = reader) -> Response:
        """``{"exponents": {"USD": 2, "JPY": 0, "KWD": 3, ...}}``: how many digits of an
        ``amount_minor`` follow the decimal point (the page formats bus payloads with it)."""
        from sysmonstm.domains.payments.money import EXPONENTS

        return json_response({"exponents": EXPONENTS})

    @router.get(
        "/transactions/{event_id}",
        summary="One transaction with its decision and the decision's explanation",
        responses={404: {"description": "No such event"}},
    )
    async def get_transaction(event_id: str, *, who: Principal = reader) -> Response:
        """The transaction event, its ``decision`` (action, and every rule that matched with
        the values it saw) in the caller role's view."""
        rec = await (await api.ledger()).get(event_id)
        if rec is None:
            raise HTTPException(404, f"no transaction event {event_id[:256]!r}")
        return json_response(api.masker(who).recorded(rec))

    return router
