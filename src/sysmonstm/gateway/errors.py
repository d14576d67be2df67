"""Every HTTP error leaves the gateway as ``{"error": {"code", "message"}}``.

Mapping: ``InvalidInputError`` → 400 (``RESOURCE_EXHAUSTED`` → 429), request validation →
422 with per-field ``details``, ``HTTPException`` keeps its status, ``BackendError`` → 503.
Messages never carry credentials: URLs in them lose their passwords (``sysmonstm.redact``).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sysmonstm.errors import BackendError, InvalidInputError
from sysmonstm.redact import redact

log = structlog.get_logger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    429: "too_many",
    503: "unavailable",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": redact(message), **extra}}


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body")]
    return ".".join(parts) or "request"


async def _invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInputError)
    status = 429 if exc.code == "RESOURCE_EXHAUSTED" else 400
    return error_response(status, exc.code.lower(), exc.reason)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    return error_response(422, "invalid_request", message, details=details)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})  # such as a 401's WWW-Authenticate
    return response


async def _backend(request: Request, exc: Exception) -> JSONResponse:
    message = redact(str(exc))
    log.warning("backend unavailable", path=request.url.path, error=message)
    return error_response(503, "unavailable", f"a storage or bus backend failed: {message}")


def install_error_handlers(app: FastAPI) -> None:
    """Route our exceptions and FastAPI's to the JSON error shape."""
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(BackendError, _backend)
