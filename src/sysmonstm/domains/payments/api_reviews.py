"""The review queue: ``GET /payments/reviews`` (analyst+) and ``POST
/payments/reviews/{event_id}`` (analysts and admins answer, once)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sysmonstm.domains.payments.api import PaymentsApi, json_response, now_ms
from sysmonstm.domains.payments.auth import Access
from sysmonstm.domains.payments.model import Action, Verdict
from sysmonstm.domains.payments.tokens import Principal
from sysmonstm.errors import InvalidInputError

MAX_NOTE_CHARS = 2000
_REFUSALS = {"NOT_FOUND": 404, "FAILED_PRECONDITION": 409}  # the ledger's codes → HTTP


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["approve", "decline"]
    note: str = Field("", max_length=MAX_NOTE_CHARS, description="why, for the audit trail")


def reviews_router(api: PaymentsApi) -> APIRouter:
    router = APIRouter()
    reader = Depends(api.guard.needs(Access.READ_REVIEWS))
    answerer = Depends(api.guard.needs(Access.ANSWER_REVIEWS))

    @router.get("/reviews", summary="Transactions sent for review, not answered yet")
    async def review_queue(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100, *, who: Principal = reader
    ) -> Response:
        """``{"reviews": [...]}``, oldest first: each transaction with its decision."""
        queue = await (await api.ledger()).review_queue(limit)
        masker = api.masker(who)
        return json_response({"reviews": [masker.review(item) for item in queue]})

    @router.post(
        "/reviews/{event_id}",
        summary="Approve or decline a transaction sent for review",
        responses={
            404: {"description": "No such event"},
            409: {"description": "Not sent for review, or answered already"},
        },
    )
    async def answer_review(
        event_id: str, body: Annotated[ReviewIn, Body()], *, who: Principal = answerer
    ) -> Response:
        """Records the answer once, under the caller's user: appended to the audit trail
        and published as ``payments.review.<verdict>``. The review, as stored, is answered."""
        note = body.note.strip()
        if not note.isprintable():
            note = " ".join(note.split())  # newlines and tabs fold; a note stays one line
        ledger = await api.ledger()
        rec = await ledger.get(event_id)
        if rec is None:
            raise HTTPException(404, f"no transaction event {event_id[:256]!r}")
        if rec.decision.action is not Action.REVIEW:
            raise HTTPException(
                409, f"{event_id} was decided {rec.decision.action.label}, not sent for review"
            )
        try:
            item = await ledger.resolve_review(
                event_id, Verdict(body.verdict), who.user, note, now_ms()
            )
        except InvalidInputError as exc:
            # the ledger refuses inside its transaction: a race with another answer lands here
            status = _REFUSALS.get(exc.code)
            if status is None:
                raise
            raise HTTPException(status, exc.reason) from None
        return json_response(api.masker(who).review(item))

    return router
