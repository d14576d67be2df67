"""Allow and block lists: ``GET /payments/lists`` (analyst+), ``PUT`` and ``DELETE`` (admin).

Values are stored as the risk rules compare them (``lists.normalize``: e-mails lower-cased,
countries upper-cased, BINs digits only), so an entry matches however it was typed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sysmonstm.domains.payments.api import PaymentsApi, json_response, now_ms
from sysmonstm.domains.payments.auth import Access
from sysmonstm.domains.payments.masking import list_entry
from sysmonstm.domains.payments.model import ListEntry, ListKind, ListMode
from sysmonstm.domains.payments.tokens import Principal
from sysmonstm.errors import InvalidInputError


class ListEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ListMode
    kind: ListKind
    value: str = Field(min_length=1, max_length=320)
    note: str = Field("", max_length=500)


def normalized(kind: ListKind, value: str) -> str:
    """``value`` as the rules compare it; ``InvalidInputError`` when it cannot be one."""
    from sysmonstm.domains.payments.lists import normalize

    try:
        return normalize(kind, value)
    except ValueError as exc:
        raise InvalidInputError(f"{kind.value}: {exc}") from None


def lists_router(api: PaymentsApi) -> APIRouter:
    router = APIRouter()
    reader = Depends(api.guard.needs(Access.READ_LISTS))
    changer = Depends(api.guard.needs(Access.CHANGE_LISTS))

    @router.get("/lists", summary="The allow and block lists")
    async def get_lists(who: Principal = reader) -> Response:
        """``{"entries": [{mode, kind, value, note, added_by, added_ms}]}``."""
        entries = await (await api.ledger()).list_entries()
        return json_response({"entries": [list_entry(e) for e in entries]})

    @router.put(
        "/lists",
        summary="Add (or replace) one list entry",
        responses={400: {"description": "A value the kind cannot hold"}},
    )
    async def put_list_entry(
        body: Annotated[ListEntryIn, Body()], *, who: Principal = changer
    ) -> Response:
        """Stores the entry under the caller's user (audited); answers it as stored."""
        entry = ListEntry(
            mode=body.mode,
            kind=body.kind,
            value=normalized(body.kind, body.value),
            note=" ".join(body.note.split()),
            added_by=who.user,
            added_ms=now_ms(),
        )
        await (await api.ledger()).set_list_entry(entry, who.user)
        return json_response(list_entry(entry))

    @router.delete(
        "/lists",
        summary="Remove one list entry",
        responses={404: {"description": "No such entry"}},
    )
    async def delete_list_entry(
        mode: Annotated[ListMode, Query()],
        kind: Annotated[ListKind, Query()],
        value: Annotated[str, Query(min_length=1, max_length=320)],
        *,
        who: Principal = changer,
    ) -> Response:
        """Removes the entry (audited); 404 when the list does not hold it."""
        value = normalized(kind, value)
        if not await (await api.ledger()).remove_list_entry(mode, kind, value, who.user):
            raise HTTPException(404, f"the {mode.value} list holds no {kind.value} {value!r}")
        return json_response({"removed": {"mode": mode.value, "kind": kind.value, "value": value}})

    return router
