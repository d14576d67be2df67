"""The audit trail: ``GET /payments/audit`` and ``GET /payments/audit/verify`` (auditors and
admins). Each read is itself appended to the trail, under the reader's user, before the
entries are read, so a page of the trail can show its own reading."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from sysmonstm.domains.payments.api import PaymentsApi, json_response, now_ms
from sysmonstm.domains.payments.audit import entry_json
from sysmonstm.domains.payments.auth import Access
from sysmonstm.domains.payments.tokens import Principal

MAX_LIMIT = 1000
READ_KIND = "audit_read"
VERIFY_KIND = "audit_verify"


def audit_router(api: PaymentsApi) -> APIRouter:
    router = APIRouter()
    auditor = Depends(api.guard.needs(Access.READ_AUDIT))

    @router.get("/audit", summary="Entries of the hash-chained audit trail")
    async def read_audit(
        from_seq: Annotated[int, Query(ge=1, le=2**62)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        *,
        who: Principal = auditor,
    ) -> Response:
        """``{"entries": [...], "next_seq": int | null}`` from ``from_seq`` on, each with its
        chain fields (``prev_hash``, ``hash``) so a reader can re-verify; the read itself is
        appended first (kind ``audit_read``, actor the reader)."""
        ledger = await api.ledger()
        await ledger.append_audit(
            READ_KIND, who.user, "audit", {"from_seq": from_seq, "limit": limit}, now_ms()
        )
        entries = await ledger.audit(from_seq, limit)
        more = len(entries) == limit
        return json_response(
            {
                "entries": [entry_json(e) for e in entries],
                "next_seq": entries[-1].seq + 1 if more else None,
            }
        )

    @router.get("/audit/verify", summary="Check every link of the audit chain")
    async def verify_audit(who: Principal = auditor) -> Response:
        """``{"intact": true}``, or ``{"intact": false, "broken": {"seq", "reason"}}`` naming
        the first entry whose hash or link does not hold. The check is then appended to the
        trail (kind ``audit_verify``, with its result)."""
        ledger = await api.ledger()
        broken = await ledger.verify_audit()
        result: dict[str, Any] = {"intact": broken is None}
        if broken is not None:
            result["broken"] = {"seq": broken.seq, "reason": broken.reason}
        await ledger.append_audit(VERIFY_KIND, who.user, "audit", result, now_ms())
        return json_response(result)

    return router
